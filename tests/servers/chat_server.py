"""A small, real HTTP server speaking the chat-completions and Messages APIs, for tests.

It answers from a queue of scripted replies (including error statuses, delays, dropped
connections and SSE streams) and records every request it receives, so tests exercise the
real SDKs over real sockets instead of mocks.

In a test::

    from tests.servers.chat_server import ChatServer, chat, error

    with ChatServer([error(503, "busy"), chat("hello", usage=(5, 1))]) as server:
        model = OpenAICompatible("m", base_url=server.url)
        ...
        assert len(server.requests) == 2
        assert server.requests[-1].json["messages"][0]["content"] == "hi"

As a subprocess (prints the base URL, e.g. ``http://127.0.0.1:41234/v1``, on its first line)::

    python -m tests.servers.chat_server --echo [--port 0] [--replies replies.json]

where ``replies.json`` holds a list of objects with the fields of :class:`Reply`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "ChatServer",
    "Recorded",
    "Reply",
    "Responder",
    "anthropic_error",
    "as_requested",
    "chat",
    "chat_stream",
    "echo",
    "error",
    "messages_reply",
]


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Reply:
    """What the server sends back for one request.

    Args:
        status: HTTP status code.
        body: a dict/list is sent as JSON, a str or bytes as-is.
        headers: extra response headers (e.g. ``{"Retry-After": "0"}``).
        delay: seconds to wait before answering (to provoke client timeouts).
        events: when set, the reply is an SSE stream: each dict is sent as ``data: <json>``,
            each str as a raw ``data:`` payload; ``done`` appends ``data: [DONE]``.
        event_delay: seconds between SSE events.
        drop: close the connection without answering at all.
        verbatim: send `body` as JSON even when the request asked for a stream (as a server
            that ignores `stream` does); otherwise a `chat(...)` body is streamed on request.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    events: Sequence[Any] | None = None
    event_delay: float = 0.0
    done: bool = True
    drop: bool = False
    verbatim: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        return cls(**data)


Responder = Callable[[Recorded], Reply]


def chat(
    text: str | None = "",
    *,
    tool_calls: Iterable[tuple[str, str, str]] = (),
    usage: tuple[int, int] | None = (0, 0),
    finish_reason: str | None = "stop",
    model: str = "test-model",
) -> Reply:
    """A chat.completion reply; `tool_calls` are (id, name, raw arguments JSON) triples."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    calls = [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
        for cid, name, args in tool_calls
    ]
    if calls:
        message["tool_calls"] = calls
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = _usage(*usage)
    return Reply(body=body)


def chat_stream(
    chunks: Iterable[str],
    *,
    usage: tuple[int, int] | None = None,
    finish_reason: str = "stop",
    model: str = "test-model",
    event_delay: float = 0.0,
) -> Reply:
    """An SSE chat.completion.chunk stream; with `usage`, a final choice-less usage chunk."""

    def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }

    events: list[Any] = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": piece}, None) for piece in chunks]
    events.append(chunk({}, finish_reason))
    if usage is not None:
        events.append(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": _usage(*usage),
            }
        )
    return Reply(events=events, event_delay=event_delay)


def error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An OpenAI-style error body: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Reply(status=status, body=body, headers=dict(headers or {}))


def messages_reply(
    text: str = "",
    *,
    tool_uses: Iterable[tuple[str, str, Any]] = (),
    usage: tuple[int, int] = (0, 0),
    stop_reason: str = "end_turn",
    stop_sequence: str | None = None,
    model: str = "claude-test",
) -> Reply:
    """An Anthropic Messages API reply; `tool_uses` are (id, name, input) triples."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": i, "name": n, "input": inp} for i, n, inp in tool_uses]
    body = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }
    return Reply(body=body)


