"""Retries with backoff for remote model calls, and the conversion of SDK errors into ours.

Each backend turns its SDK's exceptions into a `Failure` (fields only: kind, status, the
server's message, Retry-After) through a `Classify` function; the retry loop decides from those
fields alone and, when it gives up, raises `ModelConnectionError` or `ModelResponseError` with
the SDK exception as `__cause__`. Exceptions a classifier does not recognise pass through.

Retried: 408, 429, 5xx, timeouts and connection failures, with exponential backoff and full
jitter (AWS architecture blog, "Exponential Backoff And Jitter"), or the server's Retry-After
when it sends one, capped so that a hostile header cannot stall a run.

Not retried: a request the server rejects as invalid. Every other 4xx, and a 5xx whose body says
the request is at fault: an OpenAI-style `"type": "invalid_request_error"`, or a list of
validation errors (FastAPI/pydantic `{"loc", "msg"}` items) as llama-cpp-python's server sends
under status 500. Sending the same invalid request again cannot succeed and only delays the
run's end by the whole backoff. A 5xx without such a body is still retried: an overloaded
server's 500 (out of memory, say) can clear.

A timed-out attempt may still be running on the server (a non-streaming generation continues
after the client hangs up). `before_retry` is called before every retry of a timeout so that the
owner of the server can wait for it to finish, or restart it, instead of queueing the retry
behind the abandoned work.
"""

from __future__ import annotations

import ast
import asyncio
import email.utils
import math
import random
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Literal, TypeVar

from codeact.errors import ModelConnectionError, ModelError, ModelResponseError, ModelTimeoutError

__all__ = [
    "MAX_RESENDS",
    "BeforeRetry",
    "Classify",
    "Failure",
    "FailureKind",
    "Resend",
    "RetryPolicy",
    "acall_with_retries",
    "call_with_retries",
    "connection_reason",
    "invalid_request",
    "parse_retry_after",
    "sdk_classifier",
    "server_message",
    "to_error",
]

T = TypeVar("T")

FailureKind = Literal["status", "connection", "timeout"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts.

    Args:
        max_retries: retries after the first attempt (0 disables retrying).
        base_delay: the backoff ceiling for the first retry, doubling each time.
        max_delay: the backoff ceiling never exceeds this.
        max_retry_after: the most we wait when the server asks for longer via Retry-After.
    """

    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2**retry))


@dataclass(frozen=True)
class Failure:
    """One failed attempt, described by fields rather than by an exception's text."""

    kind: FailureKind
    status_code: int | None = None
    message: str = ""
    retry_after: float | None = None
    invalid_request: bool = False
    """The body says the request itself is wrong (even under a 5xx status)."""

    @property
    def retryable(self) -> bool:
        if self.kind != "status":
            return True
        code = self.status_code or 0
        return code in (408, 429) or (code >= 500 and not self.invalid_request)


class Resend(Exception):
    """Raised by an attempt that learned what the server rejects: send again at once.

    Not a retry: no wait, not counted. A backend raises it only while it still has something to
    change (e.g. drop `stop`), and the loops allow at most `MAX_RESENDS` per call.
    """


#: Resends allowed per call, whatever a backend says (each one changes the request).
MAX_RESENDS = 8

Classify = Callable[[BaseException], "Failure | None"]
BeforeRetry = Callable[[Failure], object]
"""Called with a timed-out attempt's failure before it is retried (see the module docstring)."""


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    classify: Classify,
    url: str,
    timeout: float | None = None,
    sleep: Callable[[float], object] = time.sleep,
    before_retry: BeforeRetry | None = None,
) -> T:
    """Call `fn` until it succeeds, a failure is not retryable, or retries run out."""
    retry = resends = 0
    while True:
        try:
            return fn()
        except Exception as raised:
            if isinstance(raised, Resend) and (resends := resends + 1) <= MAX_RESENDS:
                continue
            exc = raised.__cause__ if isinstance(raised, Resend) and raised.__cause__ else raised
            failure = classify(exc)
            if failure is None:
                if exc is raised:
                    raise
                raise exc from None
            if not failure.retryable or retry >= policy.max_retries:
                raise to_error(failure, url=url, attempts=retry + 1, timeout=timeout) from exc
            if failure.kind == "timeout" and before_retry is not None:
                before_retry(failure)
            sleep(policy.delay(retry, failure.retry_after))
            retry += 1


