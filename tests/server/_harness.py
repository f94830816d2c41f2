"""A real codeact server on 127.0.0.1 (a random port, uvicorn in a thread) and a small HTTP client.

The client is the standard library's: requests go over a real socket to the real server, and
event streams are read line by line as a browser's EventSource would.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from codeact.models.base import Model
from codeact.models.scripted import ScriptedModel
from codeact.server import Limits, ServerConfig, Users, build_app

TOKENS = {"alice": "alice-token-123456", "bob": "bob-token-1234567"}


def code(src: str, thought: str = "Go.") -> str:
    return f"Thought: {thought}\n```python\n{src}\n```"


@dataclass
class Script:
    """Scripted models by name: each run gets a fresh ScriptedModel of its script."""

    scripts: dict[str, Sequence[Any]] = field(default_factory=dict)

    def factories(self) -> dict[str, Callable[[], Model]]:
        return {name: functools.partial(_scripted, list(replies), name) for name, replies in self.scripts.items()}


def _scripted(replies: list[Any], name: str) -> Model:
    return ScriptedModel(list(replies), name=name)


class Server:
    """`with Server(config) as server:` serves on a random port until the block ends."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.app = build_app(config)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                                     timeout_graceful_shutdown=5, lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def client(self, user: str | None = "alice", token: str | None = None) -> Client:
        return Client(self.port, token if token is not None else (TOKENS[user] if user else ""))


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        conn.close()
        return reply

    def start(self, task: str, model: str, **options: Any) -> str:
        reply = self.request("POST", "/api/runs", {"task": task, "model": model, **options})
        assert reply.status == 201, reply.body
        return str(reply.json()["id"])

    def wait(self, run_id: str, *, seconds: float = 60, until: Callable[[dict[str, Any]], bool] | None = None
             ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            run = self.request("GET", f"/api/runs/{run_id}").json()
            if (until(run) if until else not run["live"] and run["status"] != "running"):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {seconds} s")
            time.sleep(0.05)

    def events(self, run_id: str, *, last_event_id: int | None = None, timeout: float = 60,
               stop: Callable[[dict[str, Any]], bool] | None = None) -> Iterator[dict[str, Any]]:
        """The run's SSE events as {"id", "event", "data"} dicts, until the stream ends (or `stop`)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        conn.request("GET", f"/api/runs/{run_id}/events", headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        try:
            event: dict[str, Any] = {}
            while True:
                line = response.readline()
                if not line:
                    return
                text = line.decode().rstrip("\n")
                if not text:
                    if "data" in event:
                        event["data"] = json.loads(event["data"])
                        yield event
                        if stop is not None and stop(event):
                            return
                    event = {}
                elif text.startswith(":"):
                    continue
                else:
                    name, _, value = text.partition(": ")
                    event[name] = value
        finally:
            conn.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def config(tmp_path: Path, script: Script, *, tools: Sequence[Any] = (), sandbox: str = "default",
           limits: Limits | None = None, step_timeout: float = 30.0) -> ServerConfig:
    factories = script.factories()
    return ServerConfig(models=factories, default_model=next(iter(factories)),
                        users=Users({token: user for user, token in TOKENS.items()}), data_dir=tmp_path / "data",
                        tools=tools, sandbox=sandbox, step_timeout=step_timeout, store=tmp_path / "runs.db",
                        limits=limits or Limits())
