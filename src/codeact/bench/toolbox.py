"""A large tool catalogue: 120 made-up tools across 12 domains, for measuring code mode.

Issue 12 asks what listing 100+ tool signatures in the prompt costs against code mode
(`codeact.tools.catalogue`: the prompt outlines the groups, the code finds signatures with
`search_tools` and `help`). This module is that catalogue, as host tools. Each domain (a fleet of
vehicles, a library's books, ...) has six named records with seven numeric facts each, and ten
tools: `find_<thing>(name)` gives an id, seven `<thing>_<fact>(<thing>_id)` read one fact,
`list_<things>()` names them all, `count_<things>_over(fact, threshold)` counts. The data is
generated from a fixed seed, so no model can know it: a right answer was computed with the tools.

The task sets `toolbox` (every signature in the prompt, `TOOLS`) and `toolbox_code_mode` (the
same tools in code mode, `CODE_MODE_TOOLS`) hold the same tasks, made by `tasks()`; each needs
one to three of the tools. `python -m codeact.bench.toolbox` writes both files;
tests/bench/test_toolbox.py checks that the shipped files are what `tasks()` makes and that every
answer comes from the tools.
"""

from __future__ import annotations

import copy
import inspect
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeact.errors import ToolError
from codeact.tools.catalogue import code_mode
from codeact.tools.tool import FunctionTool, Tool

__all__ = ["CODE_MODE_TOOLS", "DOMAINS", "OUTLINE", "TOOLS", "Domain", "main", "task_lines", "tasks"]


@dataclass(frozen=True)
class Domain:
    """One group of ten tools over six records."""

    group: str
    thing: str
    things: str
    prefix: str
    names: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]
    """(fact, what it is): the seven numbers each record has."""

    def records(self) -> dict[str, tuple[str, dict[str, int]]]:
        """{id: (name, {fact: value})}, the same on every machine."""
        rng = random.Random(f"codeact-toolbox-{self.group}")
        return {f"{self.prefix}-{i + 1}": (name, {fact: rng.randint(3, 480) for fact, _ in self.facts})
                for i, name in enumerate(self.names)}


