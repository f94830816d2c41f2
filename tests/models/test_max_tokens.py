"""Every model call is bounded: a reply cap in every backend, from every spec, and a reply that hits
it says so all the way into the run's events."""

from __future__ import annotations

import importlib.util

import pytest

from codeact.agent.tool_calling_agent import ToolCallingAgent
from codeact.errors import ConfigError
from codeact.models.anthropic import Anthropic
from codeact.models.base import DEFAULT_MAX_TOKENS, Message
from codeact.models.local import LOCAL_MAX_TOKENS, LocalModel
from codeact.models.openai_compat import OpenAICompatible
from codeact.models.registry import resolve_model
from codeact.models.scripted import ScriptedModel
from codeact.runs.events import ModelReplied
from tests.servers.chat_server import ChatServer, chat, messages_reply

HI = [Message("user", "hi")]


def test_openai_compatible_sends_a_cap_by_default(server: ChatServer) -> None:
    server.push(chat("ok"), chat("ok"))

    OpenAICompatible("m", base_url=server.url).complete(HI)
    OpenAICompatible("m", base_url=server.url, max_tokens=None).complete(HI)

    assert [r.json["max_tokens"] for r in server.requests] == [DEFAULT_MAX_TOKENS] * 2


def test_anthropic_sends_a_cap_by_default(server: ChatServer) -> None:
    server.push(messages_reply("ok"))
    Anthropic("claude-x", api_key="k", base_url=server.base).complete(HI)
    assert server.requests[0].json["max_tokens"] == DEFAULT_MAX_TOKENS


def test_local_model_caps_every_call() -> None:
    model = LocalModel("0.5b", max_tokens=None)
    assert model.max_tokens == LOCAL_MAX_TOKENS
    assert model._sampling([1] * 10, None)["max_tokens"] == LOCAL_MAX_TOKENS


@pytest.mark.parametrize(
    ("spec", "attribute"),
    [
        ("local", "max_tokens"),
        ("local-small", "max_tokens"),
        ("openai:gpt-4o-mini", "max_tokens"),
        ("openai-compat:http://127.0.0.1:9/v1#m", "max_tokens"),
        ("anthropic:claude-x", "max_tokens"),
        ("litellm:gpt-4o-mini", "max_tokens"),
    ],
)
def test_resolve_model_passes_max_tokens_for_every_form(
    spec: str, attribute: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if spec.startswith("litellm") and importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm is not installed")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert getattr(resolve_model(spec, max_tokens=77), attribute) == 77


@pytest.mark.parametrize("bad", [0, -5, "100", 1.5, True])
@pytest.mark.parametrize("spec", ["local", "openai-compat:http://127.0.0.1:9/v1#m", "anthropic:claude-x"])
def test_a_cap_that_is_not_a_positive_whole_number_is_refused(
    spec: str, bad: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with pytest.raises(ConfigError, match="max_tokens"):
        resolve_model(spec, max_tokens=bad)


def test_scripted_model_accepts_a_cap_and_says_when_it_cut() -> None:
    model = ScriptedModel(["one two three four", "five"], max_tokens=2)
    first, second = model.complete(HI), model.complete(HI)
    assert (first.text, first.finish_reason, first.usage.completion_tokens) == ("one two", "length", 2)
    assert (second.text, second.finish_reason) == ("five", "stop")


def test_a_reply_that_hits_the_cap_says_so_in_the_steps_events(server: ChatServer) -> None:
    server.push(
        chat("Let me think about this very carefully, step by step, and", finish_reason="length", usage=(50, 9)),
        chat('{"name": "final_answer", "arguments": {"answer": 4}}', usage=(60, 9)),
    )
    agent = ToolCallingAgent(OpenAICompatible("m", base_url=server.url, max_tokens=9), tool_mode="text",
                             max_steps=3, store=False)

    events = list(agent.run("What is 2 + 2?", stream=True))

    replied = [e for e in events if isinstance(e, ModelReplied)]
    assert [e.finish_reason for e in replied] == ["length", "stop"]
    assert all(r.json["max_tokens"] == 9 for r in server.requests if r.method == "POST")
