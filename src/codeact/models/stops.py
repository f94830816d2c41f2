"""Stop sequences: where a reply ends when the text shows one, whole or streamed in pieces.

`Model` applies these to every reply and stream, so a backend whose server ignores or rejects
`stop` needs to do nothing about it; cutting an already cut text changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from codeact.models.messages import ModelReply

__all__ = ["StopCutter", "StreamCut", "cut_at_stop", "cut_reply"]


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Truncate at the first stop sequence, for servers that ignore or reject `stop`."""
    if not stop:
        return text
    cut = min((i for s in stop if s and (i := text.find(s)) != -1), default=-1)
    return text if cut == -1 else text[:cut]


class StopCutter:
    """Cuts a stream of text at the first stop sequence, even one split across chunks.

    Text that could be the start of a stop sequence is held back until the next chunk shows
    whether it is.
    """

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.stop = [s for s in stop or () if s]
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of `text` that is safe to emit now."""
        if self.stopped or not text:
            return ""
        buffer = self._held + text
        cut = len(cut_at_stop(buffer, self.stop))
        # A longer stop sequence that starts earlier may still be completed by the next chunk.
        pending = len(buffer) - self._partial_suffix(buffer)
        if cut < len(buffer) and pending >= cut:
            self.stopped, self._held = True, ""
            return buffer[:cut]
        self._held = buffer[pending:]
        return buffer[:pending]

    def flush(self) -> str:
        """Whatever was held back, once the stream has ended (cut at a stop sequence it holds)."""
        held, self._held = self._held, ""
        cut = cut_at_stop(held, self.stop)
        self.stopped = self.stopped or cut != held
        return cut

    def _partial_suffix(self, buffer: str) -> int:
        longest = max((len(s) - 1 for s in self.stop), default=0)
        for k in range(min(longest, len(buffer)), 0, -1):
            if any(s.startswith(buffer[-k:]) for s in self.stop):
                return k
        return 0


def cut_reply(reply: ModelReply, stop: Sequence[str] | None) -> ModelReply:
    """`reply` with its text cut at the first stop sequence (finish_reason "stop" if cut)."""
    cut = cut_at_stop(reply.text, stop)
    return reply if cut == reply.text else replace(reply, text=cut, finish_reason="stop")


class StreamCut:
    """The base's stop handling for a stream: pieces through a StopCutter, and the last reply."""

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.cutter = StopCutter(stop)
        self.parts: list[str] = []

    @property
    def stopped(self) -> bool:
        return self.cutter.stopped

    def feed(self, text: str) -> str:
        piece = self.cutter.feed(text)
        self.parts.append(piece)
        return piece

    def finish(self, reply: ModelReply | None) -> Iterator[str | ModelReply]:
        """The held-back tail, then the reply: the backend's (with the cut text) or, when the
        stream was closed early or ended without one, one made from the text."""
        tail = self.cutter.flush()
        if tail:
            self.parts.append(tail)
            yield tail
        text = "".join(self.parts)
        if reply is None:
            yield ModelReply(text, finish_reason="stop" if self.cutter.stopped else None)
        elif self.cutter.stopped:
            yield replace(reply, text=text, finish_reason="stop")
        else:
            yield reply