DOMAINS: tuple[Domain, ...] = (
    Domain("fleet", "vehicle", "vehicles", "VEH", ("Bluebird", "Ironhorse", "Kestrel", "Marlin", "Osprey", "Tundra"),
           (("mileage", "distance driven, in thousands of km"), ("fuel", "fuel in the tank, in liters"),
            ("seats", "number of seats"), ("cargo", "cargo capacity, in tens of kg"),
            ("age", "age in months"), ("trips", "trips this year"), ("repairs", "repairs so far"))),
    Domain("library", "book", "books", "BK", ("Amber Tides", "Cold Harbor", "Glass Orchard", "Lantern Road",
                                              "Quiet Engines", "Salt Atlas"),
           (("pages", "number of pages"), ("copies", "copies owned"), ("loans", "loans this year"),
            ("shelf", "shelf number"), ("holds", "open reservations"), ("fines", "fines collected, in euros"),
            ("edition", "edition number times ten"))),
    Domain("clinic", "doctor", "doctors", "DR", ("Adeyemi", "Brandt", "Castillo", "Dubois", "Eriksen", "Fujita"),
           (("patients", "patients seen this month"), ("room", "consulting room number"),
            ("hours", "hours on shift this week"), ("waitlist", "people on the waitlist"),
            ("experience", "experience in months"), ("fee", "consultation fee in euros"),
            ("referrals", "referrals made this month"))),
    Domain("warehouse", "bin", "bins", "BIN", ("North-1", "North-2", "East-7", "South-3", "West-4", "Dock-9"),
           (("capacity", "capacity in pallets"), ("used", "pallets stored"), ("aisle", "aisle number"),
            ("weight", "weight limit in hundreds of kg"), ("picks", "picks today"),
            ("returns", "returns received this week"), ("temperature", "temperature in tenths of a degree"))),
    Domain("energy", "plant", "plants", "PL", ("Sunridge", "Windmere", "Riverbend", "Stonevale", "Coastline",
                                               "Highfield"),
           (("output", "output in megawatts"), ("capacity", "capacity in megawatts"), ("units", "generating units"),
            ("staff", "staff on site"), ("outages", "outages this year"), ("emissions", "emissions in tonnes"),
            ("efficiency", "efficiency in tenths of a percent"))),
    Domain("school", "course", "courses", "CRS", ("Algebra II", "Botany", "Ceramics", "Debate", "Economics",
                                                  "Film Studies"),
           (("students", "students enrolled"), ("room", "room number"), ("lessons", "lessons per term"),
            ("score", "average score times ten"), ("labs", "lab sessions per term"),
            ("absences", "absences this term"), ("trips", "field trips planned"))),
    Domain("kitchen", "dish", "dishes", "DSH", ("Saffron Rice", "Lemon Tart", "Bean Stew", "Herb Omelette",
                                                 "Plum Cake", "Miso Soup"),
           (("price", "price in tens of cents"), ("calories", "calories per portion"),
            ("prep", "preparation time in minutes"), ("orders", "orders today"), ("stock", "portions left"),
            ("rating", "rating times a hundred"), ("allergens", "allergen code"))),
    Domain("airport", "gate", "gates", "GT", ("A1", "A7", "B3", "B12", "C5", "D2"),
           (("flights", "flights today"), ("delay", "total delay today in minutes"),
            ("terminal", "terminal code"), ("seats", "waiting-area seats"), ("shops", "shops nearby"),
            ("walk", "walk from security in seconds"), ("boardings", "boardings this week"))),
    Domain("farm", "field", "fields", "FLD", ("Oakmeadow", "Redacre", "Longfurrow", "Mossbank", "Windrow",
                                              "Clayhill"),
           (("area", "area in tenths of a hectare"), ("yield", "yield in tonnes"), ("rain", "rainfall in mm"),
            ("workers", "workers assigned"), ("tractors", "tractor hours this week"), ("plots", "plots"),
            ("ph", "soil pH times a hundred"))),
    Domain("museum", "exhibit", "exhibits", "EX", ("Bronze Age", "Deep Sea", "First Flight", "Ice Giants",
                                                   "Silk Road", "Star Maps"),
           (("visitors", "visitors this week"), ("rooms", "rooms used"), ("pieces", "pieces shown"),
            ("insurance", "insured value in thousands of euros"), ("guides", "guided tours this week"),
            ("floor", "floor number"), ("loans", "pieces on loan from other museums"))),
    Domain("bank", "branch", "branches", "BR", ("Harbor Street", "Old Town", "Parkside", "Riverside", "Summit",
                                                 "Westgate"),
           (("accounts", "open accounts, in tens"), ("tellers", "tellers on duty"),
            ("deposits", "deposits today in thousands of euros"), ("loans", "loans granted this month"),
            ("atms", "cash machines"), ("complaints", "complaints this month"),
            ("queue", "average queue in seconds"))),
    Domain("hotel", "property", "properties", "HT", ("Alder House", "Blue Lagoon", "Cedar Lodge", "Dune Inn",
                                                      "Elm Court", "Fjord View"),
           (("rooms", "rooms"), ("occupancy", "occupancy in tenths of a percent"), ("staff", "staff"),
            ("rate", "nightly rate in euros"), ("floors", "floors"), ("suites", "suites"),
            ("reviews", "reviews this month"))),
)


