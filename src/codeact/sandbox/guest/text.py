"""The one head-and-tail truncator: long text keeps its start and its end, and says what was cut.

Stdlib only (it runs in the kernel); the host imports it too, so every cut reads the same.
"""

__all__ = ["truncate_middle"]


def truncate_middle(text: str, limit: int, *, what: str = "characters truncated") -> str:
    """`text` if it fits in `limit`, else its first and last `limit // 2` characters around a marker.

    The marker says how many characters were cut: `[... 1,234 characters truncated ...]`.
    """
    if len(text) <= limit:
        return text
    head, tail = limit - limit // 2, limit // 2
    dropped = len(text) - head - tail
    return f"{text[:head]}\n[... {dropped:,} {what} ...]\n{text[len(text) - tail :]}"
