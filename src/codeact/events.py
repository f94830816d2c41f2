"""The events of a run, for callers that match on them.

`agent.run(task, stream=True)`, `agent.astream(task)` and `event_callbacks` hand out these
records as the run happens; the run log stores the same ones::

    from codeact.events import ModelDelta, RunFinished

    for event in agent.run(task, stream=True):
        if isinstance(event, ModelDelta):
            print(event.text, end="")
        elif isinstance(event, RunFinished):
            print(event.status, event.output)
"""

from codeact.runs.events import (
    ActionParsed,
    ApprovalDecided,
    ApprovalRequested,
    BudgetHit,
    Event,
    FilesChanged,
    ImagesShown,
    LogNote,
    ModelDelta,
    ModelReplied,
    ModelRequested,
    Observed,
    PlanUpdated,
    RunFinished,
    RunResumed,
    RunStarted,
    StepFinished,
    ToolCalled,
    event_to_dict,
)
from codeact.runs.result import RunResult, RunStatus, Step

__all__ = [
    "ActionParsed",
    "ApprovalDecided",
    "ApprovalRequested",
    "BudgetHit",
    "Event",
    "FilesChanged",
    "ImagesShown",
    "LogNote",
    "ModelDelta",
    "ModelReplied",
    "ModelRequested",
    "Observed",
    "PlanUpdated",
    "RunFinished",
    "RunResult",
    "RunResumed",
    "RunStarted",
    "RunStatus",
    "Step",
    "StepFinished",
    "ToolCalled",
    "event_to_dict",
]
