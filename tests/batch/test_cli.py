"""`codeact batch` as a user runs it: a subprocess, a task file, a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli._helpers import codeact

REPLY = "```python\nfinal_answer(eval({question}))\n```"


def _tasks(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_batch_runs_a_task_file_writes_results_and_a_rerun_resumes(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path / "t.jsonl", [{"id": "a", "question": "2 * 3", "answer": 6},
                                          {"id": "b", "question": "1 + 1", "answer": 3}])
    out = tmp_path / "out"
    args = ("batch", str(tasks), "-m", "scripted", "--reply", REPLY, "--out", str(out), "-j", "2")
    first = codeact(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "2 tasks: 1 solved; 2 success"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["task_id"], r["output"], r["solved"]) for r in rows) == [("a", 6, True), ("b", 2, False)]
    again = codeact(tmp_path, *args)
    assert again.returncode == 0 and "2 done earlier" in again.stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_batch_refuses_a_task_file_that_names_code_without_allow_task_code(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path / "t.jsonl", [{"id": "a", "question": "q", "answer": 1, "checker": "shutil:move"}])
    result = codeact(tmp_path, "batch", str(tasks), "-m", "scripted", "--reply", REPLY, "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "--allow-task-code" in result.stderr
    assert not (tmp_path / "o" / "results.jsonl").exists()
