"""A small company's records, split between two desks: the tools of the `office` task set.

The set exists to measure delegation: most tasks need facts from both desks (a salary from
`PEOPLE_TOOLS`, an exchange rate from `OPS_TOOLS`; a person's office from one, its desks from the
other). `TOOLS` holds both for a single agent; `TEAM` gives each desk to its own member for the
`codeact-team` bench config, whose manager has no data tools at all. Everything is made up and
deterministic; tests/bench/test_office_tasks.py recomputes every answer from these functions.
"""

from __future__ import annotations

from codeact.tools.tool import Tool, tool

__all__ = [
    "OFFICES",
    "OPS_TOOLS",
    "PEOPLE",
    "PEOPLE_TOOLS",
    "RATES",
    "TEAM",
    "TOOLS",
    "find_person",
    "fx_rate",
    "leave_days",
    "list_teams",
    "office_details",
    "salary_of",
    "team_roster",
    "train_fare",
]

#: office -> (city, country, desks)
OFFICES: dict[str, tuple[str, str, int]] = {
    "berlin": ("Berlin", "Germany", 48),
    "munich": ("Munich", "Germany", 22),
    "zurich": ("Zurich", "Switzerland", 35),
    "london": ("London", "United Kingdom", 60),
    "tokyo": ("Tokyo", "Japan", 41),
    "lisbon": ("Lisbon", "Portugal", 18),
}

#: id -> (name, team, office, title, monthly salary, salary currency, leave days left)
PEOPLE: dict[str, tuple[str, str, str, str, float, str, int]] = {
    "P01": ("Ana Kovac", "data", "zurich", "lead", 11200, "CHF", 12),
    "P02": ("Tom Berg", "platform", "berlin", "engineer", 6100, "EUR", 20),
    "P03": ("Mira Sato", "data", "tokyo", "analyst", 720000, "JPY", 8),
    "P04": ("Lena Vogel", "design", "munich", "designer", 5400, "EUR", 25),
    "P05": ("Omar Haddad", "platform", "london", "lead", 7800, "GBP", 14),
    "P06": ("Rui Costa", "design", "lisbon", "lead", 4300, "EUR", 9),
    "P07": ("Ella Novak", "platform", "tokyo", "engineer", 850000, "JPY", 17),
    "P08": ("Jonas Weber", "design", "berlin", "designer", 5200, "EUR", 3),
    "P09": ("Priya Nair", "data", "london", "engineer", 6900, "GBP", 21),
    "P10": ("Felix Roth", "platform", "zurich", "engineer", 10400, "CHF", 11),
    "P11": ("Kai Tanaka", "design", "tokyo", "designer", 610000, "JPY", 16),
}

#: units of each currency per 1 EUR
RATES: dict[str, float] = {"EUR": 1.0, "USD": 1.08, "GBP": 0.85, "CHF": 0.96, "JPY": 162.0}

#: (city, city) -> (fare, currency), either direction
_FARES: dict[frozenset[str], tuple[float, str]] = {
    frozenset({"Berlin", "Munich"}): (79.9, "EUR"),
    frozenset({"Berlin", "Zurich"}): (119.0, "EUR"),
    frozenset({"Munich", "Zurich"}): (64.5, "EUR"),
    frozenset({"London", "Berlin"}): (160.0, "GBP"),
    frozenset({"London", "Zurich"}): (142.0, "GBP"),
    frozenset({"Lisbon", "Berlin"}): (240.0, "EUR"),
    frozenset({"Lisbon", "Zurich"}): (210.0, "EUR"),
}


def _person(name_or_id: str) -> tuple[str, tuple[str, str, str, str, float, str, int]]:
    key = name_or_id.strip().lower()
    for pid, row in PEOPLE.items():
        if key in (pid.lower(), row[0].lower()):
            return pid, row
    raise KeyError(f"nobody called {name_or_id!r}; team_roster(team) lists names")


# -- the people desk ---------------------------------------------------------------------------
@tool
def list_teams() -> list[str]:
    """The company's teams, sorted."""
    return sorted({row[1] for row in PEOPLE.values()})


@tool
def team_roster(team: str) -> list[str]:
    """Full names of the people in a team.

    Args:
        team: a team name from list_teams(), e.g. "data".
    """
    names = [row[0] for row in PEOPLE.values() if row[1] == team.strip().lower()]
    if not names:
        raise KeyError(f"no team {team!r}; known: {', '.join(list_teams())}")
    return names


@tool
def find_person(name: str) -> dict:
    """One person: {"id", "name", "team", "office", "title"}; `office` is an office name.

    Args:
        name: the person's full name, e.g. "Tom Berg".
    """
    pid, row = _person(name)
    return {"id": pid, "name": row[0], "team": row[1], "office": row[2], "title": row[3]}


@tool
def salary_of(person_id: str) -> dict:
    """A person's monthly salary in the currency they are paid in: {"amount", "currency"}.

    Args:
        person_id: the id from find_person, e.g. "P02".
    """
    _, row = _person(person_id)
    return {"amount": row[4], "currency": row[5]}


@tool
def leave_days(person_id: str) -> int:
    """Days of leave a person has left this year.

    Args:
        person_id: the id from find_person, e.g. "P02".
    """
    return _person(person_id)[1][6]


# -- the operations desk -----------------------------------------------------------------------
@tool
def office_details(office: str) -> dict:
    """An office: {"office", "city", "country", "desks"}.

    Args:
        office: the office name, e.g. "berlin".
    """
    key = office.strip().lower()
    if key not in OFFICES:
        raise KeyError(f"no office {office!r}; known: {', '.join(OFFICES)}")
    city, country, desks = OFFICES[key]
    return {"office": key, "city": city, "country": country, "desks": desks}


@tool
def train_fare(from_city: str, to_city: str) -> dict:
    """The train fare between two cities: {"fare", "currency"}.

    Args:
        from_city: a city name, e.g. "Berlin".
        to_city: a city name, e.g. "Zurich".
    """
    route = frozenset({from_city.strip().title(), to_city.strip().title()})
    if route not in _FARES:
        raise KeyError(f"no train between {from_city!r} and {to_city!r}")
    fare, currency = _FARES[route]
    return {"fare": fare, "currency": currency}


@tool
def fx_rate(from_currency: str, to_currency: str) -> float:
    """How many units of `to_currency` one unit of `from_currency` buys (EUR, USD, GBP, CHF, JPY).

    Args:
        from_currency: ISO code, e.g. "CHF".
        to_currency: ISO code, e.g. "EUR".
    """
    src, dst = from_currency.strip().upper(), to_currency.strip().upper()
    for code in (src, dst):
        if code not in RATES:
            raise ValueError(f"unknown currency {code!r}; known: {', '.join(RATES)}")
    return RATES[dst] / RATES[src]


PEOPLE_TOOLS: list[Tool] = [list_teams, team_roster, find_person, salary_of, leave_days]
OPS_TOOLS: list[Tool] = [office_details, train_fare, fx_rate]
TOOLS: list[Tool] = PEOPLE_TOOLS + OPS_TOOLS

#: The team of the `codeact-team` bench config: (name, description, tool names).
TEAM: list[tuple[str, str, list[str]]] = [
    ("people", "Knows the staff: teams, who works where (office name), titles, monthly salaries "
               "(amount and currency) and leave days left.", [t.name for t in PEOPLE_TOOLS]),
    ("ops", "Knows the offices (city, country, desks), train fares between cities, and currency "
            "exchange rates.", [t.name for t in OPS_TOOLS]),
]
