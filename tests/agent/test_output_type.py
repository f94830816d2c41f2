"""Typed answers (`output_type=`): told to the model, validated on the host, typed in the result.

Code agents run in the default (isolated) sandbox: the answer crosses the real kernel boundary.
"""

from __future__ import annotations

import dataclasses
import json

import pydantic
import pytest
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from codeact import CodeAgent
from codeact.agent.output_type import AnswerType
from codeact.agent.tool_calling_agent import ToolCallingAgent
from codeact.errors import ConfigError
from codeact.models import ModelReply, ScriptedModel, ToolCall
from codeact.runs.store import RunStore
from tests._isolation import require_sandbox


class City(pydantic.BaseModel):
    name: str
    population: int


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Pair(TypedDict):
    left: str
    right: int


def code(src: str) -> str:
    return f"Thought: do it.\n```python\n{src}\n```"


@require_sandbox()
def test_pydantic_answer_is_validated_rejected_then_typed(tmp_path):
    model = ScriptedModel([
        code("final_answer({'name': 'Oslo', 'population': 'many'})"),
        code("final_answer({'name': 'Oslo', 'population': 709000})"),
    ])
    store = RunStore(tmp_path / "runs.db")
    agent = CodeAgent(model, output_type=City, store=store)
    result = agent.run("the biggest city of Norway")
    assert result.status == "success"
    assert result.output == City(name="Oslo", population=709000)
    assert isinstance(result.output, City)
    system = model.calls[0][0].content
    assert '"population":{"type":"integer"}' in system and "JSON schema" in system
    rejected = model.calls[1][-1].content
    assert "does not match the output type" in rejected and "population" in rejected
    assert not result.steps[0].is_final and result.steps[1].is_final
    # the log keeps the typed answer's fields
    finished = [e for e in store.events(result.run_id) if e.kind == "run_finished"][-1]
    assert "709000" in json.dumps(finished.output, default=str)
    store.close()


@require_sandbox()
def test_dataclass_and_typeddict_answers():
    point = CodeAgent(ScriptedModel([code("final_answer({'x': 1, 'y': 2.5})")]), output_type=Point,
                      store=False).run("p")
    assert point.output == Point(1.0, 2.5)
    pair = CodeAgent(ScriptedModel([code("final_answer(dict(left='a', right=3))")]), output_type=Pair,
                     store=False).run("p")
    assert pair.output == {"left": "a", "right": 3}


@require_sandbox()
def test_json_schema_answer_is_the_validated_dict():
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["tags"]}
    model = ScriptedModel([code("final_answer({'tags': [1]})"), code("final_answer({'tags': ['a', 'b']})")])
    result = CodeAgent(model, output_type=schema, store=False).run("tags")
    assert result.output == {"tags": ["a", "b"]}
    assert "tags" in model.calls[1][-1].content and "rejected" in model.calls[1][-1].content


def test_tool_calling_agent_gets_the_schema_in_its_final_answer_spec():
    calls = [ToolCall("c1", "final_answer", {"answer": {"name": "Rome"}}),
             ToolCall("c2", "final_answer", {"answer": '{"name": "Rome", "population": 2800000}'})]
    model = ScriptedModel([ModelReply("", tool_calls=(calls[0],)), ModelReply("", tool_calls=(calls[1],))])
    agent = ToolCallingAgent(model, output_type=City, store=False)
    spec = next(s for s in agent._format().tool_specs if s.name == "final_answer")
    assert spec.parameters["properties"]["answer"]["properties"]["population"] == {"type": "integer"}
    result = agent.run("capital of Italy")
    assert result.output == City(name="Rome", population=2800000)
    assert any("population" in (m.content or "") and "match" in (m.content or "") for m in model.calls[1])


def test_unusable_output_type_is_a_config_error():
    with pytest.raises(ConfigError):
        CodeAgent(ScriptedModel([]), output_type=object(), store=False)


def test_subset_validator_without_jsonschema(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "jsonschema", None)  # as if it were not installed
    answer = AnswerType({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    assert answer.parse('{"n": 3}') == {"n": 3}
    with pytest.raises(ValueError, match="required"):
        answer.parse({})
    with pytest.raises(ValueError, match="n: bool"):
        answer.parse({"n": True})
