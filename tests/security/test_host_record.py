"""Attacks on the host's record of a run (the run log), as model code through the default sandbox.

Model code decides what it prints, what its tools get and what it answers, so it decides what the
host writes to runs.db. Each attack is the first action of a `ScriptedModel` driving a real
`CodeAgent` with the default (isolated) `LocalSandbox`; the host then checks, through `recorded()`:

- the run ends with a status, never an exception out of `run()`;
- within `TIME_CAP` (step_timeout + the interrupt grace + slack);
- runs.db grew by less than `LOG_CAP` (measured with the write-ahead log folded in);
- the log reads back (every event decodes), and the host's secret is nowhere in the file.
"""

from __future__ import annotations

import os
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.runs.events import Event, LogNote, Observed, RunFinished, ToolCalled
from codeact.runs.limits import Truncated
from codeact.runs.store import RunStore
from tests._isolation import require_sandbox
from tests.security._harness import SECRET, reply

pytestmark = require_sandbox()

STEP_TIMEOUT = 3.0
TIME_CAP = STEP_TIMEOUT + 2.0 + 5.0  # the step, LocalSandbox's interrupt grace, a kernel restart and slack
LOG_CAP = 6 * 2**20  # LogLimits: 4 MiB a step, 100,000 characters a value; well under this for one run
STATUSES = {"success", "max_steps", "budget_exceeded", "model_error", "interrupted"}
ODD = os.fsdecode(b"caf\xe9.txt")  # what os.fsdecode makes of a Latin-1 file name: a lone surrogate


@dataclass
class Recorded:
    status: str
    output: Any
    events: list[Event]
    """What the log holds for the run, read back."""
    stream: list[Event]
    seconds: float
    log_growth: int


def _size(store: RunStore) -> int:
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(store.path)


def recorded(code: str, tmp_path: Path, *, tools: Any = (), then: str = "final_answer('survived')",
             task: str = "Do what the page says.", step_timeout: float = STEP_TIMEOUT) -> Recorded:
    """Run `code` as the model's first action, `then` as its second; check the host-side properties."""
    store = RunStore(tmp_path / "runs.db")
    model = ScriptedModel([reply(textwrap.dedent(code)), reply(then)])
    agent = CodeAgent(model, list(tools), step_timeout=step_timeout, max_steps=3, store=store)
    before = _size(store)
    started = time.monotonic()
    stream = list(agent.run(task, stream=True))  # an exception here fails the test
    seconds = time.monotonic() - started
    finished = stream[-1]
    assert isinstance(finished, RunFinished) and finished.status in STATUSES
    assert seconds < TIME_CAP - STEP_TIMEOUT + step_timeout, f"the run took {seconds:.1f} s"
    growth = _size(store) - before
    assert growth < LOG_CAP, f"the run log grew by {growth / 2**20:.1f} MiB"
    events = store.events(finished.result.run_id)  # every event decodes
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("runs.db*"))
    assert SECRET.encode() not in raw, "a host secret reached the run log"
    return Recorded(finished.status, finished.output, events, stream, seconds, growth)


def test_lone_surrogates_everywhere_are_stored_exactly(tmp_path):
    got = []

    @tool
    def lookup(name: str) -> str:
        """Look a file name up."""
        got.append(name)
        return name + "\udfff"

    out = recorded(
        """
        import os
        name = os.fsdecode(b'caf\\xe9.txt')
        print(name, '\\ud800')
        back = lookup(name)
        print(back)
        raise ValueError(name)
        """,
        tmp_path,
        tools=[lookup],
        then="final_answer({'\\udc80': name})",
        task=f"open {ODD}",
    )
    assert out.status == "success" and out.output == {"\udc80": ODD}
    assert got == [ODD]
    assert out.events[0].task == f"open {ODD}"
    call = next(e for e in out.events if isinstance(e, ToolCalled)).call
    assert call.arguments == {"name": ODD} and call.result == ODD + "\udfff"
    observed = next(e for e in out.events if isinstance(e, Observed))
    assert f"{ODD} \ud800" in observed.execution.stdout and observed.execution.error.message == ODD
    assert out.events[-1].output == {"\udc80": ODD}


def test_deep_nesting_in_arguments_results_and_answers_does_not_crash_the_record(tmp_path):
    @tool
    def deep(n: int) -> object:
        """A host tool whose result nests `n` levels."""
        value: list = []
        for _ in range(n):
            value = [value]
        return value

    @tool
    def swallow(value: object) -> str:
        """Take anything."""
        return "ok"

    out = recorded(
        """
        v = []
        for _ in range(5000):
            v = [v]
        for attempt in (lambda: swallow(v), lambda: deep(5000), lambda: swallow({'k': v})):
            try:
                print(type(attempt()).__name__)
            except BaseException as exc:
                print('refused:', type(exc).__name__)
        """,
        tmp_path,
        tools=[deep, swallow],
        then="x = []\nfor _ in range(2000):\n    x = [x]\nfinal_answer(x)",
    )
    assert out.status in STATUSES
    assert isinstance(out.events[-1], RunFinished)


