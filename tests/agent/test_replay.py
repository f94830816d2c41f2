"""Replay: recorded model replies and tool results, live code, divergences reported."""

import json

from codeact import CodeAgent, tool
from codeact.agent.code_agent import replay_run
from codeact.models import ScriptedModel
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


def host_only_tools():
    """Tools whose results are of classes no other process (nor the sandbox) can rebuild."""
    import dataclasses

    class Client:
        def __repr__(self):
            return "<Client for api.example.com>"

    @dataclasses.dataclass
    class Page:
        items: list
        cursor: str = "next-2"
        client: object = dataclasses.field(default=None, repr=False)

    @tool
    def connect() -> object:
        """A client object."""
        return Client()

    @tool
    def fetch(n: int) -> object:
        """One page of items."""
        return Page(list(range(n)), client=Client())

    return [connect, fetch]


def test_replay_from_the_log_alone_serves_results_the_sandbox_could_not_rebuild_as_it_got_them(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    show = "print(type(x).__name__, x)\nprint(getattr(x, 'items', None), getattr(x, 'cursor', None))"
    replies = [code(f"x = connect()\n{show}"), code(f"x = fetch(3)\n{show}"), code("final_answer('ok')")]
    result = CodeAgent(ScriptedModel(replies), host_only_tools(), sandbox=ProcessSandbox, store=store).run("t")
    assert result.status == "success"
    assert "api.example.com" not in result.steps[0].observation  # only the type went in
    assert "[0, 1, 2] next-2" in result.steps[1].observation  # a record's shown fields went in
    report = replay_run(result.run_id, store=store, sandbox=ProcessSandbox)  # no --tool
    assert report.ok, report.divergences
    assert [s.observation for s in report.result.steps] == [s.observation for s in result.steps]


def test_replay_matches_a_call_whose_large_argument_was_kept_as_a_preview(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    calls = []

    @tool
    def save(text: str) -> int:
        """Save a text; its length."""
        calls.append(len(text))
        return len(text)

    replies = [code("n = save('y' * 300_000)\nprint(n)"), code("final_answer(n)")]
    result = CodeAgent(ScriptedModel(replies), [save], sandbox=ProcessSandbox, store=store).run("t")
    assert result.output == 300_000
    report = replay_run(result.run_id, store=store, sandbox=ProcessSandbox)
    assert report.ok, report.divergences
    assert report.result.output == 300_000 and calls == [300_000]
