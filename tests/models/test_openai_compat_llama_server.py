"""OpenAICompatible against a real llama.cpp server (llama-cpp-python's) running the 0.5B model."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeact.errors import ModelResponseError
from codeact.models.base import Message, ModelReply, ToolCall
from codeact.models.openai_compat import OpenAICompatible

pytestmark = pytest.mark.slow

PROMPT = [
    Message("system", "You are terse."),
    Message("user", "Write a python code block that prints 1+1, then explain it."),
]


def _weights() -> Path:
    pytest.importorskip("llama_cpp.server.app", reason="needs codeact[server]")
    weights = pytest.importorskip("codeact.models._weights")
    path = Path(weights.weights_path("0.5b"))
    if not path.is_file():
        pytest.skip("0.5B weights not assembled (python -m codeact.models._weights)")
    return path


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = _weights()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "1024"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_completion_stop_and_usage(llama_server: str) -> None:
    model = OpenAICompatible("qwen", base_url=llama_server, temperature=0, max_tokens=60)

    reply = model.complete(PROMPT, stop=["```\n"])

    assert "print" in reply.text and "```\n" not in reply.text
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.finish_reason in ("stop", "length")


def test_stream_matches_its_final_reply(llama_server: str) -> None:
    model = OpenAICompatible("qwen", base_url=llama_server, temperature=0, max_tokens=60)

    items = list(model.stream(PROMPT, stop=["```\n"]))

    final = items[-1]
    assert isinstance(final, ModelReply)
    assert len(items) > 3 and "".join(i for i in items[:-1] if isinstance(i, str)) == final.text
    assert "print" in final.text and "```\n" not in final.text


def test_acomplete(llama_server: str) -> None:
    model = OpenAICompatible("qwen", base_url=llama_server, temperature=0, max_tokens=20)
    reply = asyncio.run(model.acomplete([Message("user", "Say hi.")]))
    assert reply.text.strip() and reply.usage.prompt_tokens > 0


def test_samples_of_one_prompt_differ_and_greedy_replies_do_not(llama_server: str) -> None:
    # What voting and a hotter retry rest on: the client sends no seed, and the server draws a new
    # one for each such request from the one before, so samples of one prompt are not one reply.
    ask = [Message("user", "Invent a name for a pet and say why, in one sentence.")]
    hot = OpenAICompatible("qwen", base_url=llama_server, temperature=1.2, max_tokens=24)
    greedy = OpenAICompatible("qwen", base_url=llama_server, temperature=0, max_tokens=24)

    samples = {hot.complete(ask).text for _ in range(3)}
    repeats = {greedy.complete(ask).text for _ in range(2)}

    assert len(samples) >= 2, samples
    assert len(repeats) == 1


# -- what the server validates, and what a capped reply says ----------------------------------


def test_a_tool_call_turn_is_sent_in_a_form_the_server_accepts(llama_server: str) -> None:
    # The second step of every tool-calling run: the assistant turn that carried the calls, with
    # no text, then the results. llama.cpp's server answered `content: null` with a 500.
    model = OpenAICompatible("qwen", base_url=llama_server, temperature=0, max_tokens=20, max_retries=0)
    history = [
        Message("system", "You are terse."),
        Message("user", "What is 20 + 22? Use the add tool."),
        Message("assistant", "", (ToolCall("c1", "add", {"a": 20, "b": 22}), ToolCall("c2", "f", {"x": {2, "A"}}))),
        Message("tool", "42", tool_call_id="c1"),
        Message("tool", "ok", tool_call_id="c2"),
    ]

    reply = model.complete(history)

    assert reply.usage.prompt_tokens > 20 and reply.finish_reason in ("stop", "length")


def test_a_request_the_server_rejects_as_invalid_is_not_retried(llama_server: str) -> None:
    model = OpenAICompatible("qwen", base_url=llama_server, max_tokens=5, max_retries=4, retry_delay=2.0,
                             extra_params={"top_k": "many"})
    started = time.monotonic()

    with pytest.raises(ModelResponseError, match="not retried") as info:
        model.complete(PROMPT)

    assert info.value.status_code == 500  # llama-cpp-python's status for a validation error
    assert time.monotonic() - started < 5  # four retries would have waited on the backoff


@pytest.mark.parametrize("streamed", [False, True])
def test_a_reply_that_hits_the_cap_says_length(llama_server: str, streamed: bool) -> None:
    model = OpenAICompatible("qwen", base_url=llama_server, temperature=0, max_tokens=5)
    if streamed:
        reply = list(model.stream(PROMPT))[-1]
        assert isinstance(reply, ModelReply)
    else:
        reply = model.complete(PROMPT)
    assert reply.finish_reason == "length"
    assert reply.usage.completion_tokens == 5
