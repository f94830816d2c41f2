"""Task sets: JSONL files of tasks, shipped ones by name, and the tools a task names.

One task per line: ``{"id", "question", "answer", "tools"?, "checker"?}``. `tools` names a module
whose `TOOLS` list holds the tools (or `module:attribute`); `checker` names a checker from
`codeact.bench.checkers` (default: "numeric" for a numeric answer, else "normalized").

A task file is data, but a `tools` or `checker` naming `module:function` imports and runs host
code (`"checker": "shutil:move"` would be called with the model's answer). So a file that is not
shipped with codeact may only name code with `allow_code=True` (`codeact bench
--allow-task-code`); the shipped sets and the tools they use (`TRUSTED_TOOLS`) need no opt-in.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError
from codeact.tools.tool import Tool, to_tools

__all__ = [
    "TRUSTED_TOOLS",
    "Task",
    "TaskSet",
    "load_taskset",
    "load_tools",
    "names_code",
    "select_tasks",
    "shipped_tasksets",
]

#: Tool modules any task file may name without opting in: they ship with codeact.
TRUSTED_TOOLS = frozenset({
    "codeact.bench.shop:TOOLS", "codeact.bench.toolsets.travel:TOOLS", "codeact.bench.toolsets.records:TOOLS",
    "codeact.bench.toolsets.office:TOOLS", "codeact.bench.toolbox:TOOLS", "codeact.bench.toolbox:CODE_MODE_TOOLS",
})


@dataclass(frozen=True)
class Task:
    id: str
    question: str
    answer: Any
    tools: str | None = None
    checker: str | None = None

    @property
    def checker_name(self) -> str:
        if self.checker:
            return self.checker
        numeric = isinstance(self.answer, (int, float)) and not isinstance(self.answer, bool)
        return "numeric" if numeric else "normalized"


@dataclass(frozen=True)
class TaskSet:
    name: str
    tasks: tuple[Task, ...]
    path: Path | None = None


def shipped_tasksets() -> list[str]:
    """Names of the task sets that ship with codeact (`bench/tasks/*.jsonl`)."""
    folder = files("codeact.bench").joinpath("tasks")
    return sorted(p.name[: -len(".jsonl")] for p in folder.iterdir() if p.name.endswith(".jsonl"))


def load_taskset(name_or_path: str | Path, *, allow_code: bool = False) -> TaskSet:
    """A shipped task set by name ("gsm8k", "shop", "travel", "records"), or any JSONL file by path.

    Args:
        allow_code: let a file's `tools` and `checker` name code to import (see the module
            docstring); without it such a task is a ConfigError.
    """
    text_name = str(name_or_path)
    if text_name in shipped_tasksets():
        resource = files("codeact.bench").joinpath("tasks").joinpath(f"{text_name}.jsonl")
        return TaskSet(text_name, _parse(resource.read_text(encoding="utf-8"), text_name))
    path = Path(name_or_path)
    if not path.is_file():
        shipped = ", ".join(shipped_tasksets())
        raise ConfigError(f"task set {text_name!r} is neither a shipped set ({shipped}) nor a JSONL file")
    tasks = _parse(path.read_text(encoding="utf-8"), str(path))
    if not allow_code:
        _refuse_code(tasks, path)
    return TaskSet(path.stem, tasks, path)


def names_code(task: Task) -> list[str]:
    """The fields of `task` that name host code to import: untrusted tools, `module:function` checkers."""
    named = []
    if task.tools and _tools_target(task.tools) not in TRUSTED_TOOLS:
        named.append(f"tools {task.tools!r}")
    if task.checker and ":" in task.checker:  # a name from CHECKERS is ours; module:function is not
        named.append(f"checker {task.checker!r}")
    return named


def _refuse_code(tasks: tuple[Task, ...], path: Path) -> None:
    for task in tasks:
        named = names_code(task)
        if named:
            raise ConfigError(
                f"{path}: task {task.id!r} names code to import and run on this machine "
                f"({', '.join(named)}). Task files are data; if you trust this file, run with "
                "--allow-task-code (load_taskset(..., allow_code=True) in Python)."
            )


def _tools_target(spec: str) -> str:
    return spec if ":" in spec else f"{spec}:TOOLS"


def _parse(text: str, where: str) -> tuple[Task, ...]:
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{where}:{number}: not valid JSON ({exc})") from None
        missing = [k for k in ("id", "question", "answer") if not isinstance(row, dict) or k not in row]
        if missing:
            raise ConfigError(f"{where}:{number}: a task needs {', '.join(missing)}")
        task_id = str(row["id"])
        if task_id in seen:
            raise ConfigError(f"{where}:{number}: duplicate task id {task_id!r}")
        seen.add(task_id)
        tasks.append(Task(task_id, str(row["question"]), row["answer"], row.get("tools"), row.get("checker")))
    if not tasks:
        raise ConfigError(f"{where}: the task set is empty")
    return tuple(tasks)


def select_tasks(tasks: tuple[Task, ...], *, limit: int | None = None, seed: int | None = None) -> tuple[Task, ...]:
    """The tasks to run: a seeded random sample when `seed` is given, else the first `limit`."""
    chosen = list(tasks)
    if seed is not None:
        chosen = random.Random(seed).sample(chosen, len(chosen))
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {limit}")
        chosen = chosen[:limit]
    return tuple(chosen)


def load_tools(spec: str | None) -> dict[str, Tool]:
    """The tools a task names: `module` (its `TOOLS`) or `module:attribute`; {} for None."""
    if not spec:
        return {}
    from codeact._loading import load_object

    value = load_object(_tools_target(spec), "task tools")
    if isinstance(value, Tool) or callable(value):
        value = [value]
    try:
        return to_tools(value)
    except TypeError as exc:
        raise ConfigError(f"task tools {spec!r} must be a list of tools ({exc})") from None
