"""codeact-code variants: the code agent with one technique of `agent.techniques` switched on.

Each is a bench config of its own (`codeact bench --agents codeact-code,codeact-code+verify`),
so a technique is measured against the plain agent on the same model, server and tasks before
it may become a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from codeact.bench.model import BenchModel
from codeact.bench.outcome import Outcome, outcome_of
from codeact.bench.tasks import Task
from codeact.tools.tool import Tool

__all__ = ["VARIANTS", "code_variant"]


def code_variant(name: str, *, techniques: tuple[str, ...] = (), prompt: str | None = None,
                 stop_after_block: bool = True, samples: int = 1) -> Callable[[Task, Mapping[str, Tool], BenchModel, int], Outcome]:
    """A runner for the code agent with these techniques ("repeat", "repeat-hot", "repeat-look", "verify",
    "tooluse", "errors", "giveup"), prompt variant, and `samples` > 1 for k-sample voting (tokens and
    time of every sample counted)."""

    def run(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
        from codeact.agent.code_agent import CodeAgent
        from codeact.agent.techniques import (
            DoubtGiveUp,
            ErrorContext,
            RepeatGuard,
            RequireToolUse,
            VerifyBeforeAnswer,
            prompt_variant,
        )
        from codeact.sandbox import resolve_sandbox

        made: dict[str, Callable[[], Any]] = {
            "repeat": RepeatGuard, "verify": VerifyBeforeAnswer, "tooluse": RequireToolUse,
            "repeat-hot": lambda: RepeatGuard(temperature=0.7), "repeat-look": lambda: RepeatGuard(show_calls=True),
            "errors": ErrorContext, "giveup": DoubtGiveUp,
        }
        options: dict[str, Any] = {"techniques": [made[t]() for t in techniques], "stop_after_block": stop_after_block}
        if prompt is not None:
            options["prompt_template"] = prompt_variant(prompt)
        agent = CodeAgent(model.codeact_model(), list(tools.values()), max_steps=max_steps,
                          sandbox=lambda: resolve_sandbox(model.sandbox), store=model.store_option(), **options)
        if samples == 1:
            return outcome_of(agent.run(task.question))
        from codeact.agent.voting import run_voted

        vote = run_voted(agent, task.question, k=samples)
        return outcome_of(dataclasses.replace(vote.result, usage=vote.usage, seconds=vote.seconds))

    run.__name__ = f"run_{name.replace('-', '_').replace('+', '_')}"
    return run


VARIANTS = {
    name: code_variant(name, techniques=techniques, prompt=prompt)
    for name, techniques, prompt in (
        ("codeact-code+repeatguard", ("repeat",), None),
        ("codeact-code+repeatguard+hot", ("repeat-hot",), None),
        ("codeact-code+repeatguard+look", ("repeat-look",), None),
        ("codeact-code+verify", ("verify",), None),
        ("codeact-code+toolsfirst", (), "tools-first"),
        ("codeact-code+toolexample", (), "tool-example"),
        ("codeact-code+compact", (), "tools-compact"),
        ("codeact-code+units", (), "units"),
        ("codeact-code+exampleonly", (), "example-only"),
        ("codeact-code+compact+repeatguard", ("repeat",), "tools-compact"),
        ("codeact-code+tooluse", ("tooluse",), None),
        ("codeact-code+errorcontext", ("errors",), None),
        ("codeact-code+errorcontext+giveup", ("errors", "giveup"), None),
        ("codeact-code+all", ("repeat", "verify"), "tool-example"),
        ("codeact-code+bundle", ("repeat", "tooluse", "verify"), "tools-compact"),
    )
}
"""The variants `codeact bench --agents` knows, besides the plain configs of `bench.agents`."""
# The code agent as it was before `stop_after_block`: a reply runs on past its first block.
VARIANTS["codeact-code+multiblock"] = code_variant("codeact-code+multiblock", stop_after_block=False)
# k-sample voting (`agent.voting.run_voted`): up to 3 whole runs, the 2nd and 3rd at temperature 0.7.
VARIANTS["codeact-code+vote3"] = code_variant("codeact-code+vote3", samples=3)
