"""guard_own_imports: an import of the agent's own functions cannot break the step that makes it."""

from __future__ import annotations

import pytest

from codeact.agent.own_imports import guard_own_imports

OWN = {"final_answer", "distance_km", "convert_units", "search"}


@pytest.mark.parametrize(
    ("code", "expected", "guarded"),
    [
        ("from travel_desk import distance_km, convert_units\nprint(distance_km('LIS', 'OSL'))\n",
         "try: from travel_desk import distance_km, convert_units\nexcept ImportError: pass\n"
         "print(distance_km('LIS', 'OSL'))\n", ["distance_km", "convert_units"]),
        ("import os\nfrom desk import (distance_km,\n    convert_units)  # tools\nprint(1)",
         "import os\ntry: from desk import (distance_km,\n    convert_units)  # tools\nexcept ImportError: pass\nprint(1)",
         ["distance_km", "convert_units"]),
        ("from .tools import final_answer\r\nfinal_answer(1)\r\n",
         "try: from .tools import final_answer\r\nexcept ImportError: pass\r\nfinal_answer(1)\r\n", ["final_answer"]),
        ("from desk import distance_km", "try: from desk import distance_km\nexcept ImportError: pass\n", ["distance_km"]),
        ("from desk import distance_km\n\nprint(distance_km())\n",
         "try: from desk import distance_km\nexcept ImportError: pass\nprint(distance_km())\n", ["distance_km"]),
        # left as written: other names only, a shared line, an import inside a block, code that does not parse
        ("from desk import other\nimport distance_km\n", "from desk import other\nimport distance_km\n", []),
        ("from desk import distance_km; print(distance_km)", "from desk import distance_km; print(distance_km)", []),
        ("if True:\n    from desk import distance_km\n", "if True:\n    from desk import distance_km\n", []),
        ("from desk import distance_km\ndef f(:", "from desk import distance_km\ndef f(:", []),
    ],
    ids=["two tools", "parenthesized", "relative, CRLF", "no final newline", "blank line after", "others", "shared line", "nested", "broken"],
)
def test_guard_own_imports(code: str, expected: str, guarded: list[str]) -> None:
    new, names = guard_own_imports(code, OWN)
    assert (new, names) == (expected, guarded)
    if names:  # a guarded step still compiles
        compile(new, "<step>", "exec")


def test_a_module_that_exists_is_still_imported() -> None:
    new, _ = guard_own_imports("from re import search\nfound = search('a', 'cat')\n", OWN)
    scope: dict[str, object] = {"search": "the tool"}
    exec(new, scope)
    assert scope["found"] is not None and scope["search"] != "the tool"


def test_a_module_that_does_not_exist_leaves_the_function_in_place() -> None:
    new, _ = guard_own_imports("from travel_desk_nowhere import distance_km\nkm = distance_km()\n", OWN)
    scope: dict[str, object] = {"distance_km": lambda: 2744}
    exec(new, scope)
    assert scope["km"] == 2744
