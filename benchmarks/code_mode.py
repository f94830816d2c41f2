"""All signatures in the prompt vs code mode, on the 120-tool `toolbox` task sets: one table from two benches.

Run the two benches first (one model run at a time on a shared machine), then this:
    flock /tmp/model.lock codeact bench toolbox --serve-local 0.5b --agents codeact-code --limit 20 \
        --max-steps 4 --max-reply-tokens 320 --out bench-out/toolbox
    flock /tmp/model.lock codeact bench toolbox_code_mode --serve-local 0.5b --agents codeact-code --limit 20 \
        --max-steps 4 --max-reply-tokens 320 --out bench-out/toolbox_code_mode
    python benchmarks/code_mode.py bench-out/toolbox bench-out/toolbox_code_mode --out benchmarks/results/code_mode_0.5b

The two sets hold the same tasks; only the tools' place differs. The table takes the results of
the tasks both runs finished, so a bench cut short compares like with like. Success intervals are
Wilson 95% intervals; the tool text's tokens are counted with the model's own tokenizer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from codeact.agent.prompt import render_tools
from codeact.batch.results import ResultsFile, TaskResult
from codeact.bench.report import summarize
from codeact.bench.toolbox import CODE_MODE_TOOLS, TOOLS
from codeact.models._weights import ensure_weights
from codeact.models.gguf_tokens import PromptCounter
from codeact.tools.tool import to_tools

__all__ = ["main"]


def _rows(folder: Path) -> dict[str, TaskResult]:
    return {r.task_id: r for r in ResultsFile(folder / "results.jsonl").load().values()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("listed", type=Path, help="the `toolbox` bench directory")
    parser.add_argument("code_mode", type=Path, help="the `toolbox_code_mode` bench directory")
    parser.add_argument("--size", default="0.5b", help="the model whose tokenizer counts the tool text")
    parser.add_argument("--out", type=Path, default=None, help="write NAME.json and NAME.md here")
    args = parser.parse_args(argv)
    listed, coded = _rows(args.listed), _rows(args.code_mode)
    common = sorted(set(listed) & set(coded))
    count = PromptCounter(ensure_weights(args.size))
    variants: dict[str, Any] = {}
    for name, rows, tools in (("all signatures in the prompt", listed, TOOLS), ("code mode", coded, CODE_MODE_TOOLS)):
        chosen = [rows[t] for t in common]
        (summary,) = summarize(chosen, [chosen[0].agent])
        text = render_tools(to_tools(tools))
        variants[name] = {
            "tasks": summary.tasks, "solved": summary.solved, "success_rate": round(summary.success_rate, 3),
            "ci95": [round(summary.ci_low, 3), round(summary.ci_high, 3)],
            "prompt_tokens_per_task": round(summary.prompt_tokens_per_task),
            "completion_tokens_per_task": round(summary.completion_tokens_per_task),
            "mean_steps": round(summary.mean_steps, 2), "seconds_per_task": round(summary.seconds_per_task, 1),
            "tool_text_tokens": count([{"role": "user", "content": text}]), "tool_text_chars": len(text),
            "failures": summary.errors, "model": chosen[0].model,
        }
    lines = ["| Prompt holds | Solved | Success (95% CI) | Prompt tok/task | Tool text in the system prompt | "
             "Mean steps | Time/task | Failures |", "|---|---|---|---|---|---|---|---|"]
    for name, v in variants.items():
        failures = ", ".join(f"{k} {n}" for k, n in v["failures"].items()) or "none"
        lines.append(f"| {name} | {v['solved']}/{v['tasks']} | {v['success_rate']:.0%} ({v['ci95'][0]:.0%}–"
                     f"{v['ci95'][1]:.0%}) | {v['prompt_tokens_per_task']:,} | {v['tool_text_tokens']:,} tokens | "
                     f"{v['mean_steps']} | {v['seconds_per_task']} s | {failures} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out is not None:
        report = {"tasks": common, "variants": variants}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name(args.out.name + ".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        args.out.with_name(args.out.name + ".md").write_text(
            "# 120 tools: all signatures in the prompt vs code mode (codeact bench toolbox / toolbox_code_mode)\n\n"
            + table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
