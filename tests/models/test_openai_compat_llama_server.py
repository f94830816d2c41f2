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

from codeact.models.base import Message, ModelReply
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
