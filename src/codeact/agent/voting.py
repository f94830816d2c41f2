"""k-sample voting: solve a task up to k times and answer with the answer most runs agree on.

The first sample is the agent as it is (greedy at temperature 0); the others sample the model at
`temperature`, so they can take other paths. Each sample is a whole run with a fresh kernel of
its own, which is what a fork of the starting kernel gives: no sample sees another's variables.
Sampling stops as soon as one answer has a majority of k, so when the first two agree a third is
never paid for. Only successful runs vote; a tie goes to the earliest sample.

Every sample calls the tools again, so vote only with tools that merely read.
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codeact.errors import ConfigError
from codeact.models.messages import Usage
from codeact.runs.result import RunResult

if TYPE_CHECKING:
    from codeact.agent.agent import Agent

__all__ = ["Vote", "answer_key", "run_voted"]


@dataclass(frozen=True)
class Vote:
    """What k-sample voting decided.

    Attributes:
        result: the earliest run whose answer won (the greedy run when nothing succeeded).
        answers: each sample's output, in order (None for a run that did not succeed).
        votes: how many samples gave the winning answer.
        usage: tokens of all samples together.
        seconds: wall time of all samples together.
    """

    result: RunResult
    answers: tuple[Any, ...]
    votes: int
    usage: Usage
    seconds: float


def answer_key(answer: Any) -> str:
    """What makes two answers the same vote: 38 and 38.0 agree, so do " Oslo" and "oslo"."""
    if isinstance(answer, bool):
        return repr(answer)
    if isinstance(answer, (int, float)) and math.isfinite(answer):
        return repr(round(float(answer), 6))
    if isinstance(answer, str):
        text = unicodedata.normalize("NFKC", answer).casefold().strip().rstrip(".")
        try:
            return answer_key(float(text))
        except ValueError:
            return " ".join(text.split())
    return repr(answer)


def run_voted(agent: Agent, task: str, *, k: int = 3, temperature: float = 0.7) -> Vote:
    """Run `agent` on `task` up to `k` times and vote on the final answers.

    Args:
        agent: an agent whose sandbox is a factory (the default), so every sample gets a fresh
            kernel; an agent holding one Sandbox instance is refused, since its samples would
            share state.
        k: most samples to take (>= 1); 1 is a plain run.
        temperature: the sampling temperature of every sample after the first.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    if getattr(agent, "owns_sandbox", True) is False:  # a code agent sharing one kernel
        raise ConfigError("voting needs a fresh kernel per sample: pass the agent a sandbox factory, not an instance")
    greedy_model = agent.model
    results: list[RunResult] = []
    tally: Counter[str] = Counter()
    started = time.monotonic()
    try:
        for i in range(k):
            agent.model = greedy_model if i == 0 else greedy_model.at_temperature(temperature)
            result = agent.run(task)
            results.append(result)
            if result.status == "success":
                tally[answer_key(result.output)] += 1
            if tally and tally.most_common(1)[0][1] * 2 > k:
                break
    finally:
        agent.model = greedy_model
    usage = sum((r.usage for r in results), Usage())
    if not tally:
        return Vote(results[0], _answers(results), 0, usage, time.monotonic() - started)
    top = max(tally.values())
    winner = next(r for r in results if r.status == "success" and tally[answer_key(r.output)] == top)
    return Vote(winner, _answers(results), top, usage, time.monotonic() - started)


def _answers(results: list[RunResult]) -> tuple[Any, ...]:
    return tuple(r.output if r.status == "success" else None for r in results)
