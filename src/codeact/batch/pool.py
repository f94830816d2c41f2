"""The engine under `codeact batch` and `codeact bench`: work on a pool, results resumable.

`run_resumable` splits the work into what `results.jsonl` already holds and what is left, hands
what is left to an executor (a local pool here, or Ray), and appends each result the moment it
arrives, in the calling thread: the driver is the file's only writer.

`run_pool` is the local executor. Work is submitted lazily (never more than `workers` items in
flight), so Ctrl-C leaves no long queue behind; the pending items are cancelled and the ones in
flight are not recorded, so a rerun does them again instead of keeping a result cut short by the
interruption. With `processes=True` each worker is a spawned process (not forked: the driver may
hold model clients, threads and secrets) that owns its sandboxes; with threads, the work shares
the driver's live objects (one loaded model, a served model's hooks).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from codeact.batch.results import ResultsFile, TaskResult

__all__ = ["Finished", "OnResult", "RunItems", "run_pool", "run_resumable"]

T = TypeVar("T")

OnResult = Callable[[TaskResult, bool], None]
"""Called with each result and whether it came from an earlier invocation (resumed)."""
Finished = Callable[[TaskResult], None]
RunItems = Callable[[Sequence[T], Finished], None]
"""An executor: runs the items and calls `finished` in the calling thread as each one ends."""


def run_resumable(
    items: Sequence[T],
    *,
    key: Callable[[T], Hashable],
    results: ResultsFile,
    execute: RunItems[T],
    on_result: OnResult | None = None,
) -> list[TaskResult]:
    """Run every item whose `key` is not yet in `results`; return the earlier results, then the new ones.

    Args:
        key: an item's key, as `results.key` makes it from a row.
        execute: runs the items left (`run_pool` wrapped, or the Ray engine).
    """
    done = results.load()
    collected: list[TaskResult] = []
    todo: list[T] = []
    for item in items:
        previous = done.get(key(item))
        if previous is None:
            todo.append(item)
            continue
        collected.append(previous)
        if on_result is not None:
            on_result(previous, True)

    def finished(result: TaskResult) -> None:
        results.append(result)
        collected.append(result)
        if on_result is not None:
            on_result(result, False)

    if todo:
        execute(todo, finished)
    return collected


def run_pool(
    items: Sequence[T],
    work: Callable[[T], TaskResult],
    *,
    workers: int,
    processes: bool,
    crashed: Callable[[T, Exception], TaskResult],
) -> Iterator[TaskResult]:
    """The results of `work(item)` as they finish, on `workers` threads or spawned processes.

    Args:
        work: for processes, a picklable callable (a module-level function or a partial of one).
        crashed: the result of an item whose `work` raised; one broken item never ends the rest.
            A worker process that died (BrokenProcessPool) is raised instead: its item is not
            recorded, so a rerun resumes it.
    """
    if not items:
        return
    size = max(1, min(workers, len(items)))
    pool: Executor
    if processes:
        pool = ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"))
    else:
        pool = ThreadPoolExecutor(size, thread_name_prefix="codeact-pool")
    queue = iter(items)
    pending: dict[Future[TaskResult], T] = {}
    try:
        for item in _take(queue, size):
            pending[pool.submit(work, item)] = item
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported as this item's result
                    result = crashed(item, exc)
                yield result
            for item in _take(queue, len(done)):
                pending[pool.submit(work, item)] = item
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _take(queue: Iterator[T], n: int) -> list[T]:
    items = []
    for item in queue:
        items.append(item)
        if len(items) >= n:
            break
    return items
