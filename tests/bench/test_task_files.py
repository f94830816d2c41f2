"""Task files are data: code they name runs only with an explicit opt-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeact.bench.tasks import load_taskset
from codeact.errors import ConfigError

SAFE = {"id": "ok", "question": "q", "answer": 1}


def task_file(tmp_path: Path, *rows: dict) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [("checker", "shutil:move"), ("tools", "os"), ("tools", "os:system"), ("checker", "tests/x.py:check")],
)
def test_a_file_naming_code_is_refused_without_the_opt_in(tmp_path: Path, field: str, value: str) -> None:
    path = task_file(tmp_path, SAFE, {"id": "evil", "question": "q", "answer": 1, field: value})

    with pytest.raises(ConfigError, match="--allow-task-code") as info:
        load_taskset(path)

    assert "'evil'" in str(info.value) and value in str(info.value)


def test_the_opt_in_loads_it(tmp_path: Path) -> None:
    path = task_file(tmp_path, {"id": "a", "question": "q", "answer": 1, "checker": "shutil:move"})
    assert load_taskset(path, allow_code=True).tasks[0].checker == "shutil:move"


def test_builtin_checkers_and_shipped_tools_need_no_opt_in(tmp_path: Path) -> None:
    path = task_file(tmp_path, {"id": "a", "question": "q", "answer": [1], "checker": "set",
                                "tools": "codeact.bench.shop"})
    assert load_taskset(path).tasks[0].tools == "codeact.bench.shop"
    assert len(load_taskset("shop").tasks) > 10  # the shipped set names its tools: trusted
