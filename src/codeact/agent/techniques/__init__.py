"""Opt-in habits the loop can add to an agent: each one reads a finished action and may add a note.

A technique is a `StepReview`: given the steps so far, the action just run and what it produced,
it returns a `Review` (a note for the model, a reason to send a final answer back, a temperature
for the next reply) or None.
Techniques see records only, hold no state of their own and do no I/O, so one instance serves
every run, and replay and resume see the same notes. The loop calls `review_step` once per
executed action (`LoopConfig.techniques`); the prompt variants live in `prompts`.

Each technique is measured by `codeact bench` variants (`codeact-code+repeatguard`, ...) before
it becomes a default; see benchmarks/results/.
"""

from __future__ import annotations

from codeact.agent.techniques.base import Review, StepReview, review_step
from codeact.agent.techniques.error_context import ErrorContext
from codeact.agent.techniques.give_up import DoubtGiveUp
from codeact.agent.techniques.prompts import PROMPT_VARIANTS, prompt_variant
from codeact.agent.techniques.repeat_guard import RepeatGuard
from codeact.agent.techniques.tool_use import RequireToolUse
from codeact.agent.techniques.verify_first import VerifyBeforeAnswer

__all__ = ["DoubtGiveUp", "ErrorContext", "PROMPT_VARIANTS", "RepeatGuard", "RequireToolUse", "Review", "StepReview", "VerifyBeforeAnswer", "prompt_variant",
           "review_step"]
