"""What a run costs: a per-model price table the user can extend or override.

Prices are US dollars per million tokens, from the providers' public price pages (mid-2025).
They change; pass your own (`prices={"gpt-4o": (2.5, 10.0)}`) rather than trusting these for
billing. Models that run on this machine (`local:...`, `scripted`) cost nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from codeact.errors import ConfigError
from codeact.models.base import Usage

__all__ = ["DEFAULT_PRICES", "Price", "PriceInput", "PriceTable", "load_prices"]


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt (input) and completion (output) tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / 1_000_000


PriceInput = Union[Price, "tuple[float, float]", "list[float]"]

DEFAULT_PRICES: Mapping[str, Price] = {
    # OpenAI
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.0),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o1": Price(15.0, 60.0),
    "o1-mini": Price(1.10, 4.40),
    "o3": Price(2.0, 8.0),
    "o3-pro": Price(20.0, 80.0),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    # Anthropic
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-3-7-sonnet": Price(3.0, 15.0),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-3-5-haiku": Price(0.80, 4.0),
    "claude-3-haiku": Price(0.25, 1.25),
    # Runs on this machine
    "local": Price(0.0, 0.0),
    "scripted": Price(0.0, 0.0),
}


class PriceTable:
    """Look up a model's price by name: exact, then without a `provider:` prefix, then by the
    longest known prefix (so "gpt-4o-mini-2024-07-18" is priced as "gpt-4o-mini").

    Args:
        prices: name -> Price or (input, output) dollars per million tokens; these win over
            the defaults.
        defaults: start from DEFAULT_PRICES.
    """

    def __init__(self, prices: Mapping[str, PriceInput] | None = None, *, defaults: bool = True) -> None:
        table: dict[str, Price] = dict(DEFAULT_PRICES) if defaults else {}
        for name, price in (prices or {}).items():
            table[name] = _price(name, price)
        self._table = table

    def price(self, model: str) -> Price | None:
        for name in _candidates(model):
            if name in self._table:
                return self._table[name]
        for name in _candidates(model):
            best = max((k for k in self._table if name.startswith(k)), key=len, default=None)
            if best is not None:
                return self._table[best]
        return None

    def cost(self, model: str, usage: Usage) -> float | None:
        """Dollars for `usage` on `model`; None when the model has no known price."""
        price = self.price(model)
        return None if price is None else price.cost(usage)

    def require(self, model: str) -> Price:
        """The price, or a ConfigError that says how to supply one (for `max_cost`)."""
        price = self.price(model)
        if price is None:
            raise ConfigError(
                f"max_cost needs a price for model {model!r}, and none is known. Pass "
                f"prices={{{model.partition(':')[2] or model!r}: (input, output)}} in dollars per "
                f"million tokens, or --prices FILE.json on the command line."
            )
        return price


def load_prices(path: str | Path) -> dict[str, Price]:
    """A JSON file `{"model": [input, output], ...}` in dollars per million tokens."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read prices from {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object of model -> [input, output] prices")
    return {str(name): _price(str(name), price) for name, price in data.items()}


def _price(name: str, value: object) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, Mapping) and {"input", "output"} <= value.keys():
        value = (value["input"], value["output"])
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        if min(value) < 0:
            raise ConfigError(f"price for {name!r} is negative: {value!r}")
        return Price(float(value[0]), float(value[1]))
    raise ConfigError(f"price for {name!r} must be (input, output) dollars per million tokens, got {value!r}")


def _candidates(model: str) -> list[str]:
    """The model name as given, then with its provider prefix ("openai:", "anthropic:") removed."""
    names = [model]
    prefix, sep, rest = model.partition(":")
    if sep and rest:
        names.append(rest.rsplit("#", 1)[-1])  # openai-compat:URL#MODEL
        if prefix in ("local", "local-small", "scripted"):
            names.append(prefix)
    return names
