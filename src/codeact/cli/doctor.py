"""`codeact doctor`: which isolation layers this machine offers, and what the default sandbox uses."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from codeact.cli import app
from codeact.cli._text import json_line, safe

__all__ = ["Layer", "doctor", "layers", "live_check"]

_OK, _NO, _WARN = ("yes", "green"), ("no", "red"), ("partial", "yellow")


@dataclass(frozen=True)
class Layer:
    """One row of the report."""

    name: str
    available: bool | None
    """True, False, or None for "partly"."""
    detail: str
    used: str
    """What the default sandbox does with it."""


def layers(report: Any) -> list[Layer]:
    """The probe's findings as rows, in the order the sandbox applies them."""
    rows = [
        Layer(
            "bubblewrap",
            report.bwrap_works,
            f"{report.bwrap_version or '?'} from {report.bwrap_source or '-'} ({report.bwrap_path or 'not found'})"
            + (f"; {report.bwrap_error}" if report.bwrap_error else ""),
            "required: new mount, pid, net, IPC, UTS namespaces; no capabilities; cleared environment",
        ),
        Layer(
            "user namespaces",
            report.user_namespaces,
            "unprivileged user namespaces can be created" if report.user_namespaces else "cannot be created",
            "required: each session gets its own user, pid and mount namespaces",
        ),
        Layer(
            "unprivileged uid",
            True,
            "host runs as root: each session gets its own random uid (never 0)"
            if report.running_as_root
            else "host runs unprivileged: the sandbox uid maps to your own",
            "always",
        ),
        Layer(
            "Landlock",
            None if 0 < report.landlock_abi < 6 else report.landlock_abi > 0,
            f"ABI {report.landlock_abi}" if report.landlock_abi else "not available",
            "filesystem allowlist" + (", TCP bind/connect denied" if report.landlock_abi >= 4 else "")
            + (", signals and abstract sockets scoped" if report.landlock_abi >= 6 else "")
            if report.landlock_abi
            else "not used (the mount namespace alone confines files)",
        ),
        Layer(
            "seccomp",
            report.seccomp,
            f"filters available ({report.arch})" if report.seccomp else "not available",
            "required: socket/connect, ptrace, mount, namespaces, bpf, keyctl, io_uring... denied",
        ),
        Layer("rlimits", True, "always available", "memory, CPU, file size, open files, processes, no core dumps"),
        Layer(
            "cgroup v2",
            None if report.cgroup_v2 else False,
            f"{report.cgroup_v2 or 'not mounted'}; controllers: {', '.join(report.cgroup_controllers) or 'none'}; "
            f"{'writable' if report.cgroup_writable else 'not writable'}",
            "not used: processes are capped per session by its own uid/user namespace and RLIMIT_NPROC",
        ),
    ]
    return rows


def live_check() -> tuple[bool, str]:
    """Start a real isolated session and run one line in it."""
    from codeact.errors import CodeactError
    from codeact.sandbox.local import LocalSandbox

    started = time.perf_counter()
    try:
        with LocalSandbox(timeout=20) as sandbox:
            sandbox.start({})
            execution = sandbox.execute("import os\n(os.getuid(), os.getpid())")
    except CodeactError as exc:
        return False, str(exc)
    if not execution.ok:
        return False, f"{execution.error.type}: {execution.error.message}" if execution.error else "failed"
    return True, f"a session ran code as uid, pid {execution.result} in {(time.perf_counter() - started) * 1000:.0f} ms"


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    live: Annotated[bool, typer.Option(help="Also start a real isolated session (default: yes).")] = True,
) -> None:
    """Check which isolation layers this machine supports and whether the default sandbox can run.

    Exits 0 when the isolated sandbox is usable, 1 when it is not.
    """
    from codeact.sandbox.probe import probe

    report = probe(refresh=True)
    rows = layers(report)
    session_ok, session_detail = live_check() if (live and report.usable) else (None, "not checked")
    usable = report.usable and session_ok is not False
    if as_json:
        payload = {
            "usable": usable,
            "default_sandbox": "local" if usable else None,
            "layers": [asdict(r) for r in rows],
            "session": {"ok": session_ok, "detail": session_detail},
            "missing": list(report.missing),
            "warnings": list(report.warnings),
        }
        sys.stdout.write(json_line(payload, indent=2) + "\n")
        raise typer.Exit(0 if usable else 1)
    console = Console()
    table = Table(title="Sandbox isolation on this machine", header_style="bold", title_justify="left")
    for column in ("layer", "available", "here", "the default sandbox"):
        table.add_column(column, overflow="fold")
    for row in rows:
        label, style = _OK if row.available else (_WARN if row.available is None else _NO)
        table.add_row(row.name, Text(label, style=style), safe(row.detail), safe(row.used))
    if session_ok is not None:
        label, style = _OK if session_ok else _NO
        table.add_row("isolated session", Text(label, style=style), safe(session_detail), "live check")
    console.print(table)
    for warning in report.warnings:
        console.print(Text.assemble(("note:", "yellow"), " ", safe(warning)))
    if usable:
        console.print("[bold green]The default sandbox is `local` (isolated) and works here.[/]")
        raise typer.Exit(0)
    for reason in (*report.missing, *([session_detail] if session_ok is False else [])):
        console.print(Text.assemble(("missing:", "red"), " ", safe(reason)))
    console.print(
        "[bold red]The isolated sandbox cannot run here[/]; agents will refuse to start. To run model code "
        "WITHOUT isolation, choose it explicitly: `--sandbox process` (or sandbox=\"process\" in Python)."
    )
    raise typer.Exit(1)
