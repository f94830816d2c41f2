"""`run_batch`: an agent configuration over many tasks, locally on a process pool or on Ray.

Each local worker is a process of its own (spawned, not forked: the driver may hold model
clients, threads and secrets) that owns its sandboxes, so its sandbox zygote is started once and
serves every task the worker runs (`codeact.batch.pool`). Workers write their runs straight into
the batch's SQLite run store (many processes may share it); the driver alone appends to
`results.jsonl`.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

from codeact.batch.config import AgentConfig
from codeact.batch.pool import Finished, OnResult, run_pool, run_resumable
from codeact.batch.results import RESULTS_FILE, ResultsFile, TaskResult, by_task_id
from codeact.batch.worker import crashed, run_task
from codeact.bench.tasks import Task
from codeact.errors import ConfigError

__all__ = ["BATCH_FILE", "RUNS_FILE", "batch_id_for", "run_batch"]

RUNS_FILE = "runs.db"
BATCH_FILE = "batch.json"


def batch_id_for(out: Path) -> str:
    """The batch's id, made once and kept in `out/batch.json`: a rerun is the same batch."""
    path = out / BATCH_FILE
    if path.exists():
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["batch_id"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path} is not a codeact batch file; choose another --out") from None
    out.mkdir(parents=True, exist_ok=True)
    batch_id = uuid.uuid4().hex[:12]
    path.write_text(json.dumps({"batch_id": batch_id}) + "\n", encoding="utf-8")
    return batch_id


def run_batch(
    tasks: Sequence[Task],
    config: AgentConfig,
    *,
    out: Path,
    concurrency: int = 1,
    ray: bool = False,
    ray_address: str | None = None,
    sandboxes_per_node: int | None = None,
    requests_per_second: float | None = None,
    on_result: OnResult | None = None,
) -> list[TaskResult]:
    """Run `config` on every task not yet in `out/results.jsonl`; return every task's result.

    Args:
        out: the batch directory: results.jsonl, runs.db (the run log), batch.json (its id).
        concurrency: tasks at once (local: worker processes; Ray: worker actors).
        ray, ray_address: run on Ray (a local cluster, or the one at the address).
        sandboxes_per_node: Ray: the most workers (each owning its sandboxes) on one node.
        requests_per_second: Ray: one rate limit for the model endpoint, shared by all workers.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ConfigError("task ids must be unique within a batch")
    out = Path(out)
    batch_id = batch_id_for(out)
    store = out / RUNS_FILE

    def execute(todo: Sequence[Task], finished: Finished) -> None:
        if ray or ray_address:
            from codeact.batch.ray_engine import run_on_ray

            run_on_ray(todo, config, batch_id, store, finished, workers=concurrency, address=ray_address,
                       sandboxes_per_node=sandboxes_per_node, requests_per_second=requests_per_second)
            return
        work = functools.partial(_local_task, config, batch_id, store)
        for result in run_pool(todo, work, workers=concurrency, processes=True,
                               crashed=functools.partial(crashed, batch_id)):
            finished(result)

    results = run_resumable(tasks, key=lambda task: task.id, execute=execute, on_result=on_result,
                            results=ResultsFile(out / RESULTS_FILE, key=by_task_id))
    order = {task_id: i for i, task_id in enumerate(ids)}
    return sorted(results, key=lambda r: order.get(r.task_id, len(order)))


def _local_task(config: AgentConfig, batch_id: str, store: Path, task: Task) -> TaskResult:
    """One task in a worker process (module level, so the pool can pickle it)."""
    return run_task(config, task, batch_id, store).result
