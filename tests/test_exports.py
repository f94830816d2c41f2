"""The public names are a promise: this pins them."""

import subprocess
import sys

import codeact
import codeact.models


def test_root_namespace():
    assert sorted(codeact.__all__) == sorted([
        "Agent", "CodeAgent", "CodeactError", "ConfigError", "Event", "ModelError", "RunResult",
        "SandboxError", "Step", "Tool", "ToolCallingAgent", "ToolError", "__version__", "tool",
    ])
    for name in codeact.__all__:
        assert hasattr(codeact, name)


def test_models_namespace():
    for name in ["OpenAICompatible", "Anthropic", "LiteLLM", "LocalModel", "ScriptedModel", "Model", "Message"]:
        assert name in codeact.models.__all__


def test_import_codeact_loads_no_backend_sdk():
    code = (
        "import sys, codeact, codeact.models\n"
        "heavy = [m for m in ('openai', 'anthropic', 'litellm', 'llama_cpp', 'smolagents', 'pydantic', 'mcp', 'ray', 'datasets') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
