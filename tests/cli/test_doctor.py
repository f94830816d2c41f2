"""`codeact doctor`: the layers this machine offers, and an exit status that says if the default works."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codeact.cli import app
from codeact.cli.doctor import layers
from codeact.sandbox.probe import probe

REPO = Path(__file__).resolve().parents[2]


def _app():  # type: ignore[no-untyped-def]
    from codeact.cli import _register

    _register()
    return app


@pytest.mark.skipif(not probe().usable, reason="this machine cannot run the isolated sandbox")
def test_a_usable_machine_exits_zero_and_names_each_layer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codeact", "doctor"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for layer in ("bubblewrap", "user namespaces", "Landlock", "seccomp", "cgroup v2", "isolated session"):
        assert layer in done.stdout
    assert "default sandbox is `local`" in done.stdout


@pytest.mark.skipif(not probe().usable, reason="this machine cannot run the isolated sandbox")
def test_json_report() -> None:
    result = CliRunner().invoke(_app(), ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["usable"] is True and report["default_sandbox"] == "local"
    assert report["session"]["ok"] is True and "(65534, 1)" in report["session"]["detail"]
    assert {row["name"] for row in report["layers"]} >= {"bubblewrap", "Landlock", "seccomp"}


def test_an_unusable_machine_exits_one_and_names_the_unisolated_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(
        probe(),
        usable=False,
        bwrap_works=False,
        user_namespaces=False,
        missing=("unprivileged user namespaces are disabled (simulated)",),
    )
    monkeypatch.setattr("codeact.sandbox.probe.probe", lambda refresh=False: broken)
    result = CliRunner().invoke(_app(), ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "simulated" in result.output and "--sandbox process" in result.output
    as_json = CliRunner().invoke(_app(), ["doctor", "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.output)["usable"] is False


def test_layer_rows_follow_the_probe() -> None:
    report = dataclasses.replace(probe(), landlock_abi=3, seccomp=False)
    rows = {row.name: row for row in layers(report)}
    assert rows["Landlock"].available is None and "TCP" not in rows["Landlock"].used
    assert rows["seccomp"].available is False