async def acall_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    classify: Classify,
    url: str,
    timeout: float | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    before_retry: BeforeRetry | None = None,
) -> T:
    """The async twin of `call_with_retries` (`before_retry` runs in a worker thread)."""
    retry = resends = 0
    while True:
        try:
            return await fn()
        except Exception as raised:
            if isinstance(raised, Resend) and (resends := resends + 1) <= MAX_RESENDS:
                continue
            exc = raised.__cause__ if isinstance(raised, Resend) and raised.__cause__ else raised
            failure = classify(exc)
            if failure is None:
                if exc is raised:
                    raise
                raise exc from None
            if not failure.retryable or retry >= policy.max_retries:
                raise to_error(failure, url=url, attempts=retry + 1, timeout=timeout) from exc
            if failure.kind == "timeout" and before_retry is not None:
                await asyncio.to_thread(before_retry, failure)
            await sleep(policy.delay(retry, failure.retry_after))
            retry += 1


def to_error(failure: Failure, *, url: str, attempts: int = 1, timeout: float | None = None) -> ModelError:
    """The codeact error for a final failure, with a message that says what to do."""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if failure.kind == "timeout":
        within = f" for {timeout:g} s" if timeout else ""
        return ModelTimeoutError(
            f"the model server at {url} sent nothing{within} ({tries}). "
            "Is it overloaded? A slow model may need a larger `timeout=`.",
            url=url,
        )
    if failure.kind == "connection":
        reason = failure.message or "connection failed"
        return ModelConnectionError(
            f"could not reach the model server at {url} ({reason}; {tries}). "
            "Is it running? Check `base_url` and your network.",
            url=url,
        )
    code = failure.status_code
    hint = _STATUS_HINTS.get(code or 0, "")
    if failure.invalid_request and (code or 0) >= 500:
        hint = " The server rejects the request itself, so it was not retried." + hint
    elif failure.retryable and attempts > 1:
        hint = f" Gave up after {tries}." + hint
    answered = f"answered {code}" if code is not None else "sent an error inside its reply"
    return ModelResponseError(
        f"the model server at {url} {answered}: {failure.message or 'no message'}.{hint}",
        status_code=code,
    )


_STATUS_HINTS = {
    401: " Check the API key.",
    403: " Check the API key and that it may use this model.",
    404: " Check the model name and `base_url`.",
}


# -- classifying SDK exceptions ------------------------------------------------------------


def sdk_classifier(sdk: ModuleType) -> Classify:
    """A classifier for SDKs generated in the OpenAI/Anthropic style.

    Both expose `APIStatusError` (with `status_code`, `body`, `response`), `APITimeoutError`
    and `APIConnectionError` at the top level. Transport errors raised while reading a
    stream arrive unwrapped, so the HTTP library's own classes are recognised too.
    """

    def classify(exc: BaseException) -> Failure | None:
        if isinstance(exc, sdk.APITimeoutError):
            return Failure("timeout", message="timed out")
        if isinstance(exc, sdk.APIConnectionError):
            return Failure("connection", message=connection_reason(exc))
        if isinstance(exc, sdk.APIStatusError):
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None) or {}
            body = getattr(exc, "body", None)
            return Failure(
                "status",
                status_code=int(exc.status_code),
                message=server_message(body, getattr(exc, "message", "")),
                retry_after=parse_retry_after(headers),
                invalid_request=invalid_request(body),
            )
        api_error = getattr(sdk, "APIError", None)
        if api_error is not None and isinstance(exc, api_error):
            # An error event inside a stream (e.g. llama.cpp failing mid-reply): no status.
            body = getattr(exc, "body", None)
            return Failure("status", message=server_message(body, getattr(exc, "message", "")),
                           invalid_request=invalid_request({"error": body}))
        return _classify_transport(exc)

    return classify


