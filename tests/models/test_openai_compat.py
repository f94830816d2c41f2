from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeact.errors import ConfigError, ModelConnectionError, ModelResponseError, ModelTimeoutError
from codeact.models._retry import RetryPolicy
from codeact.models.base import Message, ModelReply, ToolCall, ToolSpec, Usage
from codeact.models.openai_compat import OpenAICompatible
from codeact.models.stops import StopCutter, cut_at_stop
from tests.servers.chat_server import ChatServer, Reply, chat, chat_stream, error

HI = [Message("user", "hi")]


def make(server: ChatServer, **options: object) -> OpenAICompatible:
    options.setdefault("retry_delay", 0.001)
    return OpenAICompatible("test-model", base_url=server.url, **options)  # type: ignore[arg-type]


# -- plain completions -----------------------------------------------------------------------


def test_completion_returns_text_usage_and_sends_the_messages(server: ChatServer) -> None:
    server.push(chat("hello", usage=(7, 2)))
    model = make(server, temperature=0.2, max_tokens=50, extra_params={"top_k": 5})

    reply = model.complete([Message("system", "be brief"), Message("user", "hi")])

    assert reply.text == "hello"
    assert reply.usage == Usage(7, 2)
    assert reply.finish_reason == "stop"
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "test-model"
    assert sent.json["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert (sent.json["temperature"], sent.json["max_tokens"], sent.json["top_k"]) == (0.2, 50, 5)
    assert "stop" not in sent.json


def test_missing_usage_counts_as_zero_without_streaming(server: ChatServer) -> None:
    server.push(chat("x", usage=None))
    assert make(server, stream_replies=False).complete(HI).usage == Usage(0, 0)


def test_missing_usage_in_a_stream_is_counted(server: ChatServer) -> None:
    server.push(chat_stream(["a", "b", "c"]), chat_stream(["a", "b"]))  # no usage chunks, like llama.cpp's
    seen = []

    def count(messages, tools):
        seen.append((messages, tools))
        return 1234

    estimated = make(server).complete([Message("user", "x" * 400)]).usage
    counted = make(server, count_prompt=count).complete(HI, tools=[ToolSpec("t", "d", {"type": "object"})]).usage

    assert 100 <= estimated.prompt_tokens <= 120 and estimated.completion_tokens == 3  # one per chunk
    assert counted == Usage(1234, 2)
    assert seen == [([{"role": "user", "content": "hi"}],
                     [{"type": "function", "function": {"name": "t", "description": "d",
                                                        "parameters": {"type": "object"}}}])]


def test_name_is_a_resolvable_spec(server: ChatServer) -> None:
    assert make(server).name == f"openai-compat:{server.url}#test-model"


# -- stop sequences --------------------------------------------------------------------------


def test_stop_is_sent_and_also_cut_client_side(server: ChatServer) -> None:
    server.push(chat("print(1)\n```\nmore text", finish_reason="length"))

    reply = make(server).complete(HI, stop=["```", "Observation:"])

    assert server.requests[0].json["stop"] == ["```", "Observation:"]
    assert reply.text == "print(1)\n"
    assert reply.finish_reason == "stop"


def test_server_rejecting_stop_is_asked_again_without_it_and_remembers(server: ChatServer) -> None:
    server.push(
        error(400, "Unsupported parameter: 'stop' is not supported with this model.", param="stop"),
        chat("answer STOP tail"),
        chat("second STOP tail"),
    )
    model = make(server)

    first = model.complete(HI, stop=["STOP"])
    second = model.complete(HI, stop=["STOP"])

    assert (first.text, second.text) == ("answer ", "second ")
    assert [("stop" in r.json) for r in server.requests] == [True, False, False]


def test_stop_rejection_without_param_field_is_read_from_the_message(server: ChatServer) -> None:
    # llama.cpp / vLLM style: no `param`, the message names the field.
    server.push(error(400, "stop: unrecognized field"), chat("a STOP b"))

    reply = make(server).complete(HI, stop=["STOP"])

    assert reply.text == "a "
    assert len(server.requests) == 2


def test_unrelated_bad_request_is_not_retried(server: ChatServer) -> None:
    server.push(error(400, "context length exceeded"))

    with pytest.raises(ModelResponseError) as info:
        make(server).complete(HI, stop=["STOP"])

    assert info.value.status_code == 400
    assert "context length exceeded" in str(info.value)
    assert len(server.requests) == 1


def test_rejected_max_tokens_is_renamed_to_max_completion_tokens(server: ChatServer) -> None:
    server.push(
        error(400, "Use 'max_completion_tokens' instead.", param="max_tokens"),
        chat("ok"),
    )

    assert make(server, max_tokens=9).complete(HI).text == "ok"
    assert server.requests[1].json.get("max_completion_tokens") == 9
    assert "max_tokens" not in server.requests[1].json


# -- retries and errors ----------------------------------------------------------------------


def test_retries_transient_failures_then_succeeds(server: ChatServer) -> None:
    server.push(
        error(500, "boom", type="server_error"),
        error(429, "slow down", headers={"Retry-After": "0"}),
        error(503, "busy", type="server_error"),
        Reply(drop=True),
        chat("finally"),
    )

    reply = make(server, max_retries=4).complete(HI)

    assert reply.text == "finally"
    assert len(server.requests) == 5


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(server: ChatServer, status: int) -> None:
    server.push(error(status, "nope from server"), chat("never"))

    with pytest.raises(ModelResponseError) as info:
        make(server).complete(HI)

    assert info.value.status_code == status
    assert "nope from server" in str(info.value)
    assert server.url in str(info.value)
    assert len(server.requests) == 1


def test_gives_up_after_max_retries(server: ChatServer) -> None:
    server.push(*[error(500, "still broken", type="server_error")] * 3, chat("too late"))

    with pytest.raises(ModelResponseError) as info:
        make(server, max_retries=2).complete(HI)

    assert info.value.status_code == 500
    assert "still broken" in str(info.value) and "3 attempts" in str(info.value)
    assert len(server.requests) == 3


def test_retry_after_is_respected(server: ChatServer) -> None:
    server.push(error(429, "wait", headers={"Retry-After": "0.3"}), chat("ok"))
    model = make(server, retry_delay=0.0)

    start = time.monotonic()
    assert model.complete(HI).text == "ok"
    assert time.monotonic() - start >= 0.3


def test_retry_after_is_capped(server: ChatServer) -> None:
    server.push(error(429, "wait a day", headers={"Retry-After": "86400"}), chat("ok"))
    model = make(server)
    model.retry = RetryPolicy(max_retries=1, max_retry_after=0.05)

    start = time.monotonic()
    assert model.complete(HI).text == "ok"
    assert time.monotonic() - start < 2


def test_unreachable_server_raises_connection_error_naming_the_url(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    model = OpenAICompatible("m", base_url=url, max_retries=2, retry_delay=0.001)

    start = time.monotonic()
    with pytest.raises(ModelConnectionError) as info:
        model.complete(HI)

    assert time.monotonic() - start < 2
    assert info.value.url == url
    message = str(info.value)
    assert url in message and "connection refused" in message and "3 attempts" in message
    assert "Is it running?" in message


def test_slow_server_times_out_as_a_connection_error(server: ChatServer) -> None:
    server.push(Reply(delay=5, body={}))

    with pytest.raises(ModelConnectionError) as info:
        make(server, timeout=0.2, max_retries=0).complete(HI)

    assert "sent nothing for 0.2 s" in str(info.value)
    assert isinstance(info.value, ModelTimeoutError)


def test_a_reply_that_is_not_a_chat_completion_is_a_clear_error(server: ChatServer) -> None:
    server.push(Reply(body={"unexpected": True}))

    with pytest.raises(ModelResponseError, match="without choices"):
        make(server).complete(HI)


# -- keys ------------------------------------------------------------------------------------


def test_openai_without_a_key_names_the_env_var_and_the_argument() -> None:
    with pytest.raises(ConfigError) as info:
        OpenAICompatible("gpt-4o")
    assert "OPENAI_API_KEY" in str(info.value) and "api_key=" in str(info.value)


def test_key_comes_from_the_environment(server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    server.push(chat("ok"))

    make(server).complete(HI)

    assert server.requests[0].headers["authorization"] == "Bearer sk-from-env"


def test_custom_server_without_a_key_gets_a_placeholder(server: ChatServer) -> None:
    server.push(chat("ok"))
    make(server).complete(HI)
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_base_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="http"):
        OpenAICompatible("m", base_url="127.0.0.1:8080/v1")


# -- tool calls ------------------------------------------------------------------------------


def test_native_tool_calls_are_parsed_and_malformed_arguments_kept(server: ChatServer) -> None:
    server.push(
        chat(
            None,
            tool_calls=[("c1", "add", '{"a": 1, "b": 2}'), ("c2", "echo", '{"text": "unterminated')],
            finish_reason="tool_calls",
        )
    )
    spec = ToolSpec("add", "Add two numbers.", {"type": "object", "properties": {"a": {}, "b": {}}})

    reply = make(server).complete(HI, tools=[spec])

    assert reply.text == ""
    assert reply.tool_calls == (
        ToolCall("c1", "add", {"a": 1, "b": 2}),
        ToolCall("c2", "echo", {"_raw": '{"text": "unterminated'}),
    )
    assert server.requests[0].json["tools"] == [
        {
            "type": "function",
            "function": {"name": "add", "description": "Add two numbers.", "parameters": spec.parameters},
        }
    ]


def test_tool_call_history_is_sent_in_chat_completions_form(server: ChatServer) -> None:
    server.push(chat("done"))
    history = [
        Message("user", "add"),
        Message("assistant", "", (ToolCall("c1", "add", {"a": 1}), ToolCall("c2", "x", {"_raw": "{bad"}))),
        Message("tool", "3", tool_call_id="c1"),
    ]

    make(server).complete(history)

    sent = server.requests[0].json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "",  # llama-cpp-python's server rejects null with a 500
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}},
            {"id": "c2", "type": "function", "function": {"name": "x", "arguments": "{bad"}},
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "c1", "content": "3"}


