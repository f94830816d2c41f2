"""`codeact.models` exports its backends lazily: importing it imports no SDK."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import codeact.models


def test_models_all_is_pinned() -> None:
    assert sorted(codeact.models.__all__) == sorted(
        [
            "Anthropic",
            "Image",
            "LiteLLM",
            "LocalModel",
            "Message",
            "Model",
            "ModelReply",
            "OpenAICompatible",
            "ScriptedModel",
            "ToolCall",
            "ToolSpec",
            "Usage",
            "register_model",
            "resolve_model",
        ]
    )


def test_every_export_resolves() -> None:
    for name in codeact.models.__all__:
        if name == "LocalModel" and importlib.util.find_spec("codeact.models.local") is None:
            continue
        assert getattr(codeact.models, name) is not None


def test_backend_modules_do_not_import_their_sdk_until_used() -> None:
    code = (
        "import sys\n"
        "import codeact.models as m\n"
        "import codeact.models.openai_compat, codeact.models.anthropic, codeact.models.litellm\n"
        "import codeact.models.registry\n"
        "m.OpenAICompatible, m.Anthropic, m.LiteLLM, m.resolve_model\n"
        "print([k for k in ('openai', 'anthropic', 'litellm', 'llama_cpp') if k in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        codeact.models.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def public_names_missing_from_all(package: str, reexports: dict[str, set[str]] | None = None) -> list[str]:
    """For every module of `package`: each public top-level name it defines is in its `__all__`,
    and each name in `__all__` is defined there (or is a re-export listed in `reexports`)."""
    root = Path(importlib.import_module(package).__file__ or "").parent
    problems: list[str] = []
    for path in sorted(root.glob("*.py")):
        if path.name == "__init__.py":
            continue
        name = f"{package}.{path.stem}"
        tree = ast.parse(path.read_text())
        defined: set[str] = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)
        public = {n for n in defined if not n.startswith("_") and n != "T"}
        exported = set(getattr(importlib.import_module(name), "__all__", ()))
        if not exported:
            problems.append(f"{name} has no __all__")
        problems += [f"{name}.{n} is public but not in __all__" for n in sorted(public - exported)]
        extra = exported - public - (reexports or {}).get(path.stem, set())
        problems += [f"{name}.__all__ names {n}, which it does not define" for n in sorted(extra)]
    return problems


def test_every_models_module_exports_exactly_its_public_names() -> None:
    reexports = {"base": {"Message", "ModelReply", "Role", "ToolCall", "ToolSpec", "Usage"}}
    assert public_names_missing_from_all("codeact.models", reexports) == []
