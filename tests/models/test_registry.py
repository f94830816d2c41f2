from __future__ import annotations

import pytest

from codeact.errors import ConfigError, MissingExtraError
from codeact.models import registry
from codeact.models.anthropic import Anthropic
from codeact.models.base import Message, Model, ModelReply
from codeact.models.openai_compat import OpenAICompatible
from codeact.models.registry import register_model, resolve_model
from codeact.models.scripted import ScriptedModel
from tests.servers.chat_server import ChatServer, chat


def test_openai_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = resolve_model("openai:gpt-4o", temperature=0.3)
    assert isinstance(model, OpenAICompatible)
    assert (model.model, model.base_url, model.temperature) == ("gpt-4o", "https://api.openai.com/v1", 0.3)
    assert model.name == "openai:gpt-4o"


def test_openai_compat_spec_talks_to_that_server(server: ChatServer) -> None:
    server.push(chat("from the server"))

    model = resolve_model(f"openai-compat:{server.url}#qwen", max_retries=0)

    assert isinstance(model, OpenAICompatible) and model.model == "qwen"
    assert model.complete([Message("user", "hi")]).text == "from the server"
    assert server.requests[0].json["model"] == "qwen"
    assert resolve_model(model.name).name == model.name  # the name is itself a spec


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("openai-compat:http://127.0.0.1:8080/v1", "model name after '#'"),
        ("openai-compat:http://127.0.0.1:8080/v1#", "model name after '#'"),
        ("openai-compat:127.0.0.1:8080#qwen", "http(s) URL"),
        ("openai:", "needs a model name"),
        ("anthropic:", "needs a model name"),
        ("local:extra", "takes nothing after it"),
    ],
)
def test_malformed_specs(spec: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        resolve_model(spec)


def test_anthropic_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    model = resolve_model("anthropic:claude-sonnet-4-5", max_tokens=100)
    assert isinstance(model, Anthropic)
    assert (model.model, model.max_tokens, model.name) == (
        "claude-sonnet-4-5",
        100,
        "anthropic:claude-sonnet-4-5",
    )


def test_litellm_spec_without_the_extra() -> None:
    pytest.importorskip("codeact.models.litellm")
    try:
        import litellm  # noqa: F401
    except ImportError:
        with pytest.raises(MissingExtraError, match="codeact\\[litellm\\]"):
            resolve_model("litellm:bedrock/claude")
    else:  # pragma: no cover
        pytest.skip("litellm is installed")


@pytest.mark.parametrize(("spec", "size"), [("local", "1.5b"), ("local-small", "0.5b")])
def test_local_specs(spec: str, size: str) -> None:
    local = pytest.importorskip("codeact.models.local")
    model = resolve_model(spec)
    assert isinstance(model, local.LocalModel) and model.size == size


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [
        ("opnai:gpt-4o", "'openai:gpt-4o'"),
        ("antropic:claude-x", "'anthropic:claude-x'"),
        ("locl", "'local'"),
        ("gpt-4o", "'openai:gpt-4o'"),
        ("claude-sonnet-4-5", "'anthropic:claude-sonnet-4-5'"),
    ],
)
def test_unknown_spec_suggests_and_lists_forms(spec: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model(spec)
    message = str(info.value)
    assert f"Did you mean {suggestion}" in message
    assert "openai-compat:URL#MODEL" in message and "anthropic:MODEL" in message


def test_unknown_spec_without_a_close_match_still_lists_forms() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model("zzzz:qqq")
    assert "Did you mean" not in str(info.value) and "local-small" in str(info.value)


def test_register_model_extends_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    monkeypatch.setattr(registry, "_FORMS", dict(registry._FORMS))

    def echo(rest: str, **options: object) -> Model:
        return ScriptedModel([ModelReply(f"{rest} {options}")], name=f"echo:{rest}")

    register_model("echo", echo, form="echo:WORD")

    model = resolve_model("echo:hello", flavour="x")
    assert model.complete([]).text == "hello {'flavour': 'x'}"
    with pytest.raises(ConfigError, match="echo:WORD"):
        resolve_model("nothing-like-it")


@pytest.mark.parametrize("prefix", ["", "a:b", "has space"])
def test_register_model_rejects_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ConfigError):
        register_model(prefix, lambda rest, **o: ScriptedModel([]))