def anthropic_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An Anthropic-style error body: ``{"type": "error", "error": {"type", "message"}}``."""
    body = {"type": "error", "error": {"type": type, "message": message}}
    return Reply(status=status, body=body, headers=dict(headers or {}))


def echo(request: Recorded) -> Reply:
    """Answer a chat-completions request with ``echo: <last user message>``."""
    data = request.json or {}
    users = [m for m in data.get("messages", []) if m.get("role") == "user"]
    last = users[-1]["content"] if users else ""
    if not isinstance(last, str):
        last = json.dumps(last)
    if data.get("stream"):
        return chat_stream([f"echo: {last}"], usage=(1, 1))
    return chat(f"echo: {last}", usage=(1, 1))


def as_requested(reply: Reply, request: Recorded) -> Reply:
    """A scripted `chat(...)` reply, sent as an SSE stream when the request asked for one.

    A real server streams whenever the client asks, so a test scripts the reply once and the
    client may read it either way. Errors, raw bodies and explicit streams are sent as scripted.
    """
    body = reply.body
    try:
        streaming = bool((request.json or {}).get("stream"))
    except ValueError:
        streaming = False
    if not streaming or reply.verbatim or reply.events is not None or reply.status != 200 or not isinstance(body, dict):
        return reply
    if body.get("object") != "chat.completion":
        return reply
    choice = body["choices"][0]
    message = choice.get("message") or {}

    def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {"id": body.get("id", "chatcmpl-test"), "object": "chat.completion.chunk", "created": 0,
                "model": body.get("model", "test-model"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    events: list[Any] = [chunk({"role": "assistant", "content": ""}, None)]
    text = message.get("content") or ""
    events += [chunk({"content": text[i : i + 7]}, None) for i in range(0, len(text), 7)]
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        events.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": function["name"], "arguments": ""}}]}, None))
        arguments = function.get("arguments") or ""
        for i in range(0, len(arguments), 5):
            events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + 5]}}]},
                                None))
    events.append(chunk({}, choice.get("finish_reason")))
    if body.get("usage") is not None:
        usage = {k: v for k, v in body.items() if k != "choices"}
        events.append({**usage, "object": "chat.completion.chunk", "choices": []})
    return Reply(events=events, headers=reply.headers, delay=reply.delay, event_delay=reply.event_delay)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


_MODELS_LIST = {"object": "list", "data": [{"id": "test-model", "object": "model", "owned_by": "test"}]}


class ChatServer:
    """A threaded HTTP server on 127.0.0.1 answering from a queue of :class:`Reply`.

    When the queue is empty, `default` answers (e.g. :func:`echo`); without one the server
    answers 500 with a message saying the script ran out. ``GET /v1/models`` is answered
    with a one-model list without consuming the queue.
    """

    def __init__(
        self,
        replies: Iterable[Reply | Responder] = (),
        *,
        default: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._queue: deque[Reply | Responder] = deque(replies)
        self._default = default
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Recorded] = []
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT`` (what the Anthropic SDK wants as base_url)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (what OpenAI-compatible clients want as base_url)."""
        return f"{self.base}/v1"

    def push(self, *replies: Reply | Responder) -> None:
        """Append replies to the queue."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    def start(self) -> ChatServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:  # noqa: PYI034 - Self needs Python 3.11
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------

    def _next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            item = self._queue.popleft() if self._queue else None
        if item is None:
            if self._default is not None:
                return as_requested(self._default(request), request)
            return error(500, "chat_server: no scripted reply left", type="server_error")
        return as_requested(item(request) if callable(item) else item, request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body wait ~40 ms for delayed ACKs

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    with server._lock:
                        server.requests.append(self._recorded(b""))
                    self._send(Reply(body=_MODELS_LIST))
                else:
                    self._send(server._next_reply(self._recorded(b"")))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                self._send(server._next_reply(self._recorded(body)))

            def _recorded(self, body: bytes) -> Recorded:
                headers = {k.lower(): v for k, v in self.headers.items()}
                return Recorded(self.command, self.path, headers, body)

            def _send(self, reply: Reply) -> None:
                try:
                    stopped = bool(reply.delay) and server._stopping.wait(reply.delay)
                    if stopped or reply.drop:
                        self.close_connection = True
                        return
                    if reply.events is not None:
                        self._send_events(reply)
                    else:
                        self._send_body(reply)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _send_body(self, reply: Reply) -> None:
                if isinstance(reply.body, (dict, list)):
                    payload, ctype = json.dumps(reply.body).encode(), "application/json"
                elif isinstance(reply.body, str):
                    payload, ctype = reply.body.encode(), "text/plain; charset=utf-8"
                else:
                    payload, ctype = reply.body or b"", "application/octet-stream"
                self.send_response(reply.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def _send_events(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.close_connection = True
                events = list(reply.events or ())
                if reply.done:
                    events.append("[DONE]")
                for event in events:
                    data = event if isinstance(event, str) else json.dumps(event)
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()
                    if reply.event_delay and server._stopping.wait(reply.event_delay):
                        return

        return Handler


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scripted chat-completions server for tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--replies", help="JSON file holding a list of Reply objects")
    parser.add_argument(
        "--echo", action="store_true", help="echo the last user message once the queue is empty"
    )
    args = parser.parse_args(argv)
    replies: list[Reply | Responder] = []
    if args.replies:
        with open(args.replies, encoding="utf-8") as fh:
            replies = [Reply.from_dict(item) for item in json.load(fh)]
    server = ChatServer(replies, default=echo if args.echo else None, port=args.port).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