def test_ten_calls_with_huge_arguments_and_results_grow_the_log_by_less_than_1_mb(tmp_path):
    sizes = []

    @tool
    def save(text: str) -> str:
        """Save a text; give it back."""
        sizes.append(len(text))
        return text

    # 12 MiB fits one bridge frame (16 MiB), so every call reaches the host and its record; the
    # 50 MB of the issue is refused in the kernel before that (and tried too).
    out = recorded(
        """
        for size in (12 * 1024 * 1024, 50 * 1024 * 1024):
            big = 'x' * size
            for i in range(10):
                try:
                    save(big)
                except BaseException as exc:
                    print('refused:', type(exc).__name__, str(exc)[:80])
        print('done')
        """,
        tmp_path,
        tools=[save],
        step_timeout=30.0,  # 240 MiB cross the bridge: ~0.1-0.4 s per call on a busy 2-core machine
    )
    assert out.status == "success"
    assert sizes == [12 * 1024 * 1024] * 10
    assert out.log_growth < 2**20, out.log_growth  # previews, not 240 MB of arguments and results
    calls = [e.call for e in out.events if isinstance(e, ToolCalled)]
    assert len(calls) == 10
    for call in calls:
        assert isinstance(call.result, Truncated) and call.result.size == 12 * 1024 * 1024
        assert len(repr(call.arguments)) < 200_000


def test_a_flood_of_calls_is_capped_per_step_in_the_log(tmp_path):
    @tool
    def ping(payload: str) -> str:
        """Echo a payload."""
        return payload

    out = recorded(
        """
        blob = 'p' * 19_000
        n = 0
        try:
            for n in range(3000):
                ping(blob)
        except BaseException as exc:
            print('stopped after', n, type(exc).__name__)
        """,
        tmp_path,
        tools=[ping],
    )
    assert out.status == "success"
    assert out.log_growth < LOG_CAP
    calls = [e for e in out.events if isinstance(e, ToolCalled)]
    notes = [e for e in out.events if isinstance(e, LogNote)]
    assert calls and (notes or len(calls) < 1_000)  # past 4 MiB a step, calls are counted in a note
    assert all(n.reason == "step_cap" and n.dropped > 0 for n in notes)


def test_huge_output_error_and_answer_stay_bounded(tmp_path):
    out = recorded(
        """
        import sys
        print('o' * 30_000_000)
        sys.stderr.write('e' * 30_000_000)
        raise RuntimeError('m' * 30_000_000)
        """,
        tmp_path,
        then="final_answer({'a': 'z' * 20_000_000, 'b': list(range(2_000_000))})",
    )
    assert out.status in STATUSES
    assert out.log_growth < LOG_CAP
    answer = out.events[-1].output
    assert answer is None or isinstance(answer, (dict, Truncated, str))


def test_secrets_a_tool_hands_back_are_redacted_in_the_log(tmp_path):
    jwt = "eyJ" + "hbGciOiJIUzI1NiJ9" + ".eyJ" + "zdWIiOiJhbGljZSJ9" + ".c2lnbmF0dXJlLWJ5dGVz"
    pem = "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\n-----END " + "PRIVATE KEY-----"

    @tool
    def credentials() -> dict:
        """The service's credentials (a careless tool)."""
        return {"token": jwt, "key": pem, "api_key": os.environ["CODEACT_TEST_API_KEY"]}

    out = recorded(
        """
        c = credentials()
        print(c['token'], c['key'], c['api_key'])
        leak = {'again': c['api_key'] * 3, 'jwt': c['token']}
        """,
        tmp_path,
        tools=[credentials],
        then="final_answer(leak)",
    )
    assert out.status == "success"
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("runs.db*"))
    assert b"MIIEvQIBADANBgkq" not in raw and b"c2lnbmF0dXJlLWJ5dGVz" not in raw
    assert b"[REDACTED:jwt]" in raw and b"[REDACTED:private-key]" in raw


def test_a_step_that_outlives_the_run_deadline_is_cut_and_still_recorded(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    model = ScriptedModel([reply("import time\nprint('\\ud800')\ntime.sleep(30)"), reply("final_answer(1)")])
    agent = CodeAgent(model, step_timeout=30, max_seconds=1.5, store=store)
    started = time.monotonic()
    result = agent.run("t")
    assert time.monotonic() - started < 1.5 + 2.0 + 2.0  # the deadline, the interrupt grace, slack
    assert result.status == "budget_exceeded"
    events = store.events(result.run_id)
    assert isinstance(events[-1], RunFinished) and events[-1].status == "budget_exceeded"
