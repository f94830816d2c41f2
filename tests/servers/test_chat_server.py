"""The scripted chat server other tests rely on: queue, recording, errors, streaming, subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.servers.chat_server import ChatServer, Reply, chat, chat_stream, echo, error

ROOT = Path(__file__).resolve().parents[2]


def post(url: str, body: dict) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_queue_is_answered_in_order_and_requests_recorded() -> None:
    with ChatServer([error(503, "busy", headers={"Retry-After": "1"}), chat("hi", usage=(1, 2))]) as srv:
        status1, headers1, body1 = post(srv.url + "/chat/completions", {"model": "a", "messages": []})
        status2, _, body2 = post(srv.url + "/chat/completions", {"model": "b", "messages": []})
        status3, _, body3 = post(srv.url + "/chat/completions", {"model": "c", "messages": []})

    assert (status1, headers1["Retry-After"], json.loads(body1)["error"]["message"]) == (503, "1", "busy")
    assert status2 == 200 and json.loads(body2)["choices"][0]["message"]["content"] == "hi"
    assert status3 == 500 and b"no scripted reply left" in body3
    assert [r.json["model"] for r in srv.requests] == ["a", "b", "c"]


def test_stream_is_server_sent_events() -> None:
    with ChatServer([chat_stream(["a", "b"], usage=(1, 1))]) as srv:
        _, headers, raw = post(srv.url + "/chat/completions", {"stream": True})

    assert headers["Content-Type"] == "text/event-stream"
    events = [line[len("data: ") :] for line in raw.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[1:3]] == ["a", "b"]
    assert json.loads(events[-2])["usage"]["total_tokens"] == 2


def test_delay_and_default_responder() -> None:
    with ChatServer([Reply(delay=0.2, body={"ok": 1})], default=echo) as srv:
        start = time.monotonic()
        post(srv.url + "/chat/completions", {})
        assert time.monotonic() - start >= 0.2
        _, _, body = post(srv.url + "/chat/completions", {"messages": [{"role": "user", "content": "ping"}]})
    assert json.loads(body)["choices"][0]["message"]["content"] == "echo: ping"


def test_runs_as_a_subprocess(tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([{"status": 200, "body": {"scripted": True}}]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.chat_server", "--echo", "--replies", str(replies)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert json.loads(post(url + "/chat/completions", {})[2]) == {"scripted": True}
        _, _, body = post(url + "/chat/completions", {"messages": [{"role": "user", "content": "x"}]})
        assert json.loads(body)["choices"][0]["message"]["content"] == "echo: x"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_stop_wakes_a_delayed_reply() -> None:
    srv = ChatServer([Reply(delay=30)]).start()
    outcome: list[str] = []

    def call() -> None:
        try:
            urllib.request.urlopen(srv.url + "/chat/completions", b"{}", timeout=10)
            outcome.append("answered")
        except (urllib.error.URLError, ConnectionError) as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.1)
    start = time.monotonic()
    srv.stop()
    thread.join(timeout=10)
    assert time.monotonic() - start < 5
    assert outcome and outcome[0] != "answered"
