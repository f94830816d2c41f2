"""Error context: when a step fails or shows nothing, add what the host knows and the model did not see.

Read in the 1.5B's failed runs on `records` and `travel`:
- It indexes a tool's result by a key it guessed (`order["weight_kg"]`, `line["quantity"]` on
  an order id string) in the same step that calls the tool, never printing the result. The
  traceback says `KeyError: 'weight_kg'` and nothing of what the result holds, so the next step
  guesses again or "handles" the missing key with a made-up fallback. The host saw every call
  and its result; the note lists them.
- It imports its tools from a module it makes up (`from travel_desk import convert_currency`,
  17 times in one run of 16 tasks) and then tries to pip-install it. The note says the
  functions are already defined (the code agent now guards `from M import tool` itself, see
  `agent.own_imports`; the note still serves `import travel_desk`).
- It calls a tool inside an `if` that never matches and prints nothing: "The code ran without
  output", and the next step runs the same code again. The note shows what the tools returned.
Calls that failed are left out of the list: the traceback already says how.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from codeact.agent.observation import list_tool_results
from codeact.agent.techniques.base import Review
from codeact.runs.result import Step
from codeact.sandbox.base import Execution

__all__ = ["ErrorContext"]


@dataclass(frozen=True)
class ErrorContext:
    """After a step that failed or showed nothing, note what each tool call in it returned; after a
    failed import or an undefined name, that the functions are defined already or that the name
    was never set.

    Args:
        most: how many tool calls to list; the rest are counted.
        chars: how much of each result to show.
    """

    most: int = 6
    chars: int = 300

    def review(self, steps: Sequence[Step], code: str | None, execution: Execution) -> Review | None:
        error = execution.error
        if execution.is_final or (error is None and _showed_something(execution)):
            return None
        notes = []
        missing = _missing_name(error.type, error.message, code or "") if error else ""
        if missing:
            notes.append(missing)
        returned = [call for call in execution.tool_calls if call.error is None]  # a failed call is in the traceback
        if returned:
            heading = _FAILED if error else _SILENT
            notes.append(heading + list_tool_results(returned, most=self.most, chars=self.chars))
        return Review(note="\n".join(notes)) if notes else None


_FAILED = "Note: the step failed. What your tools returned in it (use these real keys and types):\n"
_SILENT = "Note: the step printed nothing. What your tools returned in it:\n"
_NO_IMPORT = "Your functions need no import: they are already defined in this session; call them by name."


def _showed_something(execution: Execution) -> bool:
    return bool(execution.stdout.strip() or execution.stderr.strip() or execution.result is not None or execution.images)


def _missing_name(kind: str, message: str, code: str) -> str:
    """A note on a name or module that is not there: a made-up tool, or a variable never set."""
    if kind in ("ModuleNotFoundError", "ImportError"):
        return f"Note: that module is not available here. {_NO_IMPORT}"
    found = re.search(r"name '(\w+)' is not defined", message) if kind == "NameError" else None
    if found is None:
        return ""
    name = found.group(1)
    if re.search(rf"\b{re.escape(name)}\s*\(", code):
        return f"Note: {name}() is not one of your functions. Call only those listed in your instructions. {_NO_IMPORT}"
    return (f"Note: {name} was never set in this session. A failed step stops at its error: names it would "
            "have set after that line do not exist; set them again.")
