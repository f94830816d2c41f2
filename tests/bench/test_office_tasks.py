"""Every answer of the shipped `office` task set (delegation: two desks of tools) is recomputed
here from the office's own tools; the team spec splits the tools between two members."""

from __future__ import annotations

import pytest

from codeact.bench.checkers import get_checker
from codeact.bench.tasks import load_taskset, load_tools
from codeact.bench.toolsets import office as o


def person(name: str) -> dict:
    return o.find_person(name)


def eur(name: str) -> float:
    pay = o.salary_of(person(name)["id"])
    return pay["amount"] * o.fx_rate(pay["currency"], "EUR")


def city(name: str) -> str:
    return o.office_details(person(name)["office"])["city"]


def desks(name: str) -> int:
    return o.office_details(person(name)["office"])["desks"]


def leave(name: str) -> int:
    return o.leave_days(person(name)["id"])


def fare_eur(a: str, b: str) -> float:
    fare = o.train_fare(a, b)
    return fare["fare"] * o.fx_rate(fare["currency"], "EUR")


everyone = [n for team in o.list_teams() for n in o.team_roster(team)]

SOLUTIONS = {
    "office-01": lambda: round(eur("Ana Kovac"), 2),
    "office-02": lambda: desks("Tom Berg"),
    "office-03": lambda: next(o.office_details(person(n)["office"])["country"] for n in o.team_roster("data")
                              if person(n)["title"] == "lead"),
    "office-04": lambda: round(sum(eur(n) for n in o.team_roster("design")), 2),
    "office-05": lambda: round(fare_eur(city("Ana Kovac"), city("Tom Berg")), 2),
    "office-06": lambda: sum(desks(n) > 40 for n in o.team_roster("platform")),
    "office-07": lambda: max(o.team_roster("data"), key=leave),
    "office-08": lambda: o.office_details("lisbon")["desks"],
    "office-09": lambda: round(12 * eur("Mira Sato") * o.fx_rate("EUR", "USD")),
    "office-10": lambda: max((city(n) for n in ("Rui Costa", "Felix Roth")), key=lambda c: o.office_details(c)["desks"]),
    "office-11": lambda: round(fare_eur(city("Omar Haddad"), "Berlin"), 2),
    "office-12": lambda: sum(o.office_details(person(n)["office"])["country"] == "Germany"
                             for n in o.team_roster("design")),
    "office-13": lambda: round(sum(eur(n) for n in o.team_roster("platform")) / len(o.team_roster("platform")), 2),
    "office-14": lambda: person(max(everyone, key=leave))["team"],
    "office-15": lambda: round(eur("Priya Nair") - eur("Felix Roth"), 2),
    "office-16": lambda: sorted(n for n in everyone if person(n)["office"] == "tokyo"),
}


def test_the_set_has_a_solution_for_every_task_and_most_need_both_desks():
    tasks = load_taskset("office").tasks
    assert [t.id for t in tasks] == sorted(SOLUTIONS)
    assert {t.tools for t in tasks} == {"codeact.bench.toolsets.office"}


@pytest.mark.parametrize("task", load_taskset("office").tasks, ids=lambda t: t.id)
def test_each_answer_is_what_the_tools_compute(task):
    expected = SOLUTIONS[task.id]()
    assert task.answer == expected
    assert get_checker(task.checker_name)(expected, task.answer)


def test_the_team_splits_the_tools_between_two_members():
    tools = load_tools("codeact.bench.toolsets.office")
    names = [n for _, _, members in o.TEAM for n in members]
    assert sorted(names) == sorted(tools) and len(set(names)) == len(names)