# -- streaming -------------------------------------------------------------------------------


def test_stream_yields_chunks_then_the_reply_with_usage(server: ChatServer) -> None:
    server.push(chat_stream(["Hel", "lo", " world"], usage=(4, 3)))

    items = list(make(server).stream(HI))

    assert items[:-1] == ["Hel", "lo", " world"]
    assert items[-1] == ModelReply("Hello world", Usage(4, 3), (), "stop")
    assert server.requests[0].json["stream"] is True
    assert server.requests[0].json["stream_options"] == {"include_usage": True}


def test_stream_cuts_at_a_stop_split_across_chunks(server: ChatServer) -> None:
    server.push(chat_stream(["x = 1\n`", "`", "`\nafter"], usage=(1, 1)))

    items = list(make(server).stream(HI, stop=["```"]))

    assert "".join(i for i in items if isinstance(i, str)) == "x = 1\n"
    final = items[-1]
    assert isinstance(final, ModelReply) and final.text == "x = 1\n" and final.finish_reason == "stop"


def test_stream_without_stop_holds_back_nothing_at_the_end(server: ChatServer) -> None:
    server.push(chat_stream(["ends with `", "`"]))

    items = list(make(server).stream(HI, stop=["```"]))

    assert "".join(i for i in items if isinstance(i, str)) == "ends with ``"
    assert items[-1].text == "ends with ``"  # type: ignore[union-attr]


