"""Async: awaited model clients, async tools on the caller's loop, many runs in one loop."""

import asyncio
import time

from codeact import CodeAgent, tool
from codeact.errors import ModelError
from codeact.models.base import Model, ModelReply, Usage
from codeact.runs.events import ModelReplied, RunFinished
from codeact.runs.store import RunStore
from codeact.sandbox.process import ProcessSandbox


def code(src):
    return f"Thought: go.\n```python\n{src}\n```"


class AsyncOnlyModel(Model):
    """An async client: `complete` is never used by the async driver."""

    name = "async-scripted"

    def __init__(self, replies, delay):
        self.replies = list(replies)
        self.delay = delay

    def complete(self, messages, *, stop=None, tools=None):
        raise AssertionError("the async driver must await acomplete")

    async def acomplete(self, messages, *, stop=None, tools=None):
        await asyncio.sleep(self.delay)
        if not self.replies:
            raise ModelError("no more replies")
        return ModelReply(self.replies.pop(0), Usage(10, 5))


def test_many_runs_in_one_event_loop_with_async_model_and_async_tools(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    loops_seen = []

    @tool
    async def fetch(key: str) -> str:
        """Fetch a value over the network."""
        loops_seen.append(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        return key * 2

    def agent(i):
        model = AsyncOnlyModel([code(f"v = fetch('{i}')\nprint(v)"), code("final_answer(v)")], delay=0.25)
        return CodeAgent(model, [fetch], sandbox=ProcessSandbox, store=store)

    async def main():
        agents = [agent(i) for i in range(8)]
        started = time.monotonic()
        results = await asyncio.gather(*(a.arun(f"task {i}") for i, a in enumerate(agents)))
        return results, time.monotonic() - started, asyncio.get_running_loop()

    results, seconds, loop = asyncio.run(main())
    assert [r.output for r in results] == [str(i) * 2 for i in range(8)]
    assert all(r.status == "success" for r in results)
    # Async tools ran on the caller's loop, not in a private one.
    assert len(loops_seen) == 8 and all(seen is loop for seen in loops_seen)
    # 8 runs x 2 model calls x 0.25 s = 4 s one after another; together they overlap.
    assert seconds < 3.0, seconds
    assert {r.run_id for r in results} == {r.id for r in store.runs()}


def test_astream_yields_events_and_logs_them(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    model = AsyncOnlyModel([code("final_answer(6 * 7)")], delay=0)

    async def collect():
        return [e async for e in CodeAgent(model, sandbox=ProcessSandbox, store=store).astream("t")]

    events = asyncio.run(collect())
    assert isinstance(events[-1], RunFinished) and events[-1].output == 42
    assert any(isinstance(e, ModelReplied) for e in events)
    assert store.get(events[-1].result.run_id).status == "success"


def test_aresume_continues_a_failed_run(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    first = CodeAgent(AsyncOnlyModel([code("x = 20")], delay=0), sandbox=ProcessSandbox, store=store)
    failed = asyncio.run(first.arun("t"))
    assert failed.status == "model_error"
    second = CodeAgent(AsyncOnlyModel([code("final_answer(x + 1)")], delay=0), sandbox=ProcessSandbox, store=store)
    result = asyncio.run(second.aresume(failed.run_id))
    assert (result.status, result.output, result.run_id) == ("success", 21, failed.run_id)


def test_one_agent_refuses_two_concurrent_runs():
    model = AsyncOnlyModel([code("final_answer(1)"), code("final_answer(2)")], delay=0.2)
    agent = CodeAgent(model, sandbox=ProcessSandbox, store=False)

    async def main():
        return await asyncio.gather(agent.arun("a"), agent.arun("b"), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert sum(1 for o in outcomes if isinstance(o, Exception) and "already running" in str(o)) == 1
