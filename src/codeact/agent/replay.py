"""Replay: re-run a recorded run without its model, and say where it stops matching.

`agent.replay(run_id)` serves the recorded model replies and tool results, runs the code live,
and compares each observation with the recorded one. Record once with a real model, then
replay in CI: a change to the kernel, the prompt format's observation text or a tool's result
(replayed with `live_tools=True`) shows up as the first `Divergence`.

`replay_run` (in `code_agent`) needs nothing but the log: the tools are rebuilt from the
signatures kept with the run (`recorded_tools`), and their results come from the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codeact.agent.feed import Divergence
from codeact.agent.loop import Budget
from codeact.errors import ConfigError, ModelError
from codeact.models.base import Message, Model, ModelReply, ToolSpec
from codeact.runs.pricing import PriceTable
from codeact.runs.recording import Recording
from codeact.runs.result import RunResult
from codeact.tools.signature import GENERIC_PARAMS, describe_params, signature_from_params, signature_of
from codeact.tools.tool import Tool

__all__ = [
    "NoModel",
    "RecordedTool",
    "ReplayReport",
    "budget_from_meta",
    "describe_tools",
    "recorded_tools",
]


@dataclass(frozen=True)
class ReplayReport:
    """What a replay found.

    Args:
        run_id: the recorded run.
        result: how the replayed run ended.
        divergences: every difference from the recording, in order; the first is the one to
            look at, the rest usually follow from it.
    """

    run_id: str
    result: RunResult
    divergences: tuple[Divergence, ...]

    @property
    def ok(self) -> bool:
        return not self.divergences

    @property
    def first(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None


class NoModel(Model):
    """The model of a replay: every reply comes from the log, so a call is a bug."""

    name = "replay"

    def complete(self, messages: Sequence[Message], *, stop: Sequence[str] | None = None,
                 tools: Sequence[ToolSpec] | None = None) -> ModelReply:
        raise ModelError("replay has no model: the recording has no reply for this step")


class RecordedTool(Tool):
    """A tool known only by the signature the log kept; replay serves its results."""

    def __init__(self, name: str, spec: Mapping[str, Any]) -> None:
        self.name = name
        self.description = str(spec.get("doc") or f"{name} (recorded)").split("\n", 1)[0]
        signature = signature_from_params(spec.get("params", ()))

        def recorded(*args: Any, **kwargs: Any) -> Any:
            raise ConfigError(f"`{name}` exists only in the log; replay serves its recorded results")

        recorded.__signature__ = signature  # type: ignore[attr-defined]
        recorded.__name__ = name
        recorded.__doc__ = str(spec.get("doc") or "")
        self._fn = recorded

    @property
    def function(self) -> Any:
        return self._fn

    def validate(self) -> Tool:
        return self  # the recorded tool was validated when it was recorded


def describe_tools(tools: Mapping[str, Tool]) -> dict[str, dict[str, Any]]:
    """What replay needs to rebuild a tool's stub: its parameters (the tools' one signature
    codec) and docstring."""
    return {name: {"params": describe_params(t), "doc": t.docstring() if signature_of(t) is not None else ""}
            for name, t in tools.items()}


def recorded_tools(meta: Mapping[str, Any], recording: Recording) -> list[Tool]:
    """Stand-ins for the run's tools, from the signatures in its metadata (or its tool names)."""
    found = meta.get("tools")
    specs: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    generic = {"params": GENERIC_PARAMS}
    return [RecordedTool(name, specs.get(name, generic)) for name in recording.started.tools]


def budget_from_meta(meta: Mapping[str, Any], recording: Recording, prices: PriceTable) -> Budget:
    """The recorded run's step, token and cost limits (not its time limit: replay is faster)."""
    found = meta.get("budget")
    limits: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    max_cost = limits.get("max_cost")
    price = prices.price(recording.started.model) if max_cost is not None else None
    return Budget(
        max_steps=int(limits.get("max_steps") or recording.started.max_steps),
        max_tokens=limits.get("max_tokens"),
        max_cost=max_cost if price is not None else None,
        cost_of=price.cost if price is not None else None,
    )
