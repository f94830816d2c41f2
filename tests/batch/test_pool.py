"""The engine under batch and bench: resumable results, lazy pools, a broken item reported, not fatal."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from codeact.batch.pool import Finished, run_pool, run_resumable
from codeact.batch.results import ResultsFile, TaskResult, by_task_id


def row(task_id: str, *, status: str = "success", error: str | None = None) -> TaskResult:
    return TaskResult(task_id=task_id, status=status, output=task_id.upper(), expected=None, solved=status == "success",
                      steps=1, prompt_tokens=0, completion_tokens=0, seconds=0.0, error=error)


def work(item: str) -> TaskResult:
    if item == "boom":
        raise ValueError("broken item")
    return row(item)


def broken(item: str, exc: Exception) -> TaskResult:
    return row(item, status="crash", error=f"{type(exc).__name__}: {exc}")


def test_threads_run_workers_items_at_once_and_a_raising_item_becomes_its_result() -> None:
    together = threading.Barrier(2, timeout=60)

    def paired(item: str) -> TaskResult:
        if item in ("a", "b"):
            together.wait()  # only passes when a and b run at the same time
        return work(item)

    results = list(run_pool(["a", "b", "boom", "c"], paired, workers=2, processes=False, crashed=broken))
    by_id = {r.task_id: r for r in results}
    assert sorted(by_id) == ["a", "b", "boom", "c"]
    assert by_id["boom"].status == "crash" and by_id["boom"].error == "ValueError: broken item"
    assert by_id["c"].output == "C"


def test_processes_run_a_picklable_work_function() -> None:
    results = list(run_pool(["x", "boom"], work, workers=2, processes=True, crashed=broken))
    assert sorted((r.task_id, r.status) for r in results) == [("boom", "crash"), ("x", "success")]


def test_a_rerun_skips_what_the_file_holds_and_runs_only_the_rest(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl", key=by_task_id)
    ran: list[str] = []

    def execute(todo: Sequence[str], finished: Finished) -> None:
        for item in todo:
            ran.append(item)
            finished(work(item))

    seen: list[tuple[str, bool]] = []
    run_resumable(["a", "b"], key=str, results=results, execute=execute)
    again = run_resumable(["a", "b", "c"], key=str, results=results, execute=execute,
                          on_result=lambda r, old: seen.append((r.task_id, old)))
    assert ran == ["a", "b", "c"]
    assert [r.task_id for r in again] == ["a", "b", "c"]
    assert seen == [("a", True), ("b", True), ("c", False)]
    assert len(results.path.read_text().splitlines()) == 3


def test_rows_of_either_kind_load_and_a_foreign_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    bench_row = ('{"taskset": "s", "model": "m", "agent": "a", "task_id": "t", "solved": true, "answered": true, '
                 '"status": "success", "output": 1, "expected": 1, "steps": 1, "prompt_tokens": 5, '
                 '"completion_tokens": 2, "seconds": 0.1, "error_kind": null, "step_errors": {}, "model_timeouts": 0}')
    batch_row = ('{"batch_id": "b1", "task_id": "u", "run_id": "r", "status": "success", "output": 2, "expected": 2, '
                 '"solved": true, "steps": 2, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.2, "attempts": 2}')
    path.write_text(bench_row + "\n[1, 2]\n" + batch_row + "\n")
    loaded = ResultsFile(path, key=by_task_id).load()
    assert sorted(loaded) == ["t", "u"]
    assert loaded["t"].key == ("s", "m", "a", "t") and loaded["u"].attempts == 2 and loaded["u"].batch_id == "b1"
