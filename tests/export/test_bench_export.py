"""A `codeact bench` run (a real chat-completions server) exported with only its solved runs."""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from codeact.bench.model import BenchModel
from codeact.bench.runner import RESULTS_FILE, run_bench
from codeact.export import ExportOptions, export_runs
from codeact.runs.store import RunStore
from tests.bench.test_runner import TASKS, arithmetic
from tests.servers.chat_server import ChatServer


def test_a_bench_run_exports_its_solved_runs_only(tmp_path: Path) -> None:
    with ChatServer(default=arithmetic) as server:
        model = BenchModel(f"openai-compat:{server.url}#m", label="m", run_log=tmp_path / "runs.db")
        results = run_bench("arith", TASKS, ["codeact-json"], model, out_dir=tmp_path)
    assert all(r.run_id for r in results)
    with RunStore(tmp_path / "runs.db") as store:
        report = export_runs(store, tmp_path / "x", ExportOptions(format="openai", validation=0.0,
                                                                    solved_in=tmp_path / RESULTS_FILE))
    assert report.train == 2 and report.skipped == {"not_solved": 1}
    rows = datasets.load_dataset("json", data_files=str(tmp_path / "x" / "train.jsonl"), split="train")
    questions = [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in rows]
    assert sorted(t.id for t in TASKS[:2] for q in questions if t.question in q) == ["t1", "t2"]
    assert all(r["messages"][-1]["weight"] == 1 for r in rows)
    assert json.loads((tmp_path / RESULTS_FILE).read_text().splitlines()[0])["run_id"]
