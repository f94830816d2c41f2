"""OpenTelemetry spans with OpenInference attributes, checked with the in-memory exporter."""

import json

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("openinference.semconv.trace")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.runs.telemetry import Telemetry
from codeact.sandbox.process import ProcessSandbox


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


@tool
def lookup(city: str) -> dict:
    """Population of a city."""
    if city == "Atlantis":
        raise LookupError("no such city")
    return {"city": city, "population": 2_873_000}


def code(src):
    return f"Thought: go.\n```python\n{src}\n```"


def tree(spans):
    by_id = {s.context.span_id: s for s in spans}
    children = {}
    for s in spans:
        parent = s.parent.span_id if s.parent else None
        children.setdefault(parent, []).append(s)

    def shape(span):
        kids = sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time)
        return (span.name, span.attributes["openinference.span.kind"], [shape(k) for k in kids])

    roots = [s for s in spans if s.parent is None or s.parent.span_id not in by_id]
    return [shape(r) for r in roots]


def test_span_tree_of_a_run(exporter):
    exporter, provider = exporter
    model = ScriptedModel([
        code("info = lookup('Rome')\ntry:\n    lookup('Atlantis')\nexcept LookupError:\n    pass\nprint(info)"),
        code("final_answer(info['population'])"),
    ])
    agent = CodeAgent(model, [lookup], sandbox=ProcessSandbox, telemetry=Telemetry(provider))
    result = agent.run("population of Rome")
    assert result.output == 2_873_000
    spans = exporter.get_finished_spans()
    assert tree(spans) == [
        ("run", "AGENT", [
            ("step 1", "CHAIN", [
                ("model", "LLM", []),
                ("python", "TOOL", [("lookup", "TOOL", []), ("lookup", "TOOL", [])]),
            ]),
            ("step 2", "CHAIN", [("model", "LLM", []), ("python", "TOOL", [])]),
        ]),
    ]
    named = {}
    for s in spans:
        named.setdefault(s.name, []).append(s)
    run = named["run"][0]
    assert run.attributes["input.value"] == "population of Rome"
    assert run.attributes["agent.name"] == "code"
    assert run.attributes["session.id"] == result.run_id
    assert json.loads(run.attributes["output.value"]) == 2_873_000
    assert run.attributes["llm.token_count.total"] == result.usage.total_tokens
    llm = named["model"][0]
    assert llm.attributes["llm.model_name"] == "scripted"
    assert llm.attributes["llm.input_messages.0.message.role"] == "system"
    assert llm.attributes["llm.input_messages.1.message.content"].startswith("Task: population of Rome")
    assert "lookup('Rome')" in llm.attributes["llm.output_messages.0.message.content"]
    assert llm.attributes["llm.token_count.prompt"] == result.steps[0].usage.prompt_tokens
    python = named["python"][0]
    assert "lookup('Rome')" in python.attributes["input.value"]
    assert "2873000" in python.attributes["output.value"]
    ok, failed = sorted(named["lookup"], key=lambda s: s.start_time)
    assert json.loads(ok.attributes["tool.parameters"]) == {"city": "Rome"}
    assert json.loads(ok.attributes["output.value"])["population"] == 2_873_000
    assert failed.status.status_code is StatusCode.ERROR and "no such city" in failed.status.description
    assert all(s.end_time >= s.start_time for s in spans)


def test_failed_run_marks_the_run_span(exporter):
    exporter, provider = exporter
    agent = CodeAgent(ScriptedModel([code("x = 1")]), sandbox=ProcessSandbox, telemetry=provider)
    assert agent.run("t").status == "model_error"
    run = next(s for s in exporter.get_finished_spans() if s.name == "run")
    assert run.status.status_code is StatusCode.ERROR and "model_error" in run.status.description
    assert run.attributes["codeact.status"] == "model_error"


def test_telemetry_is_off_by_default():
    agent = CodeAgent(ScriptedModel([code("final_answer(1)")]), sandbox=ProcessSandbox)
    assert agent._telemetry is None


def test_a_resumed_run_traces_only_its_new_steps(exporter, tmp_path):
    from codeact.runs.store import RunStore

    exporter, provider = exporter
    store = RunStore(tmp_path / "runs.db")
    failed = CodeAgent(ScriptedModel([code("x = 1")]), sandbox=ProcessSandbox, store=store).run("t")
    agent = CodeAgent(ScriptedModel([code("final_answer(x)")]), sandbox=ProcessSandbox, store=store,
                      telemetry=provider)
    assert agent.resume(failed.run_id).output == 1
    assert tree(exporter.get_finished_spans()) == [
        ("run", "AGENT", [("step 2", "CHAIN", [("model", "LLM", []), ("python", "TOOL", [])])]),
    ]
    run = next(s for s in exporter.get_finished_spans() if s.name == "run")
    assert json.loads(run.attributes["metadata"])["resumed_from_step"] == 2
