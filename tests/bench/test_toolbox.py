"""The 120-tool catalogue and its two task sets: shipped as generated, answers from the tools, code mode apart."""

from __future__ import annotations

from codeact.agent.prompt import render_tools
from codeact.bench import toolbox
from codeact.bench.checkers import get_checker
from codeact.bench.tasks import load_taskset, load_tools
from codeact.tools.catalogue import ToolHelp, ToolSearch
from codeact.tools.tool import to_tools


def test_the_catalogue_has_120_distinct_typed_tools_in_12_groups() -> None:
    tools = to_tools(toolbox.TOOLS)
    assert len(tools) == 120 and len(toolbox.DOMAINS) == 12
    assert tools["vehicle_mileage"].python_signature() == "vehicle_mileage(vehicle_id: str) -> int"
    assert tools["count_books_over"].python_signature() == "count_books_over(fact: str, threshold: int) -> int"


def test_the_shipped_files_are_what_tasks_makes_and_name_their_tools() -> None:
    full, coded = load_taskset("toolbox"), load_taskset("toolbox_code_mode")
    assert len(full.tasks) == len(coded.tasks) == 60
    rows = toolbox.tasks()
    for row, a, b in zip(rows, full.tasks, coded.tasks, strict=True):
        assert (a.id, a.question, a.answer) == (b.id, b.question, b.answer) == (row["id"], row["question"], row["answer"])
    assert {t.tools for t in full.tasks} == {"codeact.bench.toolbox:TOOLS"}
    assert {t.tools for t in coded.tasks} == {"codeact.bench.toolbox:CODE_MODE_TOOLS"}


def test_every_answer_comes_from_the_tools_and_a_near_miss_fails() -> None:
    tools = load_tools("codeact.bench.toolbox:TOOLS")
    check = get_checker("numeric")
    for task in load_taskset("toolbox").tasks:
        name = task.question.split("'")[1] if "'" in task.question else None
        if task.question.startswith("Look up"):
            thing = task.question.split()[3]
            fact = next(f for f, what in _facts(thing) if task.question.endswith(f"its {what}."))
            assert tools[f"{thing}_{fact}"](tools[f"find_{thing}"](name)) == task.answer
        assert check(task.answer, task.answer) and not check(task.answer + 1, task.answer)


def _facts(thing: str) -> tuple[tuple[str, str], ...]:
    return next(d.facts for d in toolbox.DOMAINS if d.thing == thing)


def test_code_mode_leaves_every_signature_out_of_the_prompt_and_keeps_them_callable() -> None:
    full = render_tools(to_tools(toolbox.TOOLS))
    coded_tools = to_tools(toolbox.CODE_MODE_TOOLS)
    coded = render_tools(coded_tools)
    assert "def vehicle_mileage(" in full and "def vehicle_mileage(" not in coded
    assert "def search_tools(" in coded and "fleet: 10 tools about vehicles" in coded
    assert len(coded) * 4 < len(full)
    assert isinstance(coded_tools["search_tools"], ToolSearch) and isinstance(coded_tools["help"], ToolHelp)
    assert coded_tools["search_tools"]("vehicle fuel")[0].startswith("vehicle_fuel(vehicle_id: str) -> int")
    assert coded_tools["vehicle_seats"]("VEH-1") == to_tools(toolbox.TOOLS)["vehicle_seats"]("VEH-1")
    assert all(getattr(t, "in_prompt", True) for t in toolbox.TOOLS)  # the listed catalogue is untouched
