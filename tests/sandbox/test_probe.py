from __future__ import annotations

import os
import platform

from codeact.sandbox.guest.landlock import abi_version
from codeact.sandbox.probe import IsolationReport, _try_bwrap, probe
from tests._isolation import require_sandbox


def test_report_is_cached_until_refreshed() -> None:
    first = probe()
    assert probe() is first
    again = probe(refresh=True)
    assert again is not first and again == _without_timing(again, first)


def _without_timing(report: IsolationReport, other: IsolationReport) -> IsolationReport:
    import dataclasses

    return dataclasses.replace(other, duration_s=report.duration_s)


def test_report_is_consistent_with_the_machine() -> None:
    report = probe(refresh=True)
    assert report.running_as_root == (os.geteuid() == 0)
    assert report.arch == platform.machine()
    assert report.landlock_abi == abi_version()
    assert report.usable == (not report.missing)
    if report.bwrap_works:
        assert report.bwrap_path and report.bwrap_version and report.bwrap_error is None


def test_probe_is_fast() -> None:
    assert probe(refresh=True).duration_s < 1.0  # ~30-80 ms: two short bwrap runs


@require_sandbox()
def test_default_sandbox_is_usable_where_bwrap_and_seccomp_are() -> None:
    report = probe(refresh=True)
    assert report.bwrap_works, report.bwrap_error
    assert report.seccomp
    assert report.usable, report.missing
    if report.landlock_abi == 0:
        assert any("Landlock" in w for w in report.warnings)


def test_a_broken_bwrap_is_reported_not_raised(tmp_path: object) -> None:
    assert _try_bwrap("/nonexistent/bwrap", privileged=False) is not None
    assert _try_bwrap("/bin/false", privileged=False) is not None
