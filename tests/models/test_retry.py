from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeact.errors import ModelConnectionError, ModelResponseError
from codeact.models._retry import (
    Failure,
    RetryPolicy,
    call_with_retries,
    connection_reason,
    parse_retry_after,
    server_message,
    to_error,
)


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (Failure("status", 429), True),
        (Failure("status", 408), True),
        (Failure("status", 500), True),
        (Failure("status", 529), True),
        (Failure("status", 400), False),
        (Failure("status", 401), False),
        (Failure("status", 404), False),
        (Failure("timeout"), True),
        (Failure("connection"), True),
    ],
)
def test_what_is_retried(failure: Failure, retryable: bool) -> None:
    assert failure.retryable is retryable


@given(retry=st.integers(0, 30))
def test_backoff_is_full_jitter_under_the_ceiling(retry: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    assert 0.0 <= policy.delay(retry) <= min(8.0, 0.5 * 2**retry)


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=3600.0) == 10.0
    assert policy.delay(0, retry_after=-5.0) == 0.0


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "nan"}) is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": later}) or 0) <= 31


def test_server_message_shapes() -> None:
    assert server_message({"message": "m", "type": "t"}) == "m"  # openai SDK body (inner error)
    assert server_message({"type": "error", "error": {"type": "x", "message": "anthropic"}}) == "anthropic"
    assert server_message({"error": "plain string"}) == "plain string"
    assert server_message({"detail": "fastapi"}) == "fastapi"
    assert server_message("  raw text  ") == "raw text"
    assert server_message(None, "fallback") == "fallback"


def test_connection_reason_from_a_real_refused_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except OSError as exc:
            wrapped = RuntimeError("Connection error.")
            wrapped.__cause__ = exc
            assert connection_reason(wrapped) == "connection refused"
        else:  # pragma: no cover - something started listening in between
            pytest.skip("port got reused")


def test_errors_carry_fields_and_advice() -> None:
    status = to_error(Failure("status", 401, "invalid key"), url="http://x/v1")
    assert isinstance(status, ModelResponseError) and status.status_code == 401
    assert "invalid key" in str(status) and "API key" in str(status)
    down = to_error(Failure("connection", message="connection refused"), url="http://x/v1", attempts=3)
    assert isinstance(down, ModelConnectionError) and down.url == "http://x/v1"
    assert "(connection refused; 3 attempts)" in str(down)


def test_unclassified_exceptions_pass_through_untouched() -> None:
    calls = []

    def boom() -> None:
        calls.append(1)
        raise KeyError("ours")

    with pytest.raises(KeyError):
        call_with_retries(boom, policy=RetryPolicy(), classify=lambda exc: None, url="u")
    assert len(calls) == 1


def test_sleeps_between_attempts_with_the_policy_delay() -> None:
    slept: list[float] = []
    attempts = iter([Failure("status", 503), Failure("status", 429, retry_after=1.5)])

    class Transient(Exception):
        pass

    def flaky() -> str:
        failure = next(attempts, None)
        if failure is None:
            return "ok"
        raise Transient(failure)

    result = call_with_retries(
        flaky,
        policy=RetryPolicy(max_retries=3, base_delay=0.25),
        classify=lambda exc: exc.args[0] if isinstance(exc, Transient) else None,
        url="u",
        sleep=slept.append,
    )

    assert result == "ok"
    assert len(slept) == 2 and 0 <= slept[0] <= 0.25 and slept[1] == 1.5
