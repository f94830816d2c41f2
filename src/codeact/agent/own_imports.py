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
import re
from collections.abc import Collection

from codeact.agent.parse import _parse

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
    lines = re.split(r"(?<=\n)|(?<=\r)(?!\n)", code)  # the line breaks `ast` counts
    guarded: list[str] = []
    for node in reversed(tree.body):
        hit = _own_names(node, names)
        if not hit or _shares_a_line(node, tree.body):
            continue
        guarded[:0] = hit
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        end = lines[last][len(lines[last].rstrip("\r\n")):] or "\n"
        lines[first] = "try: " + lines[first]
        if last + 1 < len(lines) and not lines[last + 1].strip():  # a blank line takes the except: no line moves
            lines[last + 1] = "except ImportError: pass" + (lines[last + 1][len(lines[last + 1].rstrip("\r\n")):] or end)
        else:
            lines[last] = lines[last].rstrip("\r\n") + end + "except ImportError: pass" + end
    return "".join(lines), list(dict.fromkeys(guarded))


def _own_names(node: ast.stmt, names: Collection[str]) -> list[str]:
    """The own functions a `from M import ...` statement names; [] for any other statement."""
    if not isinstance(node, ast.ImportFrom):
        return []
    return [alias.name for alias in node.names if alias.name in names]


def _shares_a_line(node: ast.stmt, body: list[ast.stmt]) -> bool:
    """`from m import f; f()`: a guard would wrap the call too, so such a line is left as written."""
    last = node.end_lineno or node.lineno
    return any(other is not node and (other.lineno <= last and (other.end_lineno or other.lineno) >= node.lineno)
               for other in body)