def _tool(name: str, doc: str, params: list[tuple[str, type]], returns: Any,
          body: Callable[..., Any]) -> Tool:
    """A tool whose signature names its parameters for its domain (`vehicle_id`, not `item_id`)."""
    signature = inspect.Signature(
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=t) for p, t in params],
        return_annotation=returns)

    def function(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        return body(*bound.arguments.values())

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    function.__signature__ = signature  # type: ignore[attr-defined]
    function.__annotations__ = {**{p: t for p, t in params}, "return": returns}
    return FunctionTool(function, name=name)


def _domain_tools(domain: Domain) -> list[Tool]:
    records = domain.records()
    by_name = {name.lower(): rid for rid, (name, _) in records.items()}
    thing, things = domain.thing, domain.things

    def find(name: str) -> str:
        found = by_name.get(str(name).strip().lower())
        if found is None:
            raise ToolError(f"no {thing} named {str(name)[:80]!r}; known: {', '.join(n for n, _ in records.values())}")
        return found

    def record(rid: str) -> dict[str, int]:
        if str(rid) not in records:
            raise ToolError(f"no {thing} with id {str(rid)[:80]!r}; ids look like {domain.prefix}-1 "
                            f"(find_{thing}(name) gives one)")
        return records[str(rid)][1]

    tools = [_tool(f"find_{thing}", f"The id of the {thing} with this name.", [("name", str)], str, find)]
    for fact, what in domain.facts:
        tools.append(_tool(f"{thing}_{fact}", f"A {thing}'s {what}.", [(f"{thing}_id", str)], int,
                           lambda rid, fact=fact: record(rid)[fact]))
    tools.append(_tool(f"list_{things}", f"The names of all {things}.", [], list[str],
                       lambda: [n for n, _ in records.values()]))
    facts = ", ".join(f for f, _ in domain.facts)

    def count_over(fact: str, threshold: int) -> int:
        if fact not in dict(domain.facts):
            raise ToolError(f"{things} have no fact {str(fact)[:80]!r}; choose one of: {facts}")
        return sum(values[fact] > threshold for _, values in records.values())

    tools.append(_tool(f"count_{things}_over", f"How many {things} have `fact` ({facts}) above `threshold`.",
                       [("fact", str), ("threshold", int)], int, count_over))
    return tools


TOOLS: list[Tool] = [t for domain in DOMAINS for t in _domain_tools(domain)]
"""All 120 tools, each listed in the prompt with its signature."""

OUTLINE: dict[str, str] = {
    d.group: f"10 tools about {d.things} ({', '.join(t.name for t in TOOLS[i * 10:i * 10 + 8])}, ...)"
    for i, d in enumerate(DOMAINS)
}
"""One line per group, as `MCPClient` outlines a server: its size and its first tool names."""

CODE_MODE_TOOLS: list[Tool] = code_mode([copy.copy(t) for t in TOOLS], outline=OUTLINE, threshold=0)
"""The same tools in code mode: out of the prompt, found with `search_tools` and `help`."""


def tasks(n: int = 60, *, seed: int = 12) -> list[dict[str, Any]]:
    """`n` tasks over the catalogue, in four kinds that need one to three tools, answers from the tools."""
    rng = random.Random(seed)
    tools = {t.name: t for t in TOOLS}
    rows = []
    for i in range(n):
        kind = i % 4  # kinds take turns, and each kind visits every domain
        domain = DOMAINS[(i // 4 + 5 * kind) % len(DOMAINS)]
        records = list(domain.records().values())
        (name_a, _), (name_b, _) = rng.sample(records, 2)
        (fact, what), (fact2, what2) = rng.sample(domain.facts, 2)
        t, ts = domain.thing, domain.things

        def value(name: str, fact: str, t: str = t) -> int:
            return int(tools[f"{t}_{fact}"](tools[f"find_{t}"](name)))

        if kind == 0:  # find + one fact: two tools
            question = f"Look up the {t} named {name_a!r} and report its {what}."
            answer = value(name_a, fact)
        elif kind == 1:  # find + one fact, twice: two tools
            question = f"Add up the {what} of the {t} named {name_a!r} and that of the {t} named {name_b!r}."
            answer = value(name_a, fact) + value(name_b, fact)
        elif kind == 2:  # find + two facts: three tools
            question = f"For the {t} named {name_a!r}, subtract its {what2} from its {what}."
            answer = value(name_a, fact) - value(name_a, fact2)
        else:  # one counting tool
            threshold = rng.randint(100, 380)
            question = f"How many {ts} have a {fact} ({what}) above {threshold}?"
            answer = int(tools[f"count_{ts}_over"](fact, threshold))
        rows.append({"id": f"toolbox-{i + 1:02d}", "question": question, "answer": answer, "checker": "numeric"})
    return rows


def task_lines(target: str) -> str:
    """The JSONL of a task set whose tasks name the tools at `target` ("codeact.bench.toolbox:TOOLS")."""
    return "".join(json.dumps({**row, "tools": target}, ensure_ascii=False) + "\n" for row in tasks())


def main(argv: list[str] | None = None) -> int:
    """Write the two shipped task files (into DIR, default the package's tasks/)."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).parent / "tasks"
    (folder / "toolbox.jsonl").write_text(task_lines("codeact.bench.toolbox:TOOLS"), encoding="utf-8")
    (folder / "toolbox_code_mode.jsonl").write_text(task_lines("codeact.bench.toolbox:CODE_MODE_TOOLS"),
                                                    encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
