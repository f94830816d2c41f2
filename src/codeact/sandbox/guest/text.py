"""The one head-and-tail truncator: long text keeps its start and its end, and says what was cut.

Stdlib only (it runs in the kernel); the host imports it too, so every cut reads the same.
"""

__all__ = ["cut_marker", "truncate_middle"]


def truncate_middle(
    text: str, limit: int, *, what: str = "characters truncated", head_share: float = 0.5, reserve: int = 0
) -> str:
    """`text` if it fits in `limit`, else its head and tail around a marker saying how much was cut.

    `reserve` characters of `limit` are left for the marker; of the rest, `head_share` is kept
    from the start (half by default: `limit - limit // 2` head, `limit // 2` tail) and the
    remainder from the end. The marker reads `[... 1,234 characters truncated ...]` (`what`).
    """
    if len(text) <= limit:
        return text
    room = max(limit - reserve, 0)
    head = room - room // 2 if head_share == 0.5 else int(room * head_share)
    tail = room - head
    return text[:head] + cut_marker(len(text) - head - tail, what) + (text[len(text) - tail :] if tail else "")


def cut_marker(dropped: int, what: str = "characters truncated") -> str:
    """The line that stands where `dropped` characters were cut, newlines around it."""
    return f"\n[... {dropped:,} {what} ...]\n"
