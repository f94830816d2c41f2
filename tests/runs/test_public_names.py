"""The record's public names are a promise: this pins them (as httpx pins its own)."""

import dataclasses
import inspect

import codeact.events
import codeact.runs
import codeact.runs.events


def test_runs_namespace_is_the_record():
    assert sorted(codeact.runs.__all__) == sorted([
        "LogLimits", "Price", "PriceTable", "Recording", "Redactor", "RunRecord", "RunStore", "Telemetry",
        "Truncated", "load_prices",
    ])
    for name in codeact.runs.__all__:
        assert hasattr(codeact.runs, name)


def test_events_namespace():
    assert sorted(codeact.events.__all__) == sorted([
        "ActionParsed", "ApprovalDecided", "ApprovalRequested", "BudgetHit", "Event", "FilesChanged", "ImagesShown", "LogNote", "ModelDelta", "ModelReplied", "ModelRequested", "Observed", "PlanUpdated",
        "RunFinished", "RunResult", "RunResumed", "RunStarted", "RunStatus", "Step", "StepFinished", "ToolCalled",
        "event_to_dict",
    ])
    for name in codeact.events.__all__:
        assert hasattr(codeact.events, name)


def test_every_event_class_is_public():
    """A new event kind that `stream=True` users could meet must be importable from codeact.events."""
    kinds = [obj for obj in vars(codeact.runs.events).values()
             if inspect.isclass(obj) and issubclass(obj, codeact.runs.events.Event) and dataclasses.is_dataclass(obj)]
    assert len(kinds) >= 12
    for kind in kinds:
        assert getattr(codeact.events, kind.__name__) is kind
