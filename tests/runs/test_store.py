"""The SQLite run log: writing, reading, concurrency, crash detection, redaction, round trips."""

import json
import multiprocessing
import sqlite3
from typing import ClassVar

import pytest

from codeact.errors import ConfigError
from codeact.models.base import Message, ToolCall, Usage
from codeact.runs.codec import RecordedObject, decode_value, encode_event, encode_value, event_from_dict
from codeact.runs.events import (
    ActionParsed,
    BudgetHit,
    ModelReplied,
    ModelRequested,
    Observed,
    RunFinished,
    RunResumed,
    RunStarted,
    Step,
    StepFinished,
    ToolCalled,
)
from codeact.runs.log import RunLog, new_run_id
from codeact.runs.pricing import PriceTable
from codeact.runs.redact import Redactor
from codeact.runs.store import RunStore, default_store_path
from codeact.sandbox.base import Execution, ToolCallRecord


def started(run_id="r1", task="task"):
    return RunStarted(task, "code", "openai:gpt-4o-mini", ("lookup",), 5, run_id)


def test_default_path_follows_codeact_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CODEACT_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "runs.db"
    store = RunStore()
    assert store.path == str(tmp_path / "runs.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_locations(tmp_path):
    assert RunStore("sqlite:///:memory:").path == ":memory:"
    assert RunStore(f"sqlite:///{tmp_path}/a.db").path == str(tmp_path / "a.db")
    with pytest.raises(ConfigError, match="only SQLite"):
        RunStore("postgres://x/y")
    (tmp_path / "a-file").touch()
    with pytest.raises(ConfigError, match="cannot open the run log"):
        RunStore(tmp_path / "a-file" / "runs.db")


def test_log_keeps_summary_current_and_events_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    log = RunLog(store, "r1", prices=PriceTable())
    record = ToolCallRecord("lookup", {"key": ("a", 1)}, {"v": {1, 2}}, None, 0.5)
    execution = Execution("out\n", "", "42", None, False, None, False, False, 0.1, (record,))
    step = Step(1, "think", "x = 1", "Execution logs:\nout", Usage(100, 10), 0.2, 0.1, (record,), False, None, "r")
    events = [
        started(),
        ModelRequested(1, 0, (Message("system", "s"), Message("user", "t"))),
        ModelReplied(1, "reply", Usage(100, 10), 0.2, (ToolCall("c1", "lookup", {"key": "a"}),), "stop"),
        ActionParsed(1, "think", "x = 1", "note"),
        ToolCalled(1, record),
        Observed(1, "Execution logs:\nout", 0.1, None, execution),
        StepFinished(step),
        BudgetHit(1, "tokens", 50, 110, "token budget exhausted"),
        RunResumed("r1", 2, 1, (1,)),
        RunFinished("budget_exceeded", ("partial", b"\x00"), Usage(100, 10), 1, 0.5, "token budget exhausted"),
    ]
    for e in events:
        log.write(e)
    r = store.get("r1")
    assert (r.status, r.steps, r.prompt_tokens, r.completion_tokens) == ("budget_exceeded", 1, 100, 10)
    assert r.cost == pytest.approx((100 * 0.15 + 10 * 0.60) / 1e6)
    assert r.output == ("partial", b"\x00")
    back = store.events("r1")
    assert [type(e) for e in back] == [type(e) for e in events]
    assert back[4] == events[4]  # the tool call, types kept (tuple argument, set result)
    assert back[2] == events[2] and back[1] == events[1] and back[7] == events[7]
    # The observation and the step do not repeat the tool calls; the ToolCalled event has them.
    assert back[5].execution.tool_calls == () and back[5].execution.result == "42"
    assert back[6].step.tool_calls == () and back[6].step.usage == Usage(100, 10)


def test_every_event_kind_round_trips_through_the_codec():
    for e in [started(), RunResumed("r", 3, 2, (1, 2)), BudgetHit(2, "cost", 1.0, 1.5, "m"),
              RunFinished("success", {"a": [1, (2, 3)]}, Usage(1, 2), 3, 1.5, None)]:
        assert event_from_dict(json.loads(json.dumps(encode_event(e)))) == e
    with pytest.raises(ConfigError, match="unknown event kind"):
        event_from_dict({"kind": "from_the_future"})
    with pytest.raises(ConfigError, match="malformed"):
        event_from_dict({"kind": "tool_called", "step": 1})


def test_values_keep_their_types_and_unpicklable_ones_keep_their_repr():
    class Local:  # defined in a function: pickle cannot find it again
        def __repr__(self):
            return "<Local thing>"

    for value in [(1, "a"), {1: "x"}, frozenset({1}), b"\xff", {"$codeact": 1}, [None, 1.5]]:
        assert decode_value(json.loads(json.dumps(encode_value(value)))) == value
    assert decode_value(encode_value(Local())) == RecordedObject(f"{__name__}.{Local.__qualname__}", "<Local thing>")


def test_prefix_resolution_and_listing(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    for run_id in ["abc111", "abc222", "xyz333"]:
        RunLog(store, run_id).write(started(run_id))
    assert store.resolve("xy") == "xyz333"
    with pytest.raises(ConfigError, match="ambiguous"):
        store.resolve("abc")
    with pytest.raises(ConfigError, match="no run"):
        store.resolve("nope")
    assert [r.id for r in store.runs()] == ["xyz333", "abc222", "abc111"]
    assert [r.id for r in store.runs(limit=1)] == ["xyz333"]
    store.delete("xyz")
    assert len(store.runs()) == 2


def test_a_run_whose_process_is_gone_reads_crashed(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    RunLog(store, "alive").write(started("alive"))
    RunLog(store, "dead").write(started("dead"))
    store.update_run("dead", pid=2**22 + 12345)  # no such process
    assert store.get("alive").state == "running"
    assert store.get("dead").state == "crashed"
    assert [r.id for r in store.runs(status="crashed")] == ["dead"]


def test_reopen_refuses_a_run_another_live_process_writes(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    RunLog(store, "r1").write(started())
    store.update_run("r1", pid=1)  # pid 1 is alive and is not us
    with pytest.raises(ConfigError, match="one writer per run"):
        RunLog.reopen(store, "r1")


def _writer(path, run_id, n):
    store = RunStore(path)
    log = RunLog(store, run_id)
    log.write(started(run_id))
    for i in range(n):
        log.write(ModelReplied(i + 1, f"reply {i}", Usage(1, 1), 0.0))
    store.close()


def test_concurrent_processes_write_their_runs_to_one_file(tmp_path):
    path = str(tmp_path / "runs.db")
    RunStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"run{i}", 150)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = RunStore(path)
    for i in range(4):
        assert store.get(f"run{i}").prompt_tokens == 150
        assert len(store.raw_events(f"run{i}")) == 151


def test_secrets_are_redacted_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "s3cr3t-value-123")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada Lovelace")  # not a secret name: kept

    class Db:
        name = "db"
        secrets: ClassVar[dict[str, str]] = {"password": "hunter2hunter2"}

    redactor = Redactor.from_environment(tools=[Db()])
    store = RunStore(tmp_path / "runs.db")
    log = RunLog(store, "r1", redactor=redactor)
    log.write(started(task="use s3cr3t-value-123 as Ada Lovelace"))
    key = "sk-proj-" + "A1b2C3d4" * 4
    log.write(ToolCalled(1, ToolCallRecord("db", {"dsn": "postgres://u:hunter2hunter2@h"}, f"token {key}")))
    text = json.dumps(store.raw_events("r1"))
    assert "s3cr3t-value-123" not in text and "hunter2hunter2" not in text and key not in text
    assert "[REDACTED:MY_SERVICE_API_KEY]" in text and "[REDACTED:db.password]" in text
    assert "[REDACTED:api-key]" in text and "Ada Lovelace" in text
    assert store.get("r1").task == "use [REDACTED:MY_SERVICE_API_KEY] as Ada Lovelace"


def test_secrets_inside_pickled_values_drop_the_pickle():
    redactor = Redactor({"K": "supersecretvalue"})

    class Box:
        def __init__(self, v):
            self.v = v

    global _Box
    _Box = Box
    Box.__qualname__ = "_Box"
    encoded = encode_value(Box("supersecretvalue"))
    assert "pickle" in encoded
    clean = redactor.value(encoded)
    assert "pickle" not in clean


def test_short_values_are_not_treated_as_secrets():
    assert Redactor({"PIN_TOKEN": "1234"}).text("1234 apples") == "1234 apples"


def test_new_run_ids_are_short_and_distinct():
    ids = {new_run_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 12 for i in ids)


def test_store_is_plain_sqlite(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    RunLog(store, "r1").write(started())
    store.close()
    db = sqlite3.connect(tmp_path / "runs.db")
    assert db.execute("SELECT kind FROM events WHERE run_id = 'r1'").fetchall() == [("run_started",)]


def test_a_file_that_is_not_a_run_log_is_a_clear_error(tmp_path):
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="cannot open the run log"):
        RunStore(path)


def test_an_agent_commits_each_steps_reply_before_its_action_and_each_tool_call_at_once(tmp_path):
    """The durability contract at step granularity: while step N's code runs, the log (read by
    another connection) already holds steps before N whole, N's reply, and N's earlier tool calls."""
    from codeact import CodeAgent, tool
    from codeact.models import ScriptedModel
    from codeact.sandbox.process import ProcessSandbox

    path = tmp_path / "runs.db"
    seen: list[list[str]] = []

    @tool
    def peek() -> int:
        """The events committed so far."""
        with RunStore(path) as other:
            run_id = other.runs(limit=1)[0].id
            seen.append([e["kind"] for e in other.raw_events(run_id)])
        return 1

    replies = ["```python\npeek()\n```", "```python\npeek()\npeek()\nfinal_answer(1)\n```"]
    agent = CodeAgent(ScriptedModel(replies), [peek], store=path, sandbox=ProcessSandbox)
    assert agent.run("peek").success
    kinds = seen
    assert kinds[0] == ["run_started", "model_requested", "model_replied", "action_parsed"]
    assert kinds[1] == kinds[0] + ["tool_called", "observed", "step_finished",
                                   "model_requested", "model_replied", "action_parsed"]
    assert kinds[2] == kinds[1] + ["tool_called"]  # step 2's first call, committed as it happened
    with RunStore(path) as store:
        assert [e.kind for e in store.events(store.runs(limit=1)[0].id)][-2:] == ["step_finished", "run_finished"]
