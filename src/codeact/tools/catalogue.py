"""Code mode for large tool catalogues: the prompt names the servers, the code looks tools up.

Listing 100 MCP tools with their signatures and docs in the system prompt costs thousands of
tokens on every step, most of them for tools the task never uses. Past a threshold, the tools
stay callable in the sandbox but leave the prompt (`in_prompt = False`); two host tools take
their place: `search_tools(query)` returns the matching signatures with one-line summaries,
and `help(name)` returns one tool's full definition (signature, docs, TypedDicts). Their
docstrings carry the catalogue's outline: each server with a one-line summary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from codeact.errors import ToolError
from codeact.tools.tool import Tool

__all__ = ["CODE_MODE_THRESHOLD", "ToolHelp", "ToolSearch", "code_mode"]

CODE_MODE_THRESHOLD = 20
"""More tools than this and `code_mode` takes them out of the prompt."""

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    """The words of `text`, lower case, a plural `s` dropped (so "invoice" finds "invoices")."""
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in _WORD.findall(text.lower())}


def _definition(tool: Tool) -> str:
    doc = tool.docstring().replace('"""', "'''").replace("\n", "\n    ")
    return f'def {tool.python_signature()}:\n    """{doc}"""'


class ToolSearch(Tool):
    """`search_tools(query)`: the catalogue's tools whose name or description match the query."""

    name = "search_tools"

    def __init__(self, tools: Sequence[Tool], outline: str) -> None:
        self.tools = list(tools)
        self.outline = outline
        self._index = [(t, _words(t.name.replace("_", " ")), _words(t.summary)) for t in self.tools]

    def forward(self, query: str, limit: int = 10) -> list[str]:
        """Find tools: their signatures and one-line summaries, best match first.

        Args:
            query: words about what the tool should do (e.g. "create issue").
            limit: at most this many results.
        """
        wanted = _words(str(query)[:500])
        scored = []
        for position, (tool, name_words, summary_words) in enumerate(self._index):
            score = 3 * len(wanted & name_words) + len(wanted & summary_words)
            if score or not wanted:
                scored.append((-score, position, tool))
        scored.sort(key=lambda item: item[:2])
        return [f"{t.python_signature()}: {t.summary}" for _, _, t in scored[: max(1, min(int(limit), 50))]]

    def docstring(self) -> str:
        return f"{super().docstring()}\n\nThe tools (call them by name once you know their signature):\n{self.outline}"


class ToolHelp(Tool):
    """`help(name)`: one tool's whole definition, as the prompt would have shown it."""

    name = "help"

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = {t.name: t for t in tools}

    def forward(self, name: str) -> str:
        """The full definition of a tool found with `search_tools`: signature, docs, types.

        Args:
            name: the tool's name.
        """
        tool = self.tools.get(str(name)[:200])
        if tool is None:
            raise ToolError(f"there is no tool named {str(name)[:200]!r}; find one with search_tools(query)")
        return _definition(tool)


def code_mode(
    tools: Sequence[Tool],
    *,
    outline: Mapping[str, str] | None = None,
    threshold: int = CODE_MODE_THRESHOLD,
) -> list[Tool]:
    """`tools`, unchanged when they are few; past `threshold`, out of the prompt plus the two finders.

    Args:
        outline: {server or group name: one-line summary}, shown in `search_tools`'s docstring
            (default: one line saying how many tools there are).
    """
    if len(tools) <= threshold:
        return list(tools)
    for tool in tools:
        tool.in_prompt = False  # type: ignore[attr-defined]
    lines = [f"- {name}: {summary}" for name, summary in (outline or {}).items()]
    text = "\n".join(lines) or f"- {len(tools)} tools"
    return [*tools, ToolSearch(tools, text), ToolHelp(tools)]
