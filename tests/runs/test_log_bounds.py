"""The run log keeps any text exactly, bounds what it stores, and never makes a run fail."""

import os

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.models.base import Message, Usage
from codeact.runs.codec import decode_value, encode_value
from codeact.runs.events import (
    LogNote,
    ModelReplied,
    ModelRequested,
    Observed,
    RunFinished,
    RunStarted,
    Step,
    StepFinished,
    ToolCalled,
)
from codeact.runs.limits import LogLimits, Truncated
from codeact.runs.log import RunLog
from codeact.runs.redact import Redactor
from codeact.runs.store import RunStore
from codeact.sandbox.base import ExecError, Execution, ToolCallRecord
from codeact.sandbox.process import ProcessSandbox

ODD = "caf" + os.fsdecode(b"\xe9") + " \ud800 \udfff end"  # lone surrogates, as os.fsdecode makes them


def code(src):
    return f"Thought: go.\n```python\n{src}\n```"


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_lone_surrogates_round_trip_exactly_in_every_field(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    log = RunLog(store, "r1")
    call = ToolCallRecord("lookup", {"q": ODD, ODD: (ODD,)}, {"answer": ODD}, f"ValueError: {ODD}")
    execution = Execution(ODD, ODD, repr(ODD), ExecError("ValueError", ODD, ODD), True, {"a": ODD})
    events = [
        RunStarted(ODD, "code", "scripted", ("lookup",), 3, "r1"),
        ModelRequested(1, 0, (Message("user", ODD),)),
        ModelReplied(1, ODD, Usage(1, 1), 0.1),
        ToolCalled(1, call),
        Observed(1, ODD, 0.1, "ValueError", execution),
        StepFinished(Step(1, ODD, ODD, ODD, reply=ODD)),
        RunFinished("success", [ODD, {ODD: b"\xe9"}], Usage(1, 1), 1, 0.1, ODD),
    ]
    for event in events:
        log.write(event)
    assert log.take_notes() == []
    back = store.events("r1")
    assert back[0].task == ODD and back[1].messages[0].content == ODD and back[2].text == ODD
    assert back[3].call == call
    assert back[4].observation == ODD and back[4].execution.stdout == ODD
    assert back[4].execution.error.message == ODD and back[4].execution.final_answer == {"a": ODD}
    assert back[5].step.thought == ODD and back[5].step.reply == ODD
    assert back[6].output == [ODD, {ODD: b"\xe9"}] and back[6].error == ODD
    record = store.get("r1")
    assert record.output == [ODD, {ODD: b"\xe9"}]
    assert "\\udce9" in record.task  # the summary column shows the escape; the event holds the text


def test_deep_nesting_is_stored_with_a_placeholder_not_a_recursion_error(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    log = RunLog(store, "r1")
    deep = nested(5_000)
    log.write(RunStarted("t", "code", "scripted", ("f",), 3, "r1"))
    log.write(ToolCalled(1, ToolCallRecord("f", {"x": deep}, deep)))
    log.write(RunFinished("success", deep, Usage(), 1, 0.1))
    assert log.take_notes() == []
    call, finished = store.events("r1")[1:]
    value = call.call.arguments["x"]
    for _ in range(LogLimits().depth - 2):
        (value,) = value
    assert isinstance(value, list) and isinstance(value[0], Truncated) and "nested deeper" in repr(value[0])
    assert isinstance(finished.output, list)


def test_huge_ints_and_wide_containers_are_previews():
    encoded = encode_value({"n": 10**20_000, "wide": [0] * 1_000_000, "set": set(range(100_000))})
    back = decode_value(encoded)
    assert isinstance(back["n"], Truncated) and back["n"].type == "int"
    assert isinstance(back["wide"], Truncated) and back["wide"].size == 1_000_000
    assert len(str(encoded)) < 2 * LogLimits().value_chars
    assert encode_value(back) == encoded  # read back and written again: unchanged


def test_ten_calls_with_a_50_mb_argument_grow_the_log_by_less_than_2_mb(tmp_path):
    path = tmp_path / "runs.db"
    store = RunStore(path)
    log = RunLog(store, "r1", redactor=Redactor())
    log.write(RunStarted("t", "code", "scripted", ("save",), 3, "r1"))
    before = _size(store)
    big = "x" * 50_000_000
    for _ in range(10):
        log.write(ToolCalled(1, ToolCallRecord("save", {"text": big}, big)))
    grown = _size(store) - before
    assert grown < 2_000_000, grown  # each argument and result: a 100,000-character preview
    kept = store.events("r1")[1].call
    assert isinstance(kept.arguments["text"], Truncated) and kept.arguments["text"].size == 50_000_000
    assert kept.arguments["text"].preview.startswith("xxxx") and "not kept in the run log" in kept.arguments["text"].preview


def test_calls_past_the_step_cap_are_counted_not_stored(tmp_path):
    path = tmp_path / "runs.db"
    store = RunStore(path, limits=LogLimits(step_bytes=200_000, run_bytes=10_000_000))
    log = RunLog(store, "r1")
    log.write(RunStarted("t", "code", "scripted", ("f",), 3, "r1"))
    for i in range(5_000):
        log.write(ToolCalled(1, ToolCallRecord("f", {"i": i, "pad": "p" * 1_000}, i)))
    log.write(Observed(1, "o" * 50_000, 0.1, None, Execution(stdout="s" * 50_000)))
    events = store.events("r1")
    calls = [e for e in events if isinstance(e, ToolCalled)]
    note = next(e for e in events if isinstance(e, LogNote))
    assert 100 < len(calls) < 300 and note.dropped == 5_000 - len(calls) and note.reason == "step_cap"
    assert isinstance(events[-1], Observed) and len(events[-1].observation) < 3_000  # kept as a preview
    assert log.take_notes() == [note]
    assert _size(store) < 1_500_000


def test_a_secret_across_the_cut_is_redacted_whole(tmp_path):
    secret = "sk-" + "A1b2C3d4" * 6
    store = RunStore(tmp_path / "runs.db")
    log = RunLog(store, "r1", redactor=Redactor())
    text = "y" * 66_620 + secret + "y" * 200_000  # the preview's head ends inside the secret
    log.write(RunStarted("t", "code", "scripted", ("f",), 3, "r1"))
    log.write(ToolCalled(1, ToolCallRecord("f", {"text": text}, None)))
    raw = store._db.execute("SELECT data FROM events WHERE kind = 'tool_called'").fetchone()[0]
    assert "A1b2C3d4" not in raw and "sk-A1b2" not in raw


def test_a_run_whose_log_cannot_be_written_still_ends_with_its_answer(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store._db.execute("PRAGMA max_page_count = 12")  # a real "database or disk is full"
    agent = CodeAgent(ScriptedModel([code("print('z' * 15000)"), code("final_answer(42)")]),
                      sandbox=ProcessSandbox, store=store)
    events = list(agent.run("t", stream=True))
    assert isinstance(events[-1], RunFinished) and events[-1].result.output == 42
    notes = [e for e in events if isinstance(e, LogNote)]
    assert notes and notes[0].reason == "write_failed" and "full" in notes[0].message


def test_surrogates_from_model_code_tools_and_answers_through_a_real_run(tmp_path):
    seen = []

    @tool
    def echo(text: str) -> str:
        """Return the text."""
        seen.append(text)
        return text

    store = RunStore(tmp_path / "runs.db")
    src = (
        "import os\nname = os.fsdecode(b'caf\\xe9.txt')\nprint(name, '\\ud800')\n"
        "echo(name + '\\udfff')\nraise ValueError(name)"
    )
    agent = CodeAgent(ScriptedModel([code(src), code("final_answer(name)")]), [echo], sandbox=ProcessSandbox,
                      store=store)
    result = agent.run("list caf\udce9.txt")
    name = os.fsdecode(b"caf\xe9.txt")
    assert result.status == "success" and result.output == name
    assert seen == [name + "\udfff"]
    events = store.events(result.run_id)
    assert events[0].task == "list caf\udce9.txt"
    assert name in next(e for e in events if isinstance(e, Observed)).execution.stdout
    assert next(e for e in events if isinstance(e, ToolCalled)).call.arguments == {"text": name + "\udfff"}
    assert events[-1].output == name and store.get(result.run_id).output == name


def _size(store):
    """The file's size once the write-ahead log is folded in (the WAL file is reused, not grown)."""
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(store.path)


def test_telemetry_that_raises_is_switched_off_and_reported_not_raised():
    class Broken:
        def __getattr__(self, name):
            def fail(*args):
                raise RuntimeError("exporter down")

            return fail

    class BrokenTelemetry:
        def observer(self, run_id):
            return Broken()

    agent = CodeAgent(ScriptedModel([code("print(1)"), code("final_answer(2)")]), sandbox=ProcessSandbox)
    agent._telemetry = BrokenTelemetry()
    events = list(agent.run("t", stream=True))
    assert events[-1].result.output == 2
    notes = [e for e in events if isinstance(e, LogNote)]
    assert len(notes) == 1 and notes[0].reason == "observer_failed" and "exporter down" in notes[0].message


def test_event_to_dict_of_a_deep_value_does_not_overflow_the_stack():
    from codeact.runs.events import event_to_dict

    data = event_to_dict(ToolCalled(1, ToolCallRecord("f", {"x": nested(5_000)}, nested(5_000))))
    value = data["call"]["result"]
    for _ in range(50):
        (value,) = value
    assert "nested deeper than 100 levels" in str(value)
