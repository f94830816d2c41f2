"""Property: whatever bytes the sandbox writes to the bridge, the host holds.

Hypothesis builds sequences of frames (every op, well-formed and not: wrong field types, odd
ids, deep and wide values, lone surrogates, forged tags, bad length prefixes, raw garbage);
model code run by a real `CodeAgent` in the default `LocalSandbox` writes them straight into
the bridge socket, then the next action calls `final_answer`. For every example the host must:
end the run with a status (no exception out of `run()`), within the step's time limit plus
grace, with host RSS and run-log growth under a cap, and with no host secret in what the model
or the log saw. Examples are derandomized and few, so the test is stable and well under 60 s.
"""

from __future__ import annotations

import base64
import gc
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.sandbox import default_sandbox
from codeact.sandbox.guest.wire import TAG, TAGS
from tests._isolation import require_sandbox
from tests.security._harness import SECRET, reply
from tests.security.test_host_bridge import FORGE, LOG_CAP, RSS_CAP, STATUSES, _log_size, _rss

pytestmark = require_sandbox()

STEP_TIMEOUT = 2.0
TIME_CAP = STEP_TIMEOUT + 2.0 + 4.0  # the step, the interrupt grace, a kernel restart, slack


@tool
def echo(value: object) -> str:
    """Say what arrived."""
    return f"{type(value).__name__}"


@tool
def keyed(query: str, api_key: str = SECRET) -> str:
    """A tool whose default is the host's secret (never shown, never sent)."""
    return query[:10]


# -- strategies ---------------------------------------------------------------------------------

_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\ud800", "\udfff tail", "op", TAG, "exec", "call", "done", "echo", "keyed", "final_answer"]),
)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), _text
)


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _tagged(draw: st.DrawFn) -> dict[str, Any]:
    tag = draw(st.sampled_from(sorted(TAGS) + ["pickle", "bogus"]))
    fields = draw(st.dictionaries(st.sampled_from(["items", "base64", "iso", "text", "hex", "path", "type", "repr",
                                                   "days", "seconds", "us", "real", "imag", "dtype", "shape",
                                                   "fields"]), _json, max_size=4))
    return {TAG: tag, **fields}


_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(_text, children, max_size=5)
    ),
    max_leaves=20,
)
_values = st.one_of(
    _json,
    st.composite(lambda draw: _tagged(draw))(),
    st.sampled_from([60, 63, 64, 65, 300]).map(_nested),
    st.integers(min_value=1, max_value=1_200_000).map(lambda n: [[]] * n),
    st.integers(min_value=10_000, max_value=60_000).map(
        lambda n: {TAG: "set", "items": [k * (2**61 - 1) for k in range(n)]}
    ),
)
_ids = st.one_of(st.integers(min_value=-5, max_value=2**64), st.sampled_from(["1", 1.5, True, None, [1]]))
_exec = st.one_of(st.just("current"), st.just("missing"), _ids)


@st.composite
def _frame(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["call", "call", "call", "done", "hello", "return", "raise", "exec", "tools", "x" * 300]))
    frame: dict[str, Any] = {"op": op, "id": draw(_ids)}
    if op == "call":
        frame["exec"] = draw(_exec)
        frame["name"] = draw(st.one_of(st.sampled_from(["echo", "keyed", "nope", ""]), _text, _values))
        frame["args"] = draw(st.one_of(st.lists(_values, max_size=3), _values))
        frame["kwargs"] = draw(st.one_of(st.dictionaries(st.sampled_from(["value", "query", "api_key", TAG]),
                                                         _values, max_size=2), _values))
    else:
        for key in draw(st.lists(st.sampled_from(["stdout", "stderr", "result", "error", "final", "final_answer",
                                                  "interrupted", "pid", "python", "json", "type", "message"]),
                                 max_size=5)):
            frame[key] = draw(_values)
        if op == "done" and draw(st.booleans()):
            frame["id"] = "current"
    return frame


_item = st.one_of(
    _frame().map(lambda f: {"frame": f}),
    st.binary(max_size=64).map(lambda b: {"raw": base64.b64encode(b).decode()}),
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: {"prefix": n}),
)


# The model's first action: write the items to the bridge, draining replies meanwhile.
WRITER = FORGE + """
import base64, select
items = json.loads(base64.b64decode(PAYLOAD))
fd = bridge_fd()
def fill(v):
    return step_id() if v == 'current' else v
for item in items:
    if 'raw' in item:
        os.write(fd, base64.b64decode(item['raw']))
    elif 'prefix' in item:
        os.write(fd, item['prefix'].to_bytes(4, 'big'))
    else:
        f = item['frame']
        if f.get('exec') == 'missing':
            del f['exec']
        elif 'exec' in f:
            f['exec'] = fill(f['exec'])
        f['id'] = fill(f['id'])
        send(f)
    while select.select([fd], [], [], 0.01)[0]:
        os.read(fd, 1 << 20)
print('written', len(items))
"""


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with default_sandbox() as sb:
        yield sb


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(items=st.lists(_item, min_size=1, max_size=4))
def test_any_frames_from_the_sandbox_leave_the_host_whole(sandbox: Any, tmp_path_factory: Any,
                                                          items: list[dict[str, Any]]) -> None:
    store = Path(tmp_path_factory.mktemp("fuzz")) / "runs.db"
    payload = base64.b64encode(json.dumps(items).encode()).decode()
    model = ScriptedModel([reply(WRITER.replace("PAYLOAD", repr(payload))), reply("final_answer('survived')")])
    agent = CodeAgent(model, [echo, keyed], sandbox=sandbox, step_timeout=STEP_TIMEOUT, max_steps=3, store=store)
    gc.collect()
    rss = _rss()
    started = time.monotonic()
    result = agent.run("Write these frames.")  # an exception here is a failure
    seconds = time.monotonic() - started
    gc.collect()
    assert result.status in STATUSES
    assert seconds < TIME_CAP, f"the run took {seconds:.1f} s"
    assert _rss() - rss < RSS_CAP
    assert _log_size(store) < LOG_CAP
    seen = "\n".join(str(m.content) for call in model.calls for m in call) + repr(result.output)
    assert SECRET not in seen
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in store.parent.glob("runs.db*"))
