"""`codeact.models` exports its backends lazily: importing it imports no SDK."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import codeact.models


def test_models_all_is_pinned() -> None:
    assert sorted(codeact.models.__all__) == sorted(
        [
            "Anthropic",
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