def test_stream_options_rejected_is_dropped(server: ChatServer) -> None:
    server.push(error(400, "Unknown field stream_options"), chat_stream(["ok"]))

    items = list(make(server).stream(HI))

    assert items[-1].text == "ok"  # type: ignore[union-attr]
    assert "stream_options" not in server.requests[1].json


def test_stream_retries_before_the_first_chunk(server: ChatServer) -> None:
    server.push(error(503, "warming up", type="server_error"), chat_stream(["ok"]))
    assert list(make(server).stream(HI))[-1].text == "ok"  # type: ignore[union-attr]
    assert len(server.requests) == 2


# -- async -----------------------------------------------------------------------------------


def test_acomplete_retries_and_returns_the_reply(server: ChatServer) -> None:
    server.push(error(502, "bad gateway", type="server_error"), chat("async hello STOP x", usage=(2, 3)))

    reply = asyncio.run(make(server, stream_replies=False).acomplete(HI, stop=["STOP"]))

    assert reply.text == "async hello "
    assert reply.usage == Usage(2, 3)
    assert len(server.requests) == 2


def test_acomplete_converts_errors(server: ChatServer) -> None:
    server.push(error(401, "bad key"))
    with pytest.raises(ModelResponseError) as info:
        asyncio.run(make(server).acomplete(HI))
    assert info.value.status_code == 401


def test_astream_yields_chunks_then_reply(server: ChatServer) -> None:
    server.push(chat_stream(["a", "b STOP", "c"], usage=(1, 2)))

    async def collect() -> list[object]:
        return [item async for item in make(server).astream(HI, stop=["STOP"])]

    items = asyncio.run(collect())

    assert "".join(i for i in items if isinstance(i, str)) == "ab "
    assert isinstance(items[-1], ModelReply) and items[-1].text == "ab "


def test_async_client_survives_separate_event_loops(server: ChatServer) -> None:
    server.push(chat("one"), chat("two"))
    model = make(server)
    assert asyncio.run(model.acomplete(HI)).text == "one"
    assert asyncio.run(model.acomplete(HI)).text == "two"


def test_close_is_idempotent_and_the_model_still_works(server: ChatServer) -> None:
    server.push(chat("again"))
    model = make(server)
    model.close()
    model.close()
    assert model.complete(HI).text == "again"


# -- the stream cutter -----------------------------------------------------------------------


