from __future__ import annotations

import asyncio

import pytest

from codeact.errors import ConfigError, ModelConnectionError, ModelResponseError
from codeact.models.anthropic import Anthropic, to_anthropic_request
from codeact.models.base import DEFAULT_MAX_TOKENS, Message, ToolCall, ToolSpec, Usage
from tests.servers.chat_server import ChatServer, Reply, anthropic_error, messages_reply

HI = [Message("user", "hi")]


def make(server: ChatServer, **options: object) -> Anthropic:
    options.setdefault("retry_delay", 0.001)
    return Anthropic("claude-test", api_key="sk-ant-test", base_url=server.base, **options)  # type: ignore[arg-type]


def test_completion_maps_system_stop_usage_and_key(server: ChatServer) -> None:
    server.push(messages_reply("x = 1\n```\nrest", usage=(11, 4), stop_reason="end_turn"))

    reply = make(server).complete(
        [Message("system", "You write code."), Message("user", "go")], stop=["```", "\n\n", "  "]
    )

    assert reply.text == "x = 1\n"
    assert reply.usage == Usage(11, 4)
    assert reply.finish_reason == "stop"
    sent = server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.json["system"] == "You write code."
    assert sent.json["messages"] == [{"role": "user", "content": [{"type": "text", "text": "go"}]}]
    assert sent.json["max_tokens"] == DEFAULT_MAX_TOKENS
    assert sent.json["stop_sequences"] == ["```"]  # whitespace-only ones are cut client-side only
    assert "sk-ant-test" in (sent.headers.get("x-api-key", "") + sent.headers.get("authorization", ""))


def test_consecutive_roles_are_merged_and_tools_mapped() -> None:
    request = to_anthropic_request(
        [
            Message("system", "a"),
            Message("user", "one"),
            Message("user", "two"),
            Message("assistant", "calling", (ToolCall("t1", "add", {"a": 1}),)),
            Message("tool", "2", tool_call_id="t1"),
            Message("user", "thanks"),
            Message("system", "b"),
        ],
        [ToolSpec("add", "Add.", {"type": "object"})],
    )

    assert request["system"] == "a\n\nb"
    assert [t["role"] for t in request["messages"]] == ["user", "assistant", "user"]
    assert request["messages"][0]["content"] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two"},
    ]
    assert request["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "t1",
        "name": "add",
        "input": {"a": 1},
    }
    assert request["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "2"},
        {"type": "text", "text": "thanks"},
    ]
    assert request["tools"] == [{"name": "add", "description": "Add.", "input_schema": {"type": "object"}}]


def test_tool_use_reply_becomes_tool_calls(server: ChatServer) -> None:
    server.push(
        messages_reply("Let me add.", tool_uses=[("tu_1", "add", {"a": 1, "b": 2})], stop_reason="tool_use")
    )

    reply = make(server).complete(HI, tools=[ToolSpec("add", "Add.", {"type": "object"})])

    assert reply.text == "Let me add."
    assert reply.tool_calls == (ToolCall("tu_1", "add", {"a": 1, "b": 2}),)
    assert reply.finish_reason == "tool_calls"


def test_cache_tokens_count_as_prompt_tokens(server: ChatServer) -> None:
    body = dict(messages_reply("ok").body)
    body["usage"] = {
        "input_tokens": 5,
        "output_tokens": 2,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 10,
    }
    server.push(Reply(body=body))

    assert make(server).complete(HI).usage == Usage(115, 2)


def test_overloaded_and_rate_limited_are_retried(server: ChatServer) -> None:
    server.push(
        anthropic_error(529, "Overloaded", type="overloaded_error"),
        anthropic_error(429, "rate limited", type="rate_limit_error", headers={"retry-after": "0"}),
        messages_reply("ok"),
    )

    assert make(server).complete(HI).text == "ok"
    assert len(server.requests) == 3


def test_bad_request_is_not_retried_and_keeps_the_server_message(server: ChatServer) -> None:
    server.push(anthropic_error(400, "messages: roles must alternate"), messages_reply("never"))

    with pytest.raises(ModelResponseError) as info:
        make(server).complete(HI)

    assert info.value.status_code == 400
    assert "roles must alternate" in str(info.value)
    assert len(server.requests) == 1


def test_acomplete(server: ChatServer) -> None:
    server.push(anthropic_error(500, "oops", type="api_error"), messages_reply("async ok", usage=(1, 2)))

    reply = asyncio.run(make(server).acomplete(HI))

    assert (reply.text, reply.usage) == ("async ok", Usage(1, 2))
    assert len(server.requests) == 2


def test_missing_key_is_a_config_error_naming_the_env_var() -> None:
    with pytest.raises(ConfigError) as info:
        Anthropic("claude-test")
    assert "ANTHROPIC_API_KEY" in str(info.value) and "api_key=" in str(info.value)


def test_key_from_environment(server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    server.push(messages_reply("ok"))

    Anthropic("claude-test", base_url=server.base).complete(HI)

    headers = server.requests[0].headers
    assert "sk-ant-env" in (headers.get("x-api-key", "") + headers.get("authorization", ""))


def test_unreachable_server(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    model = Anthropic("claude-test", api_key="k", base_url=url, max_retries=1, retry_delay=0.001)

    with pytest.raises(ModelConnectionError) as info:
        model.complete(HI)

    assert info.value.url == url and "connection refused" in str(info.value)
