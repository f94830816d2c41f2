"""`run_batch`: an agent configuration over many tasks, locally on a process pool or on Ray.

Each local worker is a process of its own (spawned, not forked: the driver may hold model
clients, threads and secrets) that owns its sandboxes, so its sandbox zygote is started once and
serves every task the worker runs. Workers write their runs straight into the batch's SQLite run
store (many processes may share it); the driver alone appends to `results.jsonl`.
"""

from __future__ import annotations

import json
import multiprocessing
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from codeact.batch.config import AgentConfig
from codeact.batch.results import BatchResult, BatchResults
from codeact.batch.worker import TaskRun, crashed, run_task
from codeact.bench.tasks import Task
from codeact.errors import ConfigError

__all__ = ["BATCH_FILE", "RESULTS_FILE", "RUNS_FILE", "OnResult", "batch_id_for", "run_batch"]

RESULTS_FILE = "results.jsonl"
RUNS_FILE = "runs.db"
BATCH_FILE = "batch.json"

OnResult = Callable[[BatchResult, bool], None]
"""Called with each result and whether it came from an earlier invocation (resumed)."""


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
) -> list[BatchResult]:
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
    results_file = BatchResults(out / RESULTS_FILE)
    done = results_file.load()
    results: list[BatchResult] = []
    todo: list[Task] = []
    for task in tasks:
        if task.id in done:
            results.append(done[task.id])
            if on_result is not None:
                on_result(done[task.id], True)
        else:
            todo.append(task)

    def finished(result: BatchResult) -> None:
        results_file.append(result)
        results.append(result)
        if on_result is not None:
            on_result(result, False)

    if todo and (ray or ray_address):
        from codeact.batch.ray_engine import run_on_ray

        run_on_ray(todo, config, batch_id, out / RUNS_FILE, finished, workers=concurrency, address=ray_address,
                   sandboxes_per_node=sandboxes_per_node, requests_per_second=requests_per_second)
    elif todo:
        for run in _local(todo, config, batch_id, out / RUNS_FILE, concurrency):
            finished(run.result)
    order = {task_id: i for i, task_id in enumerate(ids)}
    return sorted(results, key=lambda r: order.get(r.task_id, len(order)))


def _local(tasks: Sequence[Task], config: AgentConfig, batch_id: str, store: Path,
           workers: int) -> Iterator[TaskRun]:
    """Results as they finish; tasks are submitted lazily so Ctrl-C leaves no long queue behind."""
    context = multiprocessing.get_context("spawn")
    queue = iter(tasks)
    pending: dict[Future[TaskRun], Task] = {}
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
        try:
            for task in _take(queue, workers):
                pending[pool.submit(run_task, config, task, batch_id, store)] = task
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        raise  # a worker died: not recorded, so a rerun resumes its runs
                    except Exception as exc:  # noqa: BLE001 - one broken task must not end the batch
                        yield TaskRun(crashed(batch_id, task, exc), store)
                for task in _take(queue, len(done)):
                    pending[pool.submit(run_task, config, task, batch_id, store)] = task
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _take(queue: Iterator[Any], n: int) -> list[Any]:
    items = []
    for item in queue:
        items.append(item)
        if len(items) >= n:
            break
    return items