@given(
    text=st.text(alphabet="ab`\nS", max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=8),
    stop=st.lists(st.text(alphabet="ab`\nS", min_size=1, max_size=4), max_size=3),
)
def test_stop_cutter_matches_cut_at_stop_for_any_chunking(text: str, cuts: list[int], stop: list[str]) -> None:
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    cutter = StopCutter(stop)

    emitted = "".join(cutter.feed(chunk) for chunk in chunks) + cutter.flush()

    assert emitted == cut_at_stop(text, stop)


# -- bounded calls on a busy server ------------------------------------------------------------

# What llama-cpp-python's server (0.3.36) answered to an assistant turn with `content: null`,
# abridged to two of its seven errors: a 500 whose message is FastAPI's list of validation errors.
LLAMA_VALIDATION_500 = (
    "7 validation errors:\n"
    "  {'type': 'literal_error', 'loc': ('body', 'messages', 1, 'ChatCompletionRequestSystemMessage', 'role'), "
    "'msg': \"Input should be 'system'\", 'input': 'assistant', 'ctx': {'expected': \"'system'\"}}\n"
    "  {'type': 'string_type', 'loc': ('body', 'messages', 1, 'ChatCompletionRequestAssistantMessage', "
    "'content'), 'msg': 'Input should be a valid string', 'input': None}\n"
)


def test_a_slow_stream_is_judged_by_the_time_since_the_last_token(server: ChatServer) -> None:
    # 8 chunks 0.25 s apart: 2 s in all, longer than the timeout, but never silent for 1.5 s.
    server.push(chat_stream([f"t{i} " for i in range(8)], usage=(3, 8), event_delay=0.25))

    reply = make(server, timeout=1.5, max_retries=0).complete(HI)

    assert reply.text == "t0 t1 t2 t3 t4 t5 t6 t7 " and reply.usage == Usage(3, 8)
    assert server.requests[0].json["stream"] is True


def test_a_stream_that_goes_silent_times_out_and_the_retry_waits_for_before_retry(server: ChatServer) -> None:
    server.push(chat_stream(["never", " finished"], event_delay=5), chat("second try"))
    seen: list[str] = []

    reply = make(server, timeout=1, max_retries=1, before_retry=lambda f: seen.append(f.kind)).complete(HI)

    assert reply.text == "second try"
    assert seen == ["timeout"]  # called once, before the retry was sent


def test_a_timeout_that_ends_the_call_is_a_model_timeout_error(server: ChatServer) -> None:
    server.push(chat_stream(["a", "b"], event_delay=5))
    with pytest.raises(ModelTimeoutError, match="sent nothing for 1 s"):
        make(server, timeout=1, max_retries=0).complete(HI)


def test_a_validation_error_under_500_is_not_retried(server: ChatServer) -> None:
    server.push(error(500, LLAMA_VALIDATION_500, type="internal_server_error"), chat("never sent"))

    with pytest.raises(ModelResponseError, match="not retried") as info:
        make(server, max_retries=4).complete(HI)

    assert info.value.status_code == 500
    assert sum(r.method == "POST" for r in server.requests) == 1


def test_an_ordinary_500_is_still_retried(server: ChatServer) -> None:
    server.push(error(500, "CUDA out of memory", type="internal_server_error"), chat("ok"))
    assert make(server).complete(HI).text == "ok"


def test_tool_calls_arrive_whole_from_a_stream(server: ChatServer) -> None:
    server.push(chat(None, tool_calls=[("c1", "add", '{"a": 1, "b": 22}'), ("c2", "neg", '{"x": 3}')]))

    reply = make(server).complete(HI, tools=[ToolSpec("add", "", {"type": "object"})])

    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("c1", "add", {"a": 1, "b": 22}), ("c2", "neg", {"x": 3})
    ]
    assert reply.finish_reason == "stop"


def test_arguments_json_cannot_carry_are_sent_as_json(server: ChatServer) -> None:
    server.push(chat("ok"))
    history = [
        Message("user", "go"),
        Message("assistant", "", (ToolCall("c1", "f", {"x": {2, "A"}, "y": (1, 2)}),)),
        Message("tool", "done", tool_call_id="c1"),
    ]

    make(server).complete(history)

    sent = server.requests[0].json["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent) == {"x": ["A", 2], "y": [1, 2]}


def test_a_server_that_ignores_stream_still_gives_a_reply(server: ChatServer) -> None:
    server.push(Reply(body=chat("whole", usage=(2, 1)).body, verbatim=True))  # JSON, not SSE

    reply = make(server).complete(HI)

    assert (reply.text, reply.usage) == ("whole", Usage(2, 1))


def test_an_error_event_inside_a_stream_is_a_model_error(server: ChatServer) -> None:
    server.push(Reply(events=[{"error": {"message": "llama_decode returned -1", "type": "server_error"}}]))
    with pytest.raises(ModelResponseError, match="sent an error inside its reply: llama_decode returned -1"):
        make(server).complete(HI)
