"""Repeat guard: notice the model re-running code that already ran, and say so.

At temperature 0 the same error in the prompt tends to bring back the same code, step after
step, until the step limit. The guard compares each failed action with the failed actions
before it (code with comments and blank lines dropped, and the error type and last line) and,
on a repeat, adds a corrective note: what repeated and what to try instead. A changed prompt is
what changes a greedy model's next reply. Code that ran fine and is run again (a small model
printing its result over and over instead of answering) gets a note to answer with it.

With `show_calls`, a repeated failing action is answered differently: in place of the same
traceback, the model is told it ran this code before and is given a block to copy that prints
what the tool calls in it return. Read in the 1.5B's `records` runs: 9 of 27 failed runs ran the
same failing code two to four times, and a note after the traceback changed nothing
(`get_order(...)["lines"][0]["item"]` again and again); shown the new observation in its place,
it wrote `print(get_order(order_id='O-5002'))`.

A reply without code that follows an earlier reply without code is a repeat too: at temperature 0
the 1.5B wrote the same sentence ("The office checksum of 'hello' is 10.") for all six steps of a
run, whatever the hint said. With a temperature set, the reply after such a repeat is sampled.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from codeact.agent.techniques.base import Review
from codeact.runs.result import Step
from codeact.sandbox.base import Execution, ToolCallRecord

__all__ = ["RepeatGuard"]


@dataclass(frozen=True)
class RepeatGuard:
    """Add a corrective note when a failing action repeats an earlier failure; with a temperature,
    also sample the next reply after a repeated failure or a repeated reply without code.

    Args:
        same_error: how many times the same error (type and message) may come back, from any
            code, before the guard speaks; the same failing code is named at its first repeat.
        temperature: also sample the reply after a repeated failure at this temperature (e.g.
            0.7), so a greedy model does not write the same code (or the same words without code)
            again; None (default) only adds the note. It changes nothing for a backend without a temperature setting.
        show_calls: answer the same failing code with a new observation in place of the note: it
            ran before, and here is a block printing the tool calls it made (those of the latest
            step that made any); with no call to show, the note as usual.
    """

    same_error: int = 2
    temperature: float | None = None
    show_calls: bool = False

    def review_reply(self, steps: Sequence[Step]) -> Review | None:
        """After a second reply without code, sample the next one (the no-code hint already says what is wrong)."""
        if self.temperature is None or not steps or not _no_code(steps[-1]):
            return None
        return Review(temperature=self.temperature) if any(_no_code(s) for s in steps[:-1]) else None

    def review(self, steps: Sequence[Step], code: str | None, execution: Execution) -> Review | None:
        if code is None or execution.is_final:
            return None
        key = _code_key(code)
        if execution.error is None:
            if any(s.code is not None and not s.error and _code_key(s.code) == key for s in steps):
                return Review(_SAME_RESULT)
            return None
        error = f"{execution.error.type}: {_last_line(execution.error.message)}"
        if any(s.code is not None and s.error and _code_key(s.code) == key for s in steps):
            look = _print_calls(execution.tool_calls or next((s.tool_calls for s in reversed(steps) if s.tool_calls), ()))
            if self.show_calls and look:
                return Review(observation=_LOOK.format(error=error, code=look), temperature=self.temperature)
            return Review(_SAME_CODE.format(error=error), temperature=self.temperature)
        repeats = sum(1 for s in steps if s.error == execution.error.type and error in s.observation)
        if repeats + 1 >= self.same_error:
            return Review(_SAME_ERROR.format(error=error, times=repeats + 1), temperature=self.temperature)
        return None


_SAME_CODE = ("Note: this is the same code as an earlier step, and it failed the same way ({error}). Do not "
              "run it again. Print the values involved (e.g. a tool's result) to see what they really are, "
              "then write different code.")
_SAME_RESULT = ("Note: you already ran this same code, so its output is what you saw before. If that output "
                "answers the task, call final_answer with the value now; otherwise write the next step.")
_SAME_ERROR = ("Note: the same error has now happened {times} times ({error}). Your approach is not working: "
               "print the inputs you rely on, re-read the tool descriptions, and change the approach.")


_LOOK = ("This is the same code as an earlier step, and it failed the same way ({error}): running it again "
         "changes nothing. Look at the data first: write a ```python block with only\n{code}\nand read what it prints.")


def _print_calls(calls: Sequence[ToolCallRecord], most: int = 3, width: int = 160) -> str:
    """`print(tool(arg=...))` lines for the calls that returned, as code to copy: distinct, short, at most `most`."""
    lines: list[str] = []
    for call in calls:
        line = f"print({call.name}({', '.join(f'{k}={v!r}' for k, v in call.arguments.items())}))"
        if call.error is None and len(line) <= width and line not in lines:
            lines.append(line)
    return "\n".join(lines[:most])


def _no_code(step: Step) -> bool:
    return step.code is None and step.error == "no_code"


def _code_key(code: str) -> str:
    """The code without comments, blank lines or formatting differences (its AST when it parses)."""
    try:
        return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "\n".join(line.strip() for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))


def _last_line(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
