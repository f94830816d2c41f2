"""Exporting a recorded batch (real sandboxes, scripted model) to every format, read back by `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from codeact.batch import AgentConfig, run_batch
from codeact.bench.tasks import Task
from codeact.export import FORMATS, ExportOptions, export_runs
from codeact.export.writer import gguf_counter
from codeact.models._weights import ensure_weights
from codeact.runs.redact import Redactor
from codeact.runs.store import RunStore

SECRET = "planted-Secret-7f3a9c2e41"
FAIL = "Thought: try.\n```python\n1 / 0\n```"
STEP = "Thought: compute.\n```python\nx = eval({question})\n```"
FINAL = "Thought: done.\n```python\nfinal_answer(x)\n```"
TASKS = [Task("a", "2 * 3", 6), Task("b", "2 * 3", 6), Task("c", f"len({SECRET!r})", len(SECRET)),
         Task("d", "7 + 1", 8)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch")
    run_batch(TASKS, AgentConfig(model="scripted", replies=(FAIL, STEP, FINAL), max_steps=5), out=out, concurrency=2)
    return out


@pytest.fixture(scope="module")
def qwen() -> object:
    return gguf_counter(ensure_weights("0.5b"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_loads_with_datasets_fits_the_qwen_template_and_never_holds_the_secret(
        recorded: Path, qwen: object, fmt: str, tmp_path: Path) -> None:
    with RunStore(recorded / "runs.db") as store:
        report = export_runs(store, tmp_path, ExportOptions(format=fmt, validation=0.0, max_tokens=4000),
                             counter=qwen, redactor=Redactor({"PLANTED": SECRET}))  # type: ignore[arg-type]
    assert report.train == 3 and report.skipped == {"duplicate": 1}
    text = (tmp_path / "train.jsonl").read_text()
    assert SECRET not in text and "[REDACTED:PLANTED]" in text
    rows = datasets.load_dataset("json", data_files=str(tmp_path / "train.jsonl"), split="train")
    assert len(rows) == 3
    first = rows[0]
    if fmt == "openai":
        assistants = [m for m in first["messages"] if m["role"] == "assistant"]
        assert [m["weight"] for m in assistants] == [0, 1, 1]  # the step that raised is not trained on
    elif fmt == "sharegpt":
        assert [t["from"] for t in first["conversations"]][:2] == ["human", "gpt"] and first["system"]
    elif fmt == "trl":
        assert [m["role"] for m in first["messages"]][:3] == ["system", "user", "assistant"]
    else:
        assert "<execute>\n1 / 0\n</execute>" in first["conversations"][2]["content"]


def test_a_tight_token_budget_drops_examples_and_drop_removes_failed_turns(
        recorded: Path, qwen: object, tmp_path: Path) -> None:
    with RunStore(recorded / "runs.db") as store:
        tight = export_runs(store, tmp_path / "tight", ExportOptions(max_tokens=50), counter=qwen)  # type: ignore[arg-type]
        assert tight.train + tight.validation == 0 and tight.skipped["too_long"] == 3
        dropped = export_runs(store, tmp_path / "drop", ExportOptions(failed_steps="drop", validation=0.5))
    assert dropped.train + dropped.validation == 3
    rows = [json.loads(line) for name in ("train", "validation")
            for line in (tmp_path / "drop" / f"{name}.jsonl").read_text().splitlines()]
    for row in rows:
        assert all(m.get("weight", 1) == 1 for m in row["messages"])
        assert not any("1 / 0" in m["content"] for m in row["messages"])


def test_the_final_scan_refuses_an_example_the_redaction_missed(tmp_path: Path) -> None:
    # A record written without the run log's redaction (an older version, another tool) holding a
    # well-known key format, exported with a redactor told only one name and no formats.
    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
    events = [{"kind": "run_started", "task": "t", "agent": "code", "model": "m", "tools": [], "max_steps": 3},
              {"kind": "model_requested", "step": 1, "keep": 0,
               "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": f"use {key}"}]},
              {"kind": "model_replied", "step": 1, "text": "```python\nfinal_answer(1)\n```",
               "usage": {"prompt_tokens": 1, "completion_tokens": 1}, "seconds": 0.0}]
    with RunStore(tmp_path / "runs.db") as store:
        store.create_run(run_id="r1", task="t", agent="code", model="m")
        store.append_many("r1", [(i + 1, 0.0, e["kind"], 1, json.dumps(e)) for i, e in enumerate(events)],
                          status="success", steps=1)
        report = export_runs(store, tmp_path / "x", ExportOptions(validation=0.0),
                             redactor=Redactor({"OTHER": "unrelated-secret-value"}, formats=False))
    assert report.train == 0 and report.skipped == {"secret": 1}
    assert key not in (tmp_path / "x" / "train.jsonl").read_text()
