"""Resume: a run killed with SIGKILL (or stopped by a failure) goes on from its last step."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeact import CodeAgent, tool
from codeact.errors import ConfigError
from codeact.models import ScriptedModel
from codeact.runs.events import ModelReplied, RunResumed, RunStarted
from codeact.runs.store import RunStore
from codeact.sandbox.process import ProcessSandbox
from tests.agent import crash_script

SCRIPT = Path(crash_script.__file__)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_sigkill_mid_run_then_resume_reaches_the_answer_without_recalling_tools(tmp_path):
    home, calls, go = tmp_path / "home", tmp_path / "calls.txt", tmp_path / "go"
    env = {**os.environ, "CODEACT_HOME": str(home), "PYTHONPATH": str(SCRIPT.parents[2])}
    child = subprocess.Popen([sys.executable, str(SCRIPT), "run", str(calls), str(go)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        run_id = child.stdout.readline().strip()
        # Step 3's code has called lookup('c') and now waits in the kernel: kill the agent there.
        wait_for(lambda: calls.exists() and calls.read_text().split() == ["a", "b", "c"])
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    store = RunStore(home / "runs.db")
    record = store.get(run_id)
    assert record.status == "running" and record.state == "crashed"
    assert record.steps == 2  # steps 1 and 2 were complete; step 3 was cut short

    go.touch()
    agent = CodeAgent(ScriptedModel(crash_script.replies(str(go))[3:]), [crash_script.make_tool(str(calls))],
                      sandbox=ProcessSandbox, store=store)
    events = list(agent.resume(run_id[:6], stream=True))
    result = events[-1].result
    assert result.status == "success"
    assert result.output == 1 + 20 + 300 + 4000
    assert result.run_id == run_id
    # a, b and c ran before the kill; the resumed run re-executed their code with the logged
    # results, so only d, which no process had reached, was called now.
    assert calls.read_text().split() == ["a", "b", "c", "d"]
    assert [s.index for s in result.steps] == [1, 2, 3, 4]
    assert "c is 300" in result.steps[2].observation

    resumed = events[0]
    assert isinstance(resumed, RunResumed) and resumed.from_step == 3 and resumed.reexecuted == 2
    assert resumed.diverged == ()
    assert not any(isinstance(e, RunStarted) for e in events)
    assert [e.step for e in events if isinstance(e, ModelReplied)] == [3, 4]

    record = store.get(run_id)
    assert (record.status, record.steps, record.output) == ("success", 4, 4321)
    logged = store.raw_events(run_id)
    kinds = [e["kind"] for e in logged]
    assert kinds.count("run_started") == 1
    assert kinds.count("model_replied") == 4  # step 3's reply came from the log, not again
    assert [e["call"]["arguments"]["key"] for e in logged if e["kind"] == "tool_called"] == ["a", "b", "c", "d"]


def code(src):
    return f"Thought: go.\n```python\n{src}\n```"


def counting_tool(log):
    @tool
    def fetch(key: str) -> str:
        """Fetch a value."""
        log.append(key)
        return key.upper()

    return fetch


def test_resume_after_model_failure_keeps_kernel_state_and_history(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    calls = []
    first = CodeAgent(ScriptedModel([code("x = fetch('one')\nprint(x)")]), [counting_tool(calls)],
                      sandbox=ProcessSandbox, store=store)
    failed = first.run("shout")
    assert failed.status == "model_error" and calls == ["one"]

    model = ScriptedModel([code("final_answer(x + fetch('two'))")])
    second = CodeAgent(model, [counting_tool(calls)], sandbox=ProcessSandbox, store=store)
    result = second.resume(failed.run_id)
    assert result.status == "success" and result.output == "ONETWO"
    assert calls == ["one", "two"]
    # The model saw the same history it would have seen: task, step 1, its observation.
    prompt = model.calls[0]
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user"]
    assert "fetch('one')" in prompt[2].content and "ONE" in prompt[3].content
    assert store.get(failed.run_id).status == "success"


def test_resume_with_live_tools_calls_them_again(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    calls = []
    CodeAgent(ScriptedModel([code("x = fetch('one')")]), [counting_tool(calls)], sandbox=ProcessSandbox,
              store=store).run("t")
    run_id = store.runs(limit=1)[0].id
    agent = CodeAgent(ScriptedModel([code("final_answer(x)")]), [counting_tool(calls)], sandbox=ProcessSandbox,
                      store=store)
    assert agent.resume(run_id, live_tools=True).output == "ONE"
    assert calls == ["one", "one"]


def test_resume_refuses_finished_runs_and_other_agents_tools(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    done = CodeAgent(ScriptedModel([code("final_answer(1)")]), sandbox=ProcessSandbox, store=store).run("t")
    with pytest.raises(ConfigError, match="already finished"):
        CodeAgent(ScriptedModel([]), sandbox=ProcessSandbox, store=store).resume(done.run_id)
    failed = CodeAgent(ScriptedModel([]), [counting_tool([])], sandbox=ProcessSandbox, store=store).run("t")
    with pytest.raises(ConfigError, match="fetch"):
        CodeAgent(ScriptedModel([]), sandbox=ProcessSandbox, store=store).resume(failed.run_id)
    with pytest.raises(ConfigError, match="no run"):
        CodeAgent(ScriptedModel([]), sandbox=ProcessSandbox, store=store).resume("nonexistent")


def test_a_run_can_be_resumed_twice(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    calls = []
    run = CodeAgent(ScriptedModel([code("a = fetch('a')")]), [counting_tool(calls)], sandbox=ProcessSandbox,
                    store=store).run("t")
    again = CodeAgent(ScriptedModel([code("b = fetch('b')")]), [counting_tool(calls)], sandbox=ProcessSandbox,
                      store=store).resume(run.run_id)
    assert again.status == "model_error"
    final = CodeAgent(ScriptedModel([code("final_answer(a + b)")]), [counting_tool(calls)],
                      sandbox=ProcessSandbox, store=store).resume(run.run_id)
    assert final.output == "AB" and calls == ["a", "b"]
    assert [s.index for s in final.steps] == [1, 2, 3]


def test_tool_calling_agent_resumes_with_the_same_tool_messages(tmp_path, monkeypatch):
    from codeact.agent.tool_calling_agent import ToolCallingAgent
    from codeact.models.base import ModelReply, ToolCall

    monkeypatch.setenv("CODEACT_HOME", str(tmp_path))  # the agent logs to the default store
    calls = []
    step1 = ModelReply("", tool_calls=(ToolCall("c1", "fetch", {"key": "one"}),))
    first = ToolCallingAgent(ScriptedModel([step1]), [counting_tool(calls)])
    failed = first.run("t")
    assert failed.status == "model_error" and calls == ["one"]

    model = ScriptedModel([ModelReply("", tool_calls=(ToolCall("c2", "final_answer", {"answer": "done"}),))])
    second = ToolCallingAgent(model, [counting_tool(calls)])
    second.stateful = False  # its actions leave no state: nothing to re-run (ToolCallingAgent's own default soon)
    result = second.resume(failed.run_id)
    assert (result.status, result.output) == ("success", "done")
    assert calls == ["one"]
    tool_message = model.calls[0][-1]
    assert (tool_message.role, tool_message.tool_call_id, tool_message.content) == ("tool", "c1", "ONE")


def test_a_caller_that_stops_reading_leaves_a_resumable_run(tmp_path):
    from codeact.runs.events import StepFinished

    store = RunStore(tmp_path / "runs.db")
    calls = []
    agent = CodeAgent(ScriptedModel([code("a = fetch('a')"), code("final_answer(a)")]), [counting_tool(calls)],
                      sandbox=ProcessSandbox, store=store)
    stream = agent.run("t", stream=True)
    for event in stream:
        if isinstance(event, StepFinished):
            break
    stream.close()
    record = store.runs()[0]
    assert (record.status, record.steps) == ("interrupted", 1)
    assert "stopped reading" in record.error
    result = CodeAgent(ScriptedModel([code("final_answer(a + '!')")]), [counting_tool(calls)],
                       sandbox=ProcessSandbox, store=store).resume(record.id)
    assert result.output == "A!" and calls == ["a"]
