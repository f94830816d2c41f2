"""Imports of the agent's own functions from modules that do not exist.

The embedded 1.5B often starts with `from travel_desk import distance_km` (a module named after
words in the tools' docstrings) or `from data_tables import read_table`. The functions are already
defined in the session, so the import is the only thing that fails; told `ModuleNotFoundError`,
the model went on to `pip install travel_desk` for the rest of its steps. Each such import is
guarded so that a missing module leaves the session's function in place, while a module that does
exist (`from re import search` beside a tool named `search`) is imported as the code says.
"""

from __future__ import annotations

import ast
from collections.abc import Collection

from codeact.agent.parse import _parse, _shares_a_line, _split_lines

__all__ = ["guard_own_imports"]


def guard_own_imports(code: str, names: Collection[str]) -> tuple[str, list[str]]:
    """Wrap each top-level `from M import ...` that names one of `names` in `try`/`except ImportError`.

    The rest of the source is kept verbatim. The `except` takes the blank line after the import
    where there is one, so tracebacks keep the model's line numbers; else it adds a line.
    Code that does not parse is returned as is.

    Returns:
        The new code and the guarded names, in order of first appearance.
    """
    tree = _parse(code)
    if tree is None:
        return code, []
    lines = _split_lines(code)
    guarded: list[str] = []
    for i in reversed(range(len(tree.body))):
        node = tree.body[i]
        hit = _own_names(node, names)
        first, last = node.lineno, node.end_lineno or node.lineno
        if not hit or _shares_a_line(tree.body, i, first, last):  # `from m import f; f()`: left as written
            continue
        guarded[:0] = hit
        end = _line_end(lines[last - 1]) or "\n"
        lines[first - 1] = "try: " + lines[first - 1]
        if last < len(lines) and not lines[last].strip():  # a blank line takes the except: no line moves
            lines[last] = "except ImportError: pass" + (_line_end(lines[last]) or end)
        else:
            lines[last - 1] = lines[last - 1].rstrip("\r\n") + end + "except ImportError: pass" + end
    return "".join(lines), list(dict.fromkeys(guarded))


def _own_names(node: ast.stmt, names: Collection[str]) -> list[str]:
    """The own functions a `from M import ...` statement names; [] for any other statement."""
    if not isinstance(node, ast.ImportFrom):
        return []
    return [alias.name for alias in node.names if alias.name in names]


def _line_end(line: str) -> str:
    """The line break ending `line` ("" on the last line of code without one)."""
    return line[len(line.rstrip("\r\n")):]
