"""Keeping the prompt from growing with every step.

Without it, step n re-sends every earlier observation, so a run's prompt tokens grow with the
square of its steps. Two measures, both applied to what the model sees, never to the run log
(which keeps every observation whole):

1. Observations older than the `keep_recent` newest steps are cut to `observation_chars`
   (head and tail kept). The newest steps, which the model is working from, stay verbatim.
2. When the estimated prompt passes `max_tokens`, the older steps are replaced by a short digest
   of each (what was run, what came back), appended to the task message. Digested steps stay
   digested, so the prompt's prefix changes only when a new batch is folded in, which keeps a
   local model's prefix cache useful.

The result depends only on the messages, so resume and replay rebuild the same prompts.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from codeact.errors import ConfigError
from codeact.models.base import Message
from codeact.sandbox.guest.text import truncate_middle

__all__ = ["Compaction", "Compactor", "Turn", "estimate_tokens"]

Turn = tuple[int, Sequence[Message]]
"""One step's messages after the task: (step index, [assistant reply, observation message(s)])."""

_SUMMARY_HEADER = (
    "Earlier steps, summarized to save space (what they defined in the Python session still exists):"
)


@dataclass(frozen=True)
class Compaction:
    """How to keep prompts small. `Compaction(max_tokens=None)` only truncates old observations.

    Args:
        observation_chars: older observations are cut to this many characters.
        keep_recent: how many of the newest steps stay verbatim (at least 1).
        max_tokens: estimated prompt size above which older steps are summarized; None: never.
        digest_chars: per summarized step, how much of its action and of its observation to keep.
        summary_header: the line that introduces the summary.
    """

    observation_chars: int = 1_000
    keep_recent: int = 2
    max_tokens: int | None = 6_000
    digest_chars: int = 300
    summary_header: str = _SUMMARY_HEADER

    def __post_init__(self) -> None:
        if self.keep_recent < 1:
            raise ConfigError(f"Compaction(keep_recent=...) must be at least 1, got {self.keep_recent}")
        if self.observation_chars < 100 or self.digest_chars < 40:
            raise ConfigError("Compaction keeps at least 100 observation and 40 digest characters")
        if self.max_tokens is not None and self.max_tokens < 256:
            raise ConfigError(f"Compaction(max_tokens=...) below 256 leaves no room for a task; got {self.max_tokens}")


def estimate_tokens(messages: Sequence[Message], memo: dict[str, float] | None = None) -> int:
    """Tokens the messages take, estimated without a tokenizer, erring a little high.

    "Four characters per token" holds for English but not for what agents print: Qwen's
    tokenizer spends a token per digit, and tables of numbers came out at 1.7 characters per
    token (measured: 15 KB of printed data, 9,160 tokens; chars/4 said 3,830). Counting each
    digit and symbol as a token and letters at six per token came within +1% (prose), +9% (data)
    and +27% (code) of the real count.

    Args:
        memo: text -> its estimate, kept by the caller across calls: a run sends the same
            messages step after step, and counting them again made the estimate the largest
            per-step cost of the loop.
    """
    count = _text_tokens if memo is None else functools.partial(_memo_tokens, memo)
    total = 0.0
    for m in messages:
        total += count(m.content) + 5
        for call in m.tool_calls:
            total += count(call.name) + count(repr(call.arguments))
    return int(total)


def _memo_tokens(memo: dict[str, float], text: str) -> float:
    found = memo.get(text)
    if found is None:
        found = memo[text] = _text_tokens(text)
    return found


_PIECES = re.compile(r"[^\W\d_]+|\d|[^\w\s]|\s+")


def _text_tokens(text: str) -> float:
    n = 0.0
    for match in _PIECES.finditer(text):
        piece = match.group()
        first = piece[0]
        if first.isalpha():
            n += max(1.0, len(piece) / 6)
        elif first.isspace():
            if "\n" in piece:
                n += 0.5 * piece.count("\n")
            elif len(piece) > 1:
                n += 1  # indentation
        else:
            n += 1  # a digit, an underscore or a symbol
    return n


class Compactor:
    """Applies a Compaction to one run's messages; remembers what it has summarized."""

    def __init__(self, policy: Compaction) -> None:
        self.policy = policy
        self._summarized = 0
        self._digests: list[str] = []
        self._sizes: dict[str, float] = {}

    def estimate(self, messages: Sequence[Message]) -> int:
        """`estimate_tokens`, remembering each text's estimate for the rest of the run."""
        return estimate_tokens(messages, self._sizes)

    @property
    def summarized_steps(self) -> int:
        return self._summarized

    def prompt(self, head: Sequence[Message], turns: Sequence[Turn]) -> list[Message]:
        """The messages to send: `head` (system, task), then the turns, compacted."""
        recent = max(self._summarized, len(turns) - self.policy.keep_recent)
        messages = self._build(head, turns, recent)
        limit = self.policy.max_tokens
        if limit is not None and recent > self._summarized and self.estimate(messages) > limit:
            self._digests += [self._digest(step, turn) for step, turn in turns[self._summarized:recent]]
            self._summarized = recent
            messages = self._build(head, turns, recent)
        return messages

    def _build(self, head: Sequence[Message], turns: Sequence[Turn], recent: int) -> list[Message]:
        out = list(head)
        if self._digests:
            out = _with_summary(out, self._summary())
        limit = self.policy.observation_chars
        for _, turn in turns[self._summarized:recent]:
            out += [m if m.role == "assistant" or len(m.content) <= limit
                    else dataclasses.replace(m, content=clip(m.content, limit)) for m in turn]
        for _, turn in turns[recent:]:
            out += turn
        return out

    def _summary(self) -> str:
        digests = self._digests
        budget = (self.policy.max_tokens or 6_000) * 2  # characters: at most half the prompt budget
        kept: list[str] = []
        size = 0
        for digest in reversed(digests):
            if size + len(digest) > budget and kept:
                break
            kept.append(digest)
            size += len(digest)
        dropped = len(digests) - len(kept)
        lines = [self.policy.summary_header]
        if dropped:
            lines.append(f"({dropped} earlier steps omitted.)")
        return "\n".join(lines + kept[::-1])

    def _digest(self, step: int, turn: Sequence[Message]) -> str:
        n = self.policy.digest_chars
        acted, saw = [], []
        for m in turn:
            if m.role == "assistant":
                acted.append(m.content.strip())
                acted += [f"called {c.name}({_args(c.arguments)})" for c in m.tool_calls]
            else:
                saw.append(m.content.strip())
        action = clip("\n".join(a for a in acted if a), n)
        result = clip("\n".join(s for s in saw if s), n)
        return f"Step {step}:\n{action}\n-> {result}"


def clip(text: str, limit: int) -> str:
    """Head (two thirds) and tail of `text` with a marker saying how much was cut."""
    return truncate_middle(text, limit, what="characters cut", head_share=2 / 3)


def _with_summary(head: list[Message], summary: str) -> list[Message]:
    """The summary joins the task message, so user and assistant turns still alternate."""
    last = head[-1] if head else None
    if last is not None and last.role == "user":
        return head[:-1] + [dataclasses.replace(last, content=f"{last.content}\n\n{summary}")]
    return head + [Message("user", summary)]


def _args(arguments: object) -> str:
    text = repr(arguments)
    return text if len(text) <= 80 else text[:79] + "…"
