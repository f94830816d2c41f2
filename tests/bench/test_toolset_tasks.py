"""The shipped `travel` and `records` sets: every expected answer is recomputed from the tools."""

from __future__ import annotations

import re

import pytest

from codeact.bench.checkers import get_checker
from codeact.bench.tasks import load_taskset, load_tools, shipped_tasksets
from codeact.bench.toolsets import records, travel
from tests.bench._toolset_solutions import SETS, rows

NAMES = sorted(SETS)


def test_both_sets_ship_with_at_least_60_tasks_in_at_least_5_domains() -> None:
    assert set(NAMES) <= set(shipped_tasksets())
    tasks = [task for name in NAMES for task in load_taskset(name).tasks]
    domains = {re.sub(r"-\d+$", "", task.id) for task in tasks}
    assert len(tasks) >= 60
    assert len(domains) >= 5, domains


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_file_is_what_the_reference_solutions_compute(name: str) -> None:
    shipped = load_taskset(name).tasks
    expected = rows(name)
    assert [t.id for t in shipped] == [row["id"] for row in expected]
    for task, row in zip(shipped, expected):
        assert task.question == row["question"]
        assert task.answer == row["answer"], task.id
        assert task.checker == row["checker"]
        assert get_checker(task.checker_name)(row["answer"], task.answer), task.id


@pytest.mark.parametrize("name", NAMES)
def test_every_task_names_its_tools_and_they_load_without_an_opt_in(name: str) -> None:
    for task in load_taskset(name).tasks:
        tools = load_tools(task.tools)
        assert len(tools) >= 5 and "final_answer" not in tools


@pytest.mark.parametrize(
    ("answer", "task_id", "solved"),
    [("12:10", "travel-time-01", True), ("12:11", "travel-time-01", False), ("142.24", "travel-fare-01", True),
     ("142.2", "travel-fare-01", False), (["O-5008", "O-5002"], "records-order-07", True),
     ("Seefeld House.", "travel-hotel-07", True), (["Pia", "Ines"], "records-table-08", False)],
)
def test_checkers_accept_the_answer_and_refuse_near_misses(answer: object, task_id: str, solved: bool) -> None:
    task = next(t for name in NAMES for t in load_taskset(name).tasks if t.id == task_id)
    assert get_checker(task.checker_name)(answer, task.answer) is solved


def test_tools_report_mistakes_as_errors_that_say_what_is_known() -> None:
    with pytest.raises(KeyError, match="Lisbon"):
        travel.find_flights("Atlantis", "Oslo")
    with pytest.raises(ValueError, match="cannot convert"):
        travel.convert_units(3, "km", "kg")
    with pytest.raises(KeyError, match="TL-01"):
        records.get_item("XX-1")
    assert records.decode_message(records.encode_message("Quick, brown fox!")) == "Quick, brown fox!"
    assert travel.convert_units(100, "C", "F") == pytest.approx(212)
    assert records.shipping_quote(1.01, 1) == round(4.90 + 2 * 0.80, 2)  # every started kg counts
