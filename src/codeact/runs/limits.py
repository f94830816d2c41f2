"""How much of a run the log keeps: bounded whatever the sandbox, a tool or the model hands it.

Model code decides what its tools are called with and what it prints, so without caps one step
could make the log grow by gigabytes (ten 50 MB arguments), or nest a value so deeply that
encoding it overflows the stack. `LogLimits` caps each stored value, each text, each step and each
run; `Bounded` walks a value once, keeping what fits and putting a `truncated` tag in place of the
rest, so a reader always learns what was cut and how large it was.

Strings are cut in the middle (head and tail kept). A `clean` function (the redactor) is applied
to the kept parts *with a margin* before the cut, so a secret that straddles the cut is replaced
whole rather than left half visible.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["TAG", "Bounded", "LogLimits", "Truncated", "cut_text"]

TAG = "$codeact"
_MARGIN = 512  # characters around a cut that the redactor sees, so a secret there is caught whole
_INT_BITS = 4_096  # ints beyond this many bits are kept as a preview (json cannot write > 4,300 digits)


@dataclass(frozen=True)
class LogLimits:
    """Caps on what the run log keeps of a run.

    Args:
        depth: nesting levels kept in a stored value; deeper parts become a placeholder.
        value_chars: characters kept of one stored value (a tool call's arguments, its result,
            a final answer), counting every element; beyond it a preview is kept.
        text_chars: characters kept of one text (output, observation, model reply, message);
            beyond it the head and tail are kept with a marker.
        step_bytes: bytes one step may add to the log; past it the step's further tool calls
            are not stored (a `log_note` event counts them) and other events keep previews of
            `tight_chars`.
        run_bytes: bytes one run may add to the log; past it the rest of the run is stored as
            past `step_bytes`.
        tight_chars: what a value or text keeps once a step or the run is past its cap.
    """

    depth: int = 32
    value_chars: int = 100_000
    text_chars: int = 100_000
    step_bytes: int = 4 * 1024 * 1024
    run_bytes: int = 32 * 1024 * 1024
    tight_chars: int = 2_000

    def tight(self) -> LogLimits:
        """The limits for events past a step's or the run's cap."""
        return replace(self, value_chars=min(self.value_chars, self.tight_chars),
                       text_chars=min(self.text_chars, self.tight_chars), depth=min(self.depth, 8))


@dataclass(frozen=True)
class Truncated:
    """A value the log kept only part of. `encode` gives back exactly the stored form, so a
    value read from the log and written again (resume) or compared (replay) is unchanged."""

    type: str
    size: int
    """Its length (characters, bytes or elements), or 0 when not known (a value nested too deeply)."""
    preview: str
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:
        size = f" of {self.size:,}" if self.size else ""
        return f"<{self.type}{size}, truncated in the run log: {self.preview}>"


def cut_text(text: str, limit: int, clean: Callable[[str], str] | None = None) -> str:
    """`text` if it fits in `limit`, else its head and tail around a marker that says how much was cut."""
    if len(text) <= limit:
        return text
    head = max(limit - 80, 0) * 2 // 3
    tail = max(limit - 80 - head, 0)
    first = text[: head + _MARGIN]
    last = text[len(text) - tail - _MARGIN:] if tail else ""
    if clean is not None:
        first, last = clean(first), clean(last) if last else ""
    kept_tail = last[len(last) - tail:] if tail else ""
    return f"{first[:head]}\n[... {len(text) - head - tail:,} characters not kept in the run log ...]\n{kept_tail}"


class Bounded:
    """One walk over a value with a budget of characters; see the module docstring.

    Args:
        limits: the caps.
        clean: applied to string pieces kept around a cut (the redactor's `text`).
    """

    def __init__(self, limits: LogLimits, clean: Callable[[str], str] | None = None) -> None:
        self.limits = limits
        self.clean = clean

    def text(self, value: str) -> str:
        return cut_text(value, self.limits.text_chars, self.clean)

    def walker(self) -> _Walk:
        """A fresh budget of `value_chars` for one stored value."""
        return _Walk(self, self.limits.value_chars)


class _Walk:
    def __init__(self, owner: Bounded, budget: int) -> None:
        self.owner = owner
        self.left = budget

    def too_deep(self, depth: int) -> bool:
        return depth >= self.owner.limits.depth

    def spend(self, n: int) -> bool:
        """Take `n` characters from the budget; False when they do not fit."""
        if n > self.left:
            return False
        self.left -= n
        return True

    def scalar(self, value: Any) -> Any:
        """None, bool, int, float or str, kept or turned into a `truncated` tag."""
        if isinstance(value, str):
            if self.spend(len(value) + 2):
                return value
            return self.cut_str(value)
        if type(value) is int and value.bit_length() > _INT_BITS:
            self.spend(40)
            return self.truncated("int", value.bit_length(), f"an integer of {value.bit_length()} bits")
        self.spend(8)
        return value

    def share(self) -> int:
        """What a part that does not fit may keep: half of what is left, so the parts after it
        (and the containers around it) still get a say."""
        return max(self.left // 2 - 100, 0)

    def cut_str(self, value: str) -> dict[str, Any]:
        room = self.share()
        self.left = max(self.left - room - 100, 0)
        return self.truncated("str", len(value), cut_text(value, room, self.owner.clean) if room else "")

    def cut_bytes(self, value: bytes) -> dict[str, Any]:
        room = self.share() // 4
        self.left = max(self.left - room * 4 - 100, 0)
        return {**self.truncated("bytes", len(value), repr(value[:room])[:room + 3] if room else "")}

    def bytes_(self, value: bytes) -> dict[str, Any]:
        if self.spend(len(value) * 4 // 3 + 40):
            return {TAG: "bytes", "base64": base64.b64encode(value).decode()}
        return self.cut_bytes(value)

    def deep(self, value: Any) -> dict[str, Any]:
        self.spend(60)
        return self.truncated(_type_name(value), 0, f"nested deeper than {self.owner.limits.depth} levels")

    def truncated(self, kind: str, size: int, preview: str) -> dict[str, Any]:
        return {TAG: "truncated", "type": kind, "size": size, "preview": preview}


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
