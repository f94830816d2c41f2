"""Turning results into the benchmark report: one summary per agent config, as Markdown and JSON."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codeact.bench.runner import TaskResult
from codeact.bench.stats import wilson_interval

__all__ = ["AgentSummary", "render_markdown", "report_dict", "summarize", "write_report"]


@dataclass(frozen=True)
class AgentSummary:
    """How one agent config did over the tasks it ran.

    Tokens "per solved task" divide all tokens spent (failures included) by the tasks solved:
    what one correct answer costs.
    """

    agent: str
    tasks: int
    solved: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_steps: float
    prompt_tokens_per_task: float
    completion_tokens_per_task: float
    prompt_tokens_per_solved: float | None
    completion_tokens_per_solved: float | None
    seconds_total: float
    seconds_per_task: float
    errors: dict[str, int]
    step_errors: dict[str, int]
    model_timeouts: int = 0
    """Model calls that timed out, over all tasks (retried ones included)."""
    solved_at_limit: int = 0
    """Solved tasks whose answer came at the step limit (smolagents' summary, codeact's reply in
    words to its request for an answer), not from a `final_answer` call: `solved` counts them."""


def summarize(results: Sequence[TaskResult], agents: Sequence[str]) -> list[AgentSummary]:
    """One summary per agent, in the order given; agents without results are left out."""
    summaries = []
    for agent in agents:
        rows = [r for r in results if r.agent == agent]
        if not rows:
            continue
        n = len(rows)
        solved = sum(r.solved for r in rows)
        prompt = sum(r.prompt_tokens for r in rows)
        completion = sum(r.completion_tokens for r in rows)
        seconds = sum(r.seconds for r in rows)
        low, high = wilson_interval(solved, n)
        step_errors: Counter[str] = Counter()
        for r in rows:
            step_errors.update(r.step_errors)
        summaries.append(AgentSummary(
            agent=agent,
            tasks=n,
            solved=solved,
            success_rate=solved / n,
            ci_low=low,
            ci_high=high,
            mean_steps=sum(r.steps for r in rows) / n,
            prompt_tokens_per_task=prompt / n,
            completion_tokens_per_task=completion / n,
            prompt_tokens_per_solved=prompt / solved if solved else None,
            completion_tokens_per_solved=completion / solved if solved else None,
            seconds_total=seconds,
            seconds_per_task=seconds / n,
            errors=dict(Counter(r.error_kind for r in rows if r.error_kind).most_common()),
            step_errors=dict(step_errors.most_common()),
            model_timeouts=sum(r.model_timeouts for r in rows),
            solved_at_limit=sum(r.solved and r.status == "max_steps" for r in rows),
        ))
    return summaries


def render_markdown(summaries: Sequence[AgentSummary]) -> str:
    """A Markdown table, one row per agent config.

    "At step limit" counts the solved tasks answered only when the step limit asked for an answer;
    "Solved" minus it is what `final_answer` calls solved.
    """
    header = ("| Agent | Solved | At step limit | Success (95% CI) | Mean steps | Prompt tok/task | Completion tok/task "
              "| Tokens/solved (prompt+completion) | Time/task | Failures by kind |")
    lines = [header, "|" + "---|" * 10]
    for s in summaries:
        if s.prompt_tokens_per_solved is None or s.completion_tokens_per_solved is None:
            per_solved = "n/a"
        else:
            per_solved = f"{s.prompt_tokens_per_solved:,.0f} + {s.completion_tokens_per_solved:,.0f}"
        errors = ", ".join(f"{k} {v}" for k, v in s.errors.items()) or "none"
        lines.append(
            f"| {s.agent} | {s.solved}/{s.tasks} | {s.solved_at_limit} | {s.success_rate:.0%} ({s.ci_low:.0%}–{s.ci_high:.0%}) "
            f"| {s.mean_steps:.2f} | {s.prompt_tokens_per_task:,.0f} | {s.completion_tokens_per_task:,.0f} "
            f"| {per_solved} | {s.seconds_per_task:.1f} s | {errors} |"
        )
    return "\n".join(lines) + "\n"


def report_dict(summaries: Sequence[AgentSummary], meta: Mapping[str, Any]) -> dict[str, Any]:
    return {**meta, "agents": {s.agent: asdict(s) for s in summaries}}


def write_report(out_dir: Path, summaries: Sequence[AgentSummary], meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write report.md and report.json into `out_dir`; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "report.md", out_dir / "report.json"
    lines = [f"# Benchmark: {meta.get('taskset', '?')}", ""]
    for key in ("model", "tasks", "max_steps", "max_reply_tokens", "command"):
        if key in meta:
            lines.append(f"- {key}: `{meta[key]}`")
    md.write_text("\n".join(lines) + "\n\n" + render_markdown(summaries), encoding="utf-8")
    js.write_text(json.dumps(report_dict(summaries, meta), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js
