"""Benchmarks: task sets, agent configs, checkers, and the report `codeact bench` writes."""

from codeact.bench.agents import AGENT_CONFIGS
from codeact.bench.checkers import CHECKERS, get_checker
from codeact.bench.model import BenchModel
from codeact.bench.outcome import Outcome
from codeact.bench.report import AgentSummary, summarize, write_report
from codeact.bench.runner import TaskResult, run_bench
from codeact.bench.stats import wilson_interval
from codeact.bench.tasks import Task, TaskSet, load_taskset, select_tasks

__all__ = [
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
