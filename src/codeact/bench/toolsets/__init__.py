"""Tool sets of the shipped multi-tool task sets (`travel`, `records`).

Each module holds made-up, deterministic data and the `@tool` functions over it, and a `TOOLS`
list that a task file names. The data is what a model cannot guess, so an answer that is right
was computed from the tools; tests/bench/test_toolset_tasks.py recomputes every expected answer
from these same functions.
"""

__all__: list[str] = []
