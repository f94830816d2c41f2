"""`codeact batch` runs per minute with 1 vs 2 workers (local pool, and Ray with --ray) against the embedded model's server.

Run (one model run at a time on a shared machine):
    flock /tmp/model.lock .venv/bin/python benchmarks/batch_throughput.py --size 0.5b --tasks 12

One llama.cpp server (`codeact bench --serve-local`'s, `codeact.bench.local_server`) serves the
embedded model on 127.0.0.1; `run_batch` runs the same arithmetic tasks with a code agent on a
local pool of 1 worker, then of 2, each into a fresh batch directory. A warm-up task (not counted)
fills the server's prompt cache first. Every run's prompt tokens are counted with the GGUF's own
tokenizer in the workers (`PromptCounter`). The figures go to stdout and, with --out, to a JSON
and a Markdown file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from codeact.batch import AgentConfig, run_batch
from codeact.bench.local_server import LocalServer
from codeact.bench.tasks import Task
from codeact.models.gguf_tokens import PromptCounter

__all__ = ["main"]

_PAIRS = [(17, 23), (48, 19), (125, 8), (301, 7), (64, 64), (99, 12), (250, 4), (13, 37), (72, 15), (88, 11),
          (41, 29), (56, 14), (203, 3), (77, 22), (19, 19), (144, 6)]


def tasks(n: int) -> list[Task]:
    return [Task(f"m{i}", f"What is {a} * {b}? Compute it with code.", a * b)
            for i, (a, b) in enumerate((_PAIRS * (n // len(_PAIRS) + 1))[:n])]


def measure(config: AgentConfig, chosen: list[Task], workers: int, root: Path, engine: str = "local") -> dict[str, Any]:
    out = root / f"{engine}-workers-{workers}"
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results = run_batch(chosen, config, out=out, concurrency=workers, ray=engine == "ray")
    seconds = time.perf_counter() - started
    return {
        "engine": engine, "workers": workers, "tasks": len(results), "seconds": round(seconds, 1),
        "runs_per_minute": round(60 * len(results) / seconds, 2),
        "solved": sum(r.solved for r in results), "statuses": sorted({r.status for r in results}),
        "mean_steps": round(sum(r.steps for r in results) / len(results), 2),
        "prompt_tokens_per_task": round(sum(r.prompt_tokens for r in results) / len(results)),
        "completion_tokens_per_task": round(sum(r.completion_tokens for r in results) / len(results)),
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="0.5b")
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--engines", default="local", help="local, ray or local,ray (Ray starts a local cluster)")
    parser.add_argument("--out", type=Path, default=None, help="write NAME.json and NAME.md here")
    args = parser.parse_args(argv)
    chosen = tasks(args.tasks)
    rows = []
    with tempfile.TemporaryDirectory(prefix="codeact-batch-fig-") as tmp, LocalServer(args.size) as server:
        assert server.model_path is not None
        options = (("temperature", 0.0), ("max_tokens", 256), ("count_prompt", PromptCounter(server.model_path)))
        config = AgentConfig(model=server.model_spec, max_steps=args.max_steps, model_options=options)
        run_batch([Task("warm", "What is 2 * 3? Compute it with code.", 6)], config, out=Path(tmp) / "warm")
        for engine in args.engines.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                row = measure(config, chosen, workers, Path(tmp), engine)
                rows.append(row)
                print(json.dumps(row), flush=True)
    base = rows[0]["runs_per_minute"]
    report = {
        "what": f"codeact batch, code agent, {args.tasks} one-line arithmetic tasks, embedded {args.size} "
                "served by llama-cpp-python's server (--serve-local), engines: " + args.engines,
        "server_threads": server.n_threads, "cpus": os.cpu_count(), "max_steps": args.max_steps,
        "max_reply_tokens": 256, "command": "python " + " ".join(sys.argv), "rows": rows,
        "speedup_vs_first": [round(r["runs_per_minute"] / base, 2) for r in rows],
    }
    lines = ["| engine | workers | runs/min | vs first row | solved | mean steps | prompt tok/task | load before→after |",
             "|---|---|---|---|---|---|---|---|"]
    for row, ratio in zip(rows, report["speedup_vs_first"], strict=True):
        lines.append(f"| {row['engine']} | {row['workers']} | {row['runs_per_minute']:.1f} | {ratio:.2f}x | {row['solved']}/{row['tasks']} "
                     f"| {row['mean_steps']} | {row['prompt_tokens_per_task']} | {row['load_before']}→{row['load_after']} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name(args.out.name + ".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        args.out.with_name(args.out.name + ".md").write_text(f"# {report['what']}\n\n`{report['command']}`\n\n{table}",
                                               encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
