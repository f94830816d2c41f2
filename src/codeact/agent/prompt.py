"""Rendering prompts from templates; kept byte-identical across steps for the model's prefix cache."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from importlib.resources import files

from codeact.tools.tool import Tool

__all__ = ["load_template", "render_imports", "render_tools", "with_notes"]


def load_template(name: str) -> str:
    return (files("codeact.agent") / "prompts" / name).read_text(encoding="utf-8")


def render_tools(tools: Mapping[str, Tool]) -> str:
    """Each tool as a Python `def` with its docstring, the way the model will call it.

    A tool with `in_prompt = False` is left out (it is still callable): in code mode a large
    catalogue is found with `search_tools` instead of being listed whole.
    """
    blocks = []
    for t in tools.values():
        if getattr(t, "in_prompt", True) is False:
            continue
        doc = t.docstring().replace('"""', "'''").replace("\n", "\n    ")
        blocks.append(f'def {t.python_signature()}:\n    """{doc}"""')
    return "\n".join(blocks)


def render_imports(authorized: Collection[str] | None) -> str:
    if authorized is None:
        return "You can import any installed module."
    if not authorized:
        return "Do not import any module."
    return "You can import only these modules: " + ", ".join(sorted(authorized)) + "."


def with_notes(system: str, notes: str) -> str:
    """The system prompt with the agent's notes (answer schema, instructions) after it."""
    return system.rstrip("\n") + notes + "\n" if notes else system
