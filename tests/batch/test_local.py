"""The local engine: a real process pool, real sandboxes, the real run store."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from codeact.batch import AgentConfig, run_batch
from codeact.batch.engine import batch_id_for
from codeact.batch.worker import find_run, run_task
from codeact.bench.tasks import Task
from codeact.runs.store import RunStore

ANSWER = "Thought: compute.\n```python\nx = eval({question})\n```"
FINAL = "Thought: done.\n```python\nfinal_answer(x)\n```"
CONFIG = AgentConfig(model="scripted", replies=(ANSWER, FINAL), max_steps=4)
TASKS = [Task(f"t{i}", f"{i} * 7", i * 7) for i in range(4)]


def test_a_batch_runs_every_task_once_logs_each_run_and_a_rerun_skips_them(tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []
    results = run_batch(TASKS, CONFIG, out=tmp_path, concurrency=2, on_result=lambda r, old: seen.append((r.task_id, old)))
    assert [r.task_id for r in results] == ["t0", "t1", "t2", "t3"]
    assert all(r.solved and r.status == "success" and r.steps == 2 for r in results), results
    assert [r.output for r in results] == [0, 7, 14, 21]
    assert sorted(seen) == [(t.id, False) for t in TASKS]
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4
    with RunStore(tmp_path / "runs.db") as store:
        runs = store.runs(limit=None)
        assert sorted(r.meta["batch_task"] for r in runs) == ["t0", "t1", "t2", "t3"]
        assert {r.id for r in runs} == {r.run_id for r in results}

    seen.clear()
    again = run_batch(TASKS, CONFIG, out=tmp_path, concurrency=2, on_result=lambda r, old: seen.append((r.task_id, old)))
    assert again == results
    assert all(old for _, old in seen)
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4


def test_a_task_whose_worker_died_mid_run_resumes_that_run_instead_of_paying_again(tmp_path: Path) -> None:
    slow = "Thought: wait.\n```python\nimport time\ntime.sleep(2)\ny = x\n```"
    config = AgentConfig(model="scripted", replies=(ANSWER, slow, FINAL), max_steps=5)
    task = TASKS[3]
    batch_id = batch_id_for(tmp_path)
    worker = multiprocessing.get_context("spawn").Process(
        target=run_task, args=(config, task, batch_id, tmp_path / "runs.db"))
    worker.start()
    deadline = time.monotonic() + 60
    with RunStore(tmp_path / "runs.db") as store:
        while time.monotonic() < deadline:
            record = find_run(store, batch_id, task.id)
            if record is not None and record.steps >= 1:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the worker never finished step 1")
    time.sleep(0.5)  # inside step 2's sleep
    worker.kill()
    worker.join()

    results = run_batch([task], config, out=tmp_path)
    assert results[0].run_id == record.id, results[0].error
    assert results[0].solved and results[0].output == 21 and results[0].attempts == 2
    with RunStore(tmp_path / "runs.db") as store:
        assert len(store.runs(limit=None)) == 1
        kinds = [e["kind"] for e in store.raw_events(record.id)]
    assert kinds.count("run_resumed") == 1
    assert kinds.count("model_replied") == 3  # step 1's reply was not asked for again
