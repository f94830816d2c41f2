"""The batch on Ray: worker actors that own their sandboxes, runs copied back to the driver.

- Each worker is an actor holding one (or more, with its concurrency) sandbox zygote for its
  whole life. Actors ask for one `codeact_sandbox` resource each when the cluster offers it (start
  nodes with `--resources '{"codeact_sandbox": N}'`; a local cluster started here gets
  `sandboxes_per_node`), which caps the sandboxes on a node; otherwise one CPU each.
- Workers log runs into a store on their node (`node_store`), which outlives a killed actor. A
  task whose actor dies is retried by Ray on the restarted actor (`max_restarts`,
  `max_task_retries`); the retry finds the run by batch and task id and resumes it, so steps
  already paid for are not paid again. (On a multi-node cluster a retry that lands on another
  node does not see the first node's store and starts the run over.)
- A finished run's events travel back in the task's return value; the driver writes them into
  its own store, so the record ends where the batch was started.
- One token bucket per model endpoint, a named actor every worker asks before each model call,
  holds the request rate for the whole cluster.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from codeact._optional import require
from codeact.batch.config import AgentConfig
from codeact.batch.results import TaskResult
from codeact.batch.worker import crashed, run_task
from codeact.bench.tasks import Task
from codeact.runs.store import RunStore

__all__ = ["NAMESPACE", "RESOURCE", "RunCopy", "node_store", "run_on_ray", "worker_name", "write_copy"]

NAMESPACE = "codeact"
RESOURCE = "codeact_sandbox"
_RESTARTS = 3

RunCopy = tuple[dict[str, Any], list[tuple[int, float, str, int | None, str]]]
"""A run's summary row and its events (seq, time, kind, step, JSON text), as they left the worker."""


def node_store(batch_id: str) -> Path:
    """Where the workers of a batch on one node log their runs: the node's temp directory."""
    return Path(tempfile.gettempdir()) / f"codeact-batch-{batch_id}.db"


def worker_name(batch_id: str, index: int) -> str:
    return f"codeact-batch-{batch_id}-{index}"


class _Worker:
    """One worker actor: runs tasks one at a time with the sandboxes it owns."""

    def __init__(self, name: str, limiter: Any) -> None:
        self.name = name
        self.limiter = limiter

    def run(self, config: AgentConfig, task: Task, batch_id: str) -> tuple[TaskResult, RunCopy | None]:
        import ray

        def before_call() -> None:
            if self.limiter is not None:
                time.sleep(ray.get(self.limiter.reserve.remote()))

        store = node_store(batch_id)
        done = run_task(config, task, batch_id, store, meta={"batch_worker": self.name}, before_call=before_call)
        run_id = done.result.run_id
        return done.result, (_read_run(store, run_id) if run_id else None)


class _TokenBucket:
    """A request rate shared by every worker: `reserve` books the next slot and says how long to wait."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_free = 0.0
        self.calls = 0

    def reserve(self) -> float:
        now = time.time()
        slot = max(now, self.next_free)
        self.next_free = slot + self.interval
        self.calls += 1
        return slot - now

    def count(self) -> int:
        return self.calls


def _read_run(store: Path, run_id: str) -> RunCopy:
    with RunStore(store) as runs:
        record = runs.get(run_id)
    row = {"id": record.id, "task": record.task, "agent": record.agent, "model": record.model,
           "meta": record.meta, "status": record.status, "steps": record.steps,
           "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
           "cost": record.cost, "error": record.error}
    db = sqlite3.connect(store)
    try:  # the output as stored (encoded), so the copy holds exactly what the worker's store did
        row["output"] = db.execute("SELECT output FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        events = db.execute("SELECT seq, time, kind, step, data FROM events WHERE run_id = ? ORDER BY seq",
                            (run_id,)).fetchall()
    finally:
        db.close()
    return row, [tuple(e) for e in events]  # type: ignore[misc]


def write_copy(store: RunStore, copy: RunCopy) -> None:
    """The run into the driver's store, replacing an earlier copy of it (a retried task)."""
    row, events = copy
    run_id = row["id"]
    try:
        store.delete(run_id)
    except Exception:  # noqa: BLE001 - not there yet: the usual case
        pass
    store.create_run(run_id=run_id, task=row["task"], agent=row["agent"], model=row["model"], meta=row["meta"])
    store.append_many(run_id, events, status=row["status"], steps=row["steps"], prompt_tokens=row["prompt_tokens"],
                      completion_tokens=row["completion_tokens"], cost=row["cost"], output=row["output"],
                      error=row["error"], pid=None)


def run_on_ray(tasks: Sequence[Task], config: AgentConfig, batch_id: str, store: Path,
               finished: Callable[[TaskResult], None], *, workers: int, address: str | None,
               sandboxes_per_node: int | None, requests_per_second: float | None) -> None:
    """Run `tasks` on worker actors; call `finished` in the driver as each one ends."""
    ray = require("ray", extra="ray", feature="codeact batch --ray")
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, namespace=NAMESPACE)
        else:
            ray.init(num_cpus=workers, resources={RESOURCE: sandboxes_per_node or workers},
                     include_dashboard=False, namespace=NAMESPACE)
    try:
        limiter = None
        if requests_per_second:
            limiter = ray.remote(_TokenBucket).options(
                name=f"codeact-rate:{config.endpoint}", namespace=NAMESPACE, get_if_exists=True,
                lifetime="detached", num_cpus=0).remote(requests_per_second)
        placement = ({"num_cpus": 0, "resources": {RESOURCE: 1}} if RESOURCE in ray.cluster_resources()
                     else {"num_cpus": 1})
        actor_class = ray.remote(max_restarts=_RESTARTS, max_task_retries=_RESTARTS)(_Worker)
        actors = [actor_class.options(name=worker_name(batch_id, i), namespace=NAMESPACE, **placement)
                  .remote(worker_name(batch_id, i), limiter) for i in range(min(workers, len(tasks)))]
        queue = list(reversed(tasks))
        running: dict[Any, tuple[Any, Task]] = {}
        for actor in actors:
            if queue:
                task = queue.pop()
                running[actor.run.remote(config, task, batch_id)] = (actor, task)
        with RunStore(store) as driver_store:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                actor, task = running.pop(ready[0])
                try:
                    result, copy = ray.get(ready[0])
                    if copy is not None:
                        write_copy(driver_store, copy)
                except Exception as exc:  # noqa: BLE001 - out of retries: the task is reported, the batch goes on
                    result = crashed(batch_id, task, exc)
                finished(result)
                if queue:
                    task = queue.pop()
                    running[actor.run.remote(config, task, batch_id)] = (actor, task)
        for actor in actors:
            ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()
