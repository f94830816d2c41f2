"""Replay: recorded model replies and tool results, live code, divergences reported."""

import json

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.runs.replay import replay_run
from codeact.runs.store import RunStore
from codeact.sandbox.process import ProcessSandbox


def code(src):
    return f"Thought: go.\n```python\n{src}\n```"


def weather_tool(temps, calls):
    @tool
    def temperature(city: str, unit: str = "C") -> dict:
        """Current temperature of a city."""
        calls.append(city)
        return {"city": city, "reading": (temps[city], unit)}

    return temperature


REPLIES = [
    code("rome = temperature('Rome')\nprint(rome)"),
    code("paris = temperature('Paris', unit='C')\nprint(paris['reading'])"),
    code("final_answer('Rome' if rome['reading'][0] > paris['reading'][0] else 'Paris')"),
]


def record(store, temps=None):
    calls = []
    agent = CodeAgent(ScriptedModel(REPLIES), [weather_tool(temps or {"Rome": 24, "Paris": 19}, calls)],
                      sandbox=ProcessSandbox, store=store)
    result = agent.run("Is it warmer in Rome or Paris?")
    assert result.output == "Rome" and calls == ["Rome", "Paris"]
    return result.run_id


def test_recorded_run_replays_from_the_log_alone(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = record(store)
    report = replay_run(run_id, store=store, sandbox=ProcessSandbox)  # no model, no tool code
    assert report.ok, report.divergences
    assert report.result.status == "success" and report.result.output == "Rome"
    assert len(report.result.steps) == 3
    # The tuple in the tool's result came back as a tuple: the observation printed "(19, 'C')".
    assert "(19, 'C')" in report.result.steps[1].observation
    assert len(store.runs()) == 1  # a replay writes nothing


def test_changed_tool_result_is_reported_as_divergence(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = record(store)
    calls = []
    changed = weather_tool({"Rome": 24, "Paris": 31}, calls)  # Paris got warmer since the recording
    report = replay_run(run_id, store=store, live_tools=[changed], sandbox=ProcessSandbox)
    assert not report.ok
    first = report.first
    assert (first.step, first.what) == (2, "tool_result")
    assert "19" in first.expected and "31" in first.actual
    observation = next(d for d in report.divergences if d.what == "observation")
    assert observation.step == 2 and "(31, 'C')" in observation.actual
    assert report.divergences[-1].what == "outcome"  # the answer flipped to Paris
    assert report.result.output == "Paris"
    assert calls == ["Rome", "Paris"]


def test_edited_recording_diverges_at_that_step(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = record(store)
    # Rewrite the recorded observation of step 1, as if the kernel used to print differently.
    db = store._db
    row = db.execute("SELECT seq, data FROM events WHERE run_id = ? AND kind = 'observed' AND step = 1",
                     (run_id,)).fetchone()
    data = json.loads(row[1])
    data["observation"] = "Execution logs:\nsomething else"
    db.execute("UPDATE events SET data = ? WHERE run_id = ? AND seq = ?", (json.dumps(data), run_id, row[0]))
    report = CodeAgent(ScriptedModel([]), [weather_tool({"Rome": 24, "Paris": 19}, [])],
                       sandbox=ProcessSandbox, store=store).replay(run_id)
    assert [(d.step, d.what) for d in report.divergences] == [(1, "observation")]
    assert report.first.expected == "Execution logs:\nsomething else"
    assert "'Rome'" in report.first.actual


def test_replay_refuses_tool_calls_the_recording_lacks(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    agent = CodeAgent(ScriptedModel([code("x = temperature('Rome')\nfinal_answer(x['city'])")]),
                      [weather_tool({"Rome": 1, "Oslo": 2}, [])], sandbox=ProcessSandbox, store=store)
    run_id = agent.run("t").run_id
    db = store._db
    row = db.execute("SELECT seq, data FROM events WHERE run_id = ? AND kind = 'model_replied'", (run_id,)).fetchone()
    data = json.loads(row[1])
    data["text"] = code("x = temperature('Oslo')\nfinal_answer(x['city'])")
    db.execute("UPDATE events SET data = ? WHERE run_id = ? AND seq = ?", (json.dumps(data), run_id, row[0]))
    report = replay_run(run_id, store=store, sandbox=ProcessSandbox)
    assert report.first.what == "tool_call"
    assert "temperature(city='Rome')" in report.first.expected
    assert "temperature(city='Oslo')" in report.first.actual
    assert "no recorded result" in report.result.steps[0].observation
    # The replayed run wanted one more step than the recording has: also reported.
    assert report.divergences[-1].what in ("missing_reply", "outcome")
