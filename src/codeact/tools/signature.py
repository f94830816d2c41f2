"""A tool's signature as data, and a call's arguments by parameter name: one codec, one binder.

The kernel builds each tool's stub from `describe_params`, and the run log keeps the same data
so a replay can rebuild the stub (`signature_from_params`) without the tool. Defaults travel
as the prompt shows them (`Tool.shown_defaults`: literals from the source only), because a
computed default may be a secret; annotations travel as text.

`bind_arguments` is how every call's arguments are recorded (and compared when a run is
resumed): bound to the signature's parameter names, so `f(1)` and `f(x=1)` record the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from codeact.tools.tool import Tool

__all__ = [
    "GENERIC_PARAMS",
    "TextValue",
    "bind_arguments",
    "describe_params",
    "signature_from_params",
    "signature_of",
]

GENERIC_PARAMS: tuple[dict[str, Any], ...] = (
    {"name": "args", "kind": "VAR_POSITIONAL"},
    {"name": "kwargs", "kind": "VAR_KEYWORD"},
)
"""The parameters of a tool whose signature cannot be read: anything goes."""


def signature_of(tool: Tool) -> inspect.Signature | None:
    """The tool's signature, or None for a callable `inspect` cannot read (called unchecked)."""
    try:
        return tool.signature
    except (TypeError, ValueError):
        return None


def describe_params(tool: Tool) -> list[dict[str, Any]]:
    """The tool's parameters as JSON data: name, kind, annotation text, and the default as shown."""
    signature = signature_of(tool)
    if signature is None:
        return [dict(p) for p in GENERIC_PARAMS]
    shown: dict[str, str] | None = None
    params = []
    for p in signature.parameters.values():
        param: dict[str, Any] = {"name": p.name, "kind": p.kind.name, "has_default": p.default is not p.empty}
        if p.annotation is not p.empty:
            param["annotation"] = inspect.formatannotation(p.annotation)
        if p.default is not p.empty:
            if shown is None:
                shown = tool.shown_defaults()  # literals from the source only: a computed default may be a secret
            param["default"] = shown.get(p.name, "...")
        params.append(param)
    return params


class TextValue(str):
    """A default or annotation known only as text; shown bare (its repr is the text itself)."""

    def __repr__(self) -> str:
        return str(self)


def signature_from_params(params: Sequence[Mapping[str, Any]]) -> inspect.Signature:
    """The signature `describe_params` described (defaults and annotations as `TextValue`)."""
    rebuilt = []
    for p in params:
        kind = getattr(inspect.Parameter, str(p.get("kind", "POSITIONAL_OR_KEYWORD")))
        default = TextValue(p.get("default", "...")) if p.get("has_default") else inspect.Parameter.empty
        annotation = TextValue(p["annotation"]) if p.get("annotation") else inspect.Parameter.empty
        rebuilt.append(inspect.Parameter(p["name"], kind, default=default, annotation=annotation))
    return inspect.Signature(rebuilt)


def bind_arguments(
    signature: inspect.Signature | None, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, as records keep them (defaults not filled in).

    TypeError when they do not fit `signature`. Without a signature: the keyword arguments,
    plus the positional ones under `*args`.
    """
    if signature is None:
        return {**kwargs, **({"*args": list(args)} if args else {})}
    return dict(signature.bind(*args, **kwargs).arguments)
