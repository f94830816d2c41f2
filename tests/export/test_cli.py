"""`codeact export` as a user runs it, on a recorded batch."""

from __future__ import annotations

import json
from pathlib import Path

from codeact.batch import AgentConfig, run_batch
from codeact.bench.tasks import Task
from tests.cli._helpers import codeact

REPLY = "```python\nfinal_answer(eval({question}))\n```"


def test_export_writes_the_solved_runs_of_a_batch(tmp_path: Path) -> None:
    tasks = [Task("a", "2 * 3", 6), Task("b", "1 + 1", 3)]
    run_batch(tasks, AgentConfig(model="scripted", replies=(REPLY,)), out=tmp_path / "b")
    result = codeact(tmp_path, "export", str(tmp_path / "x"), "--store", str(tmp_path / "b" / "runs.db"),
                     "-f", "trl", "--validation", "0", "--solved-in", str(tmp_path / "b" / "results.jsonl"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 train, 0 validation examples; left out: 1 not_solved"
    row = json.loads((tmp_path / "x" / "train.jsonl").read_text())
    assert row["messages"][1]["content"].endswith("2 * 3") and row["messages"][-1]["role"] == "assistant"


def test_export_refuses_a_bench_results_file_that_names_no_runs(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text(json.dumps({"task_id": "a", "solved": True}) + "\n")
    result = codeact(tmp_path, "export", str(tmp_path / "x"), "--store", str(tmp_path / "none.db"),
                     "--solved-in", str(tmp_path / "r.jsonl"))
    assert result.returncode == 2 and "names no runs" in result.stderr
