"""`codeact serve` under load: N concurrent runs (scripted model) watched by M SSE clients.

Run:
    .venv/bin/python benchmarks/server_load.py --runs 16 --clients 64

The server runs in its own process (uvicorn, the real app, each run in its own sandbox; the
model is scripted, with `--model-delay` seconds per reply so runs overlap as real ones do). This
process is the clients: it starts the N runs over HTTP, then opens M event streams spread over
them (threads, one socket each) and reads every stream to its end. For each event a client
receives, the delay is measured from the time the run wrote it to the log (the event row's
`time`, read from the run log after the runs end) to when the client read it; events a stream
replays from before it connected are not counted. Printed: runs held at once (live runs the
server reported at its peak), SSE clients held (streams that read their run to its end), events
delivered, and the p50/p95/max delay.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

TOKEN = "bench-token-0123456789"


def serve(port: int, home: Path, steps: int, delay: float, sandbox: str, max_runs: int) -> None:
    """The server process: the real app, a scripted async model with a delay per reply."""
    import asyncio

    from codeact.models.base import Model, ModelReply, Usage
    from codeact.server import Limits, ServerConfig, Users
    from codeact.server import serve as run_server

    class Paced(Model):
        name = "paced"

        def __init__(self) -> None:
            self.calls = 0

        def _reply(self) -> ModelReply:
            self.calls += 1
            done = self.calls >= steps
            code = "final_answer(sum(range(10)))" if done else f"x = {self.calls} * 2\nprint('step', x)"
            return ModelReply(f"Thought: step {self.calls}.\n```python\n{code}\n```", Usage(100, 20))

        def complete(self, messages: Any, *, stop: Any = None, tools: Any = None) -> ModelReply:
            time.sleep(delay)
            return self._reply()

        async def acomplete(self, messages: Any, *, stop: Any = None, tools: Any = None) -> ModelReply:
            await asyncio.sleep(delay)
            return self._reply()

    config = ServerConfig(models={"paced": Paced}, default_model="paced", users=Users({TOKEN: "bench"}),
                          data_dir=home / "data", sandbox=sandbox, store=home / "runs.db",
                          limits=Limits(max_runs=max_runs, max_runs_per_user=max_runs, max_streams=4096))
    run_server(config, host="127.0.0.1", port=port, log_level="error")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(port: int, method: str, path: str, body: Any = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
    return json.loads(payload)


def _watch(port: int, run_id: str, received: list[tuple[str, int, float, float]], ended: list[str]) -> None:
    """Read one run's stream to its end; note (run, seq, connect time, receive time) per event."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connected = time.time()
    conn.request("GET", f"/api/runs/{run_id}/events", headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    seq = None
    for line in iter(response.readline, b""):
        if line.startswith(b"id: "):
            seq = int(line[4:])
        elif line.startswith(b"data: ") and seq is not None:
            received.append((run_id, seq, connected, time.time()))
            seq = None
        elif line.startswith(b"event: end"):
            ended.append(run_id)
            break
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps per run (the last one answers)")
    parser.add_argument("--model-delay", type=float, default=0.5, help="seconds per model reply")
    parser.add_argument("--sandbox", default="default", help="default (isolated) or process")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, Path(args.home), args.steps, args.model_delay, args.sandbox, max(args.runs, 1))
        return

    home = Path(tempfile.mkdtemp(prefix="codeact-server-load-"))
    port = _free_port()
    env = {**os.environ, "CODEACT_HOME": str(home)}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--home", str(home),
                               "--steps", str(args.steps), "--model-delay", str(args.model_delay),
                               "--sandbox", args.sandbox, "--runs", str(args.runs)], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _request(port, "GET", "/api/config")
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        started = time.monotonic()
        received: list[tuple[str, int, float, float]] = []
        ended: list[str] = []
        watchers: list[threading.Thread] = []
        lock = threading.Lock()

        def launch(index: int) -> None:
            """Start run `index`, then its share of the clients at once (they watch it live)."""
            run_id = _request(port, "POST", "/api/runs", {"task": f"load {index}", "max_steps": args.steps + 1})["id"]
            for _ in range(args.clients // args.runs + (index < args.clients % args.runs)):
                thread = threading.Thread(target=_watch, args=(port, run_id, received, ended))
                thread.start()
                with lock:
                    watchers.append(thread)

        launchers = [threading.Thread(target=launch, args=(i,)) for i in range(args.runs)]
        for thread in launchers:
            thread.start()
        peak = 0
        while any(t.is_alive() for t in launchers) or any(t.is_alive() for t in list(watchers)):
            live = sum(1 for r in _request(port, "GET", f"/api/runs?limit={args.runs}") if r["live"])
            peak = max(peak, live)
            time.sleep(0.2)
        seconds = time.monotonic() - started
        statuses = [r["status"] for r in _request(port, "GET", f"/api/runs?limit={args.runs}")]
    finally:
        server.terminate()
        server.wait(30)

    with sqlite3.connect(home / "runs.db") as db:
        written = {(run, seq): at for run, seq, at in db.execute("SELECT run_id, seq, time FROM events")}
    delays = sorted(got - written[(run, seq)] for run, seq, connected, got in received
                    if (run, seq) in written and written[(run, seq)] >= connected)
    if not delays:
        raise SystemExit("no live events were measured")
    q = statistics.quantiles(delays, n=100)
    print(f"machine: {os.cpu_count()} cores; sandbox {args.sandbox}; {args.steps} steps per run, "
          f"{args.model_delay:g} s per model reply")
    print(f"runs held at once: {peak} of {args.runs} started ({statuses.count('success')} answered)")
    print(f"SSE clients held: {len(ended)} of {args.clients} read their run to its end")
    print(f"events delivered: {len(received)} ({len(delays)} live, measured) in {seconds:.1f} s")
    print(f"log write -> client: p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
