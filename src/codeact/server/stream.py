"""A run's events as Server-Sent Events, read from the run log.

Each SSE event is one logged event: `id` is its number in the run (so a client that reconnects
with `Last-Event-ID: N` gets exactly the events after N), `event` its kind, `data` the JSON the
log holds (already redacted and bounded by the log's limits). A model request carries the whole
conversation; the stream sends only its step and message count. When the run is over (it is not
being driven and its record no longer says "running") the stream sends an `end` event with the
run's status and closes. A comment line every `heartbeat` seconds keeps proxies from closing an
idle stream and lets the server notice a client that went away.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable

from codeact.server.record import LoggedEvent, WatchedStore

__all__ = ["event_stream", "sse"]

_BATCH = 200
_POLL_SECONDS = 2.0
"""A slow poll besides the wake-ups, for a run another process writes."""


def sse(event: LoggedEvent) -> bytes:
    """One logged event in SSE form."""
    data = event.data
    if event.kind == "model_requested":
        try:
            parsed = json.loads(data)
            data = json.dumps({"kind": event.kind, "step": parsed.get("step"),
                               "messages": len(parsed.get("messages") or ())})
        except ValueError:
            data = json.dumps({"kind": event.kind})
    # JSON text holds no raw line breaks; replacing them anyway keeps one event one `data:` line.
    data = data.replace("\r", "\\r").replace("\n", "\\n")
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()


async def event_stream(store: WatchedStore, run_id: str, after: int, *, live: Callable[[], bool],
                       heartbeat: float = 15.0) -> AsyncIterator[bytes]:
    """The run's events numbered above `after`, then those that come, until the run is over.

    Args:
        live: whether this server is driving the run now.
    """
    waiter = store.waiter(run_id)
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    try:
        yield b"retry: 2000\n\n"
        while True:
            waiter.clear()
            batch = await asyncio.to_thread(store.events_after, run_id, after, limit=_BATCH)
            for event in batch:
                yield sse(event)
                after = event.seq
            if batch:
                quiet_since = loop.time()
                if len(batch) == _BATCH:
                    continue
            elif not live():
                record = await asyncio.to_thread(store.get, run_id)
                ours_or_dead = record.pid == os.getpid() or record.state != "running"
                if ours_or_dead and not live():
                    if not await asyncio.to_thread(store.events_after, run_id, after, limit=1):
                        end = {"status": record.state, "error": record.error, "steps": record.steps}
                        yield f"event: end\ndata: {json.dumps(end)}\n\n".encode()
                        return
                    continue
            try:
                await asyncio.wait_for(waiter.wait(), timeout=min(_POLL_SECONDS, heartbeat))
            except asyncio.TimeoutError:
                if loop.time() - quiet_since >= heartbeat:
                    quiet_since = loop.time()
                    yield b": keepalive\n\n"
    finally:
        store.forget(run_id, waiter)
