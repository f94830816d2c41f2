"""`codeact.bench` says what is public: the package's names pinned, every module's `__all__` true."""

from __future__ import annotations

import codeact.bench
from tests.models.test_package import public_names_missing_from_all


def test_bench_all_is_pinned() -> None:
    assert sorted(codeact.bench.__all__) == sorted(
        [
            "AGENT_CONFIGS",
            "CHECKERS",
            "AgentSummary",
            "BenchModel",
            "Outcome",
            "Task",
            "TaskResult",
            "TaskSet",
            "get_checker",
            "load_taskset",
            "run_bench",
            "select_tasks",
            "summarize",
            "wilson_interval",
            "write_report",
        ]
    )
    for name in codeact.bench.__all__:
        assert getattr(codeact.bench, name) is not None


def test_every_bench_module_exports_exactly_its_public_names() -> None:
    assert public_names_missing_from_all("codeact.bench") == []
