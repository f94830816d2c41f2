"""`codeact export OUT`: runs from the run log as fine-tuning data (train.jsonl, validation.jsonl)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codeact.cli import app
from codeact.cli._options import print_error
from codeact.cli._text import safe
from codeact.errors import CodeactError, ConfigError

__all__ = ["export"]


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Directory for train.jsonl and validation.jsonl.")],
    store: Annotated[str | None, typer.Option("--store", help="The run log (default: codeact's).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="openai, sharegpt, trl or codeactinstruct.")
                      ] = "openai",
    status: Annotated[str, typer.Option(help="Comma-separated run statuses to keep; 'all' keeps every run.")
                      ] = "success",
    solved_in: Annotated[Path | None, typer.Option(help="A `codeact batch` results.jsonl: keep only the runs "
                                                   "it marks solved.")] = None,
    since: Annotated[str | None, typer.Option(help="Keep runs created at or after this ISO date.")] = None,
    until: Annotated[str | None, typer.Option(help="Keep runs created before this ISO date.")] = None,
    min_steps: Annotated[int | None, typer.Option(help="Keep runs with at least this many steps.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Keep runs with at most this many steps.")] = None,
    failed_steps: Annotated[str, typer.Option(help="weight0 (keep, untrained) or drop.")] = "weight0",
    validation: Annotated[float, typer.Option(help="Share of examples in validation.jsonl.")] = 0.1,
    max_tokens: Annotated[int | None, typer.Option(help="Drop examples longer than this many tokens of "
                                                   "--tokenizer's chat template.")] = None,
    tokenizer: Annotated[str, typer.Option(help="The target model: 1.5b or 0.5b (the embedded Qwen GGUFs) "
                                           "or a GGUF path; its tokenizer and chat template count tokens.")
                         ] = "1.5b",
) -> None:
    """Turn recorded runs into a fine-tuning dataset; secrets redacted, duplicates removed."""
    err = Console(stderr=True)
    try:
        from codeact.export import ExportOptions, export_runs
        from codeact.export.writer import gguf_counter
        from codeact.runs.store import RunStore

        options = ExportOptions(
            format=format, statuses=() if status == "all" else tuple(s.strip() for s in status.split(",") if s),
            solved_in=solved_in, since=_date(since), until=_date(until), min_steps=min_steps,
            max_steps=max_steps, failed_steps=failed_steps, validation=validation, max_tokens=max_tokens)
        counter = None
        if max_tokens is not None:
            from codeact.models._weights import MODELS, ensure_weights

            counter = gguf_counter(ensure_weights(tokenizer) if tokenizer in MODELS else Path(tokenizer))
        with RunStore(store) as runs:
            report = export_runs(runs, out, options, counter=counter)
    except CodeactError as exc:
        print_error(err, exc)
        raise typer.Exit(2) from None
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())) or "none"
    typer.echo(f"{report.train} train, {report.validation} validation examples; left out: {skipped}")
    err.print(safe(f"written: {out / 'train.jsonl'} and {out / 'validation.jsonl'}"))


def _date(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigError(f"not an ISO date: {text!r} (e.g. 2026-12-01 or 2026-12-01T10:00)") from None
