"""Choosing runs and writing them out: filters, duplicates, secrets, token budget, split.

Every example passes, in order: the run filters (status, verified-correct, date, steps), the
conversation rebuild, failed turns kept at weight 0 or dropped, duplicate removal (same turns),
redaction of secrets (the environment's and the well-known formats, as the run log does), a final
scan that refuses any example in which a secret pattern still matches, and the token budget
(rendered with the target model's own chat template and counted with its tokenizer). What was
left out and why is counted in the report.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError
from codeact.export.examples import Conversation, conversation_of
from codeact.export.formats import FORMATS
from codeact.runs.redact import Redactor
from codeact.runs.store import RunRecord, RunStore

__all__ = ["ExportOptions", "ExportReport", "TokenCounter", "export_runs", "gguf_counter"]

TokenCounter = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], int]
"""Prompt tokens of messages (and tools) as the target model's chat template renders them."""


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how.

    Args:
        format: one of FORMATS.
        statuses: keep runs that ended so ("success" by default); empty keeps all.
        solved_in: a `codeact batch` results.jsonl: keep only runs it marks solved.
        since, until: keep runs created in [since, until) (Unix seconds).
        min_steps, max_steps: keep runs with this many steps.
        failed_steps: "weight0" keeps failed or retried assistant turns untrained; "drop"
            removes them and the observation that answered them.
        validation: the share of examples in validation.jsonl (by a hash of the run id).
        max_tokens: the most tokens an example may render to (needs a `counter`).
    """

    format: str = "openai"
    statuses: tuple[str, ...] = ("success",)
    solved_in: Path | None = None
    since: float | None = None
    until: float | None = None
    min_steps: int | None = None
    max_steps: int | None = None
    failed_steps: str = "weight0"
    validation: float = 0.1
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.failed_steps not in ("weight0", "drop"):
            raise ConfigError("failed_steps is 'weight0' or 'drop'")
        if not 0 <= self.validation < 1:
            raise ConfigError(f"validation must be in [0, 1), got {self.validation}")


@dataclass
class ExportReport:
    train: int = 0
    validation: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """Why runs were left out: status, not_solved, date, steps, incomplete, duplicate, secret, too_long."""


def gguf_counter(path: Path) -> TokenCounter:
    """Count with a GGUF's own tokenizer and chat template (the vocabulary only is loaded)."""
    from codeact.models.gguf_tokens import PromptCounter

    return PromptCounter(path)


def export_runs(store: RunStore, out: Path, options: ExportOptions, *, counter: TokenCounter | None = None,
                redactor: Redactor | None = None) -> ExportReport:
    """Write `out/train.jsonl` and `out/validation.jsonl` from the runs in `store`."""
    if options.max_tokens is not None and counter is None:
        raise ConfigError("a token budget needs the target model's tokenizer (counter=gguf_counter(PATH))")
    redactor = redactor or Redactor.from_environment()
    scanner = Redactor.from_environment()  # the final scan: also when `redactor` was told less
    solved = _solved_runs(options.solved_in) if options.solved_in is not None else None
    report = ExportReport()
    seen: set[str] = set()
    render = FORMATS[options.format]
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train.jsonl").open("w", encoding="utf-8") as train, \
            (out / "validation.jsonl").open("w", encoding="utf-8") as validation:
        for record in sorted(store.runs(limit=None), key=lambda r: (r.created, r.id)):
            reason = _filtered(record, options, solved)
            if reason:
                report.skipped[reason] += 1
                continue
            conv = conversation_of(record.id, record.task, record.status, record.created,
                                   store.raw_events(record.id), _tool_specs(record))
            if conv is None:
                report.skipped["incomplete"] += 1
                continue
            if options.failed_steps == "drop":
                conv = conv.without_failed()
            key = _fingerprint(conv)
            if key in seen:
                report.skipped["duplicate"] += 1
                continue
            seen.add(key)
            row = redactor.value(render(conv))
            if _still_secret(row, redactor) or _still_secret(row, scanner):
                report.skipped["secret"] += 1
                continue
            if options.max_tokens is not None and counter is not None:
                messages = [{"role": t.role, "content": redactor.text(t.content)} for t in conv.turns]
                if counter(messages, list(conv.tools) or None) > options.max_tokens:
                    report.skipped["too_long"] += 1
                    continue
            line = json.dumps(row, ensure_ascii=False) + "\n"
            if _in_validation(record.id, options.validation):
                validation.write(line)
                report.validation += 1
            else:
                train.write(line)
                report.train += 1
    return report


def _filtered(record: RunRecord, options: ExportOptions, solved: set[str] | None) -> str | None:
    if options.statuses and record.status not in options.statuses:
        return "status"
    if solved is not None and record.id not in solved:
        return "not_solved"
    if (options.since is not None and record.created < options.since) or \
            (options.until is not None and record.created >= options.until):
        return "date"
    if (options.min_steps is not None and record.steps < options.min_steps) or \
            (options.max_steps is not None and record.steps > options.max_steps):
        return "steps"
    return None


def _solved_runs(path: Path) -> set[str]:
    """Run ids a batch results file marks solved. A bench results file names no runs: refused."""
    solved: set[str] = set()
    named = False
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("run_id"):
            named = True
            if row.get("solved") is True:
                solved.add(str(row["run_id"]))
    if not named:
        raise ConfigError(f"{path} names no runs (a `codeact bench` results file does not); "
                          "give a `codeact batch` results.jsonl")
    return solved


def _tool_specs(record: RunRecord) -> list[dict[str, Any]]:
    tools = record.meta.get("tools")
    if not isinstance(tools, dict):
        return []
    specs = []
    for name, spec in tools.items():
        doc = spec.get("doc", "") if isinstance(spec, dict) else ""
        specs.append({"type": "function", "function": {"name": str(name), "description": str(doc)}})
    return specs


def _fingerprint(conv: Conversation) -> str:
    text = json.dumps([(t.role, t.content, t.train) for t in conv.turns], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _still_secret(row: Any, redactor: Redactor) -> bool:
    """The final scan: does any string of the example still hold a secret or a secret format?"""
    strings: list[str] = []
    _collect(row, strings)
    return any(redactor.text(s) != s for s in strings)


def _collect(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, into)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, into)


def _in_validation(run_id: str, share: float) -> bool:
    digest = hashlib.sha256(run_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