def _classify_transport(exc: BaseException) -> Failure | None:
    # openai/anthropic use httpx2 (newer) or httpx (older): whichever is loaded.
    for name in ("httpx2", "httpx"):
        http = sys.modules.get(name)
        if http is None:
            continue
        if isinstance(exc, http.TimeoutException):
            return Failure("timeout", message="timed out")
        if isinstance(exc, http.TransportError):
            return Failure("connection", message=connection_reason(exc))
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        nested = current.__cause__ or current.__context__
        if nested is None and current.args and isinstance(current.args[0], BaseException):
            nested = current.args[0]  # httpcore wraps the OSError as its first argument
        current = nested


def connection_reason(exc: BaseException) -> str:
    """A short reason for a connection failure, from the exception types in its chain."""
    chain = list(_chain(exc))
    for err in chain:
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, socket.gaierror):
            return "host name not found"
        if isinstance(err, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(err, ssl.SSLError):
            return f"TLS error: {err.reason or err}"
        if isinstance(err, (TimeoutError, socket.timeout)):
            return "timed out"
        if isinstance(err, OSError) and err.strerror:
            return err.strerror.lower()
    innermost = str(chain[-1]).strip()
    return innermost.rstrip(".") or "connection failed"


def server_message(body: object, fallback: str = "") -> str:
    """The human message inside an error body (OpenAI, Anthropic, vLLM, llama.cpp shapes)."""
    if isinstance(body, Mapping):
        inner: Any = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message") or inner.get("detail")
            if message:
                return str(message)[:1000]
        elif isinstance(inner, str) and inner:
            return inner[:1000]
        if body.get("detail"):
            return str(body["detail"])[:1000]
        if body.get("message"):
            return str(body["message"])[:1000]
    if isinstance(body, str) and body.strip():
        return body.strip()[:1000]
    return fallback[:1000]


_VALIDATION_TEXT_LIMIT = 100_000


def invalid_request(body: object) -> bool:
    """Whether an error body blames the request: an invalid-request type or validation errors.

    Read from fields, never from wording: the OpenAI `type`, a FastAPI `detail` list, or a
    message that is itself a printed list of pydantic errors (llama-cpp-python's 500).
    """
    if not isinstance(body, Mapping):
        return False
    inner: Any = body.get("error", body)
    if isinstance(inner, Mapping):
        if inner.get("type") == "invalid_request_error":
            return True
        message = inner.get("message")
        if isinstance(message, str) and _validation_list(message):
            return True
    detail = body.get("detail")
    return isinstance(detail, list) and _is_validation_errors(detail)


def _validation_list(text: str) -> bool:
    """A printed list of pydantic errors: `[{...}, ...]`, or FastAPI's `N validation errors:` and
    one `{...}` per line (what llama-cpp-python's server sends under status 500)."""
    if len(text) > _VALIDATION_TEXT_LIMIT:
        return False
    start = text.find("[{")
    candidates = [text[start:].strip()] if start != -1 else []
    candidates += [line.strip() for line in text.splitlines() if line.strip().startswith("{")]
    for candidate in candidates:
        try:
            value = ast.literal_eval(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if _is_validation_errors(value if isinstance(value, list) else [value]):
            return True
    return False


def _is_validation_errors(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, Mapping) and "loc" in i and "msg" in i for i in items)


def parse_retry_after(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), else None."""
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None and math.isfinite(seconds := float(millis) / 1000.0):
            return seconds
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
