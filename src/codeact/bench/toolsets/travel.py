"""A small travel desk: cities, flights, hotels, fares, currency and unit conversion.

Domains of the `travel` task set: itinerary pricing (flights + hotels + bag fees), currency
conversion with this desk's own rate table, and unit conversion with its own lookup table
(distances, weights, volumes, temperatures). Local times need each city's UTC offset.
"""

from __future__ import annotations

from codeact.tools.tool import tool

__all__ = [
    "CITIES",
    "FLIGHTS",
    "HOTELS",
    "RATES",
    "TOOLS",
    "UNITS",
    "bag_fee",
    "convert_currency",
    "convert_units",
    "distance_km",
    "find_flights",
    "get_city",
    "list_hotels",
]

#: code -> (name, country, currency, UTC offset in hours)
CITIES: dict[str, tuple[str, str, str, float]] = {
    "LIS": ("Lisbon", "Portugal", "EUR", 0),
    "OSL": ("Oslo", "Norway", "NOK", 1),
    "ZRH": ("Zurich", "Switzerland", "CHF", 1),
    "BER": ("Berlin", "Germany", "EUR", 1),
    "DEL": ("Delhi", "India", "INR", 5.5),
    "NYC": ("New York", "United States", "USD", -5),
    "TYO": ("Tokyo", "Japan", "JPY", 9),
    "CPT": ("Cape Town", "South Africa", "ZAR", 2),
}

#: flight -> (from, to, departure "HH:MM" local, duration in minutes, fare, fare currency, stops)
FLIGHTS: dict[str, tuple[str, str, str, int, float, str, int]] = {
    "TP1204": ("LIS", "OSL", "07:15", 235, 189.0, "EUR", 0),
    "SK4411": ("LIS", "OSL", "13:40", 320, 1650.0, "NOK", 1),
    "LX2291": ("LIS", "ZRH", "09:05", 160, 214.0, "CHF", 0),
    "TP9310": ("LIS", "ZRH", "18:30", 165, 176.0, "EUR", 0),
    "LH0331": ("BER", "ZRH", "06:50", 85, 142.0, "EUR", 0),
    "LX0967": ("BER", "ZRH", "16:25", 90, 119.0, "CHF", 0),
    "AI0122": ("BER", "DEL", "21:10", 455, 38900.0, "INR", 0),
    "LH7620": ("BER", "DEL", "11:45", 610, 512.0, "EUR", 1),
    "DL0087": ("NYC", "BER", "17:55", 490, 640.0, "USD", 0),
    "UA8831": ("NYC", "BER", "22:05", 625, 455.0, "USD", 1),
    "JL0005": ("NYC", "TYO", "13:25", 835, 1180.0, "USD", 0),
    "NH0109": ("NYC", "TYO", "11:00", 850, 161000.0, "JPY", 0),
    "SA0221": ("CPT", "ZRH", "19:40", 705, 11890.0, "ZAR", 0),
    "LX0289": ("ZRH", "CPT", "22:35", 690, 780.0, "CHF", 0),
    "SK0808": ("OSL", "BER", "08:20", 110, 1290.0, "NOK", 0),
    "DY1102": ("OSL", "BER", "19:05", 115, 990.0, "NOK", 0),
    "JL7041": ("TYO", "DEL", "10:55", 530, 89500.0, "JPY", 0),
    "AI0307": ("DEL", "TYO", "21:30", 450, 41200.0, "INR", 0),
}

#: hotel id -> (city code, name, stars, nightly rate in the city's currency)
HOTELS: dict[str, tuple[str, str, int, float]] = {
    "H-LIS-1": ("LIS", "Casa do Rio", 3, 88.0),
    "H-LIS-2": ("LIS", "Alfama Grand", 5, 265.0),
    "H-LIS-3": ("LIS", "Tejo Lodge", 4, 139.0),
    "H-OSL-1": ("OSL", "Fjordhotell", 4, 1890.0),
    "H-OSL-2": ("OSL", "Karl Johan Inn", 3, 1240.0),
    "H-ZRH-1": ("ZRH", "Limmat Suites", 5, 540.0),
    "H-ZRH-2": ("ZRH", "Hotel Uetliberg", 4, 245.0),
    "H-ZRH-3": ("ZRH", "Bahnhof Budget", 2, 119.0),
    "H-ZRH-4": ("ZRH", "Seefeld House", 4, 229.0),
    "H-BER-1": ("BER", "Spree Loft", 4, 131.0),
    "H-BER-2": ("BER", "Mitte Mini", 2, 64.0),
    "H-DEL-1": ("DEL", "Lodhi Court", 5, 14200.0),
    "H-DEL-2": ("DEL", "Karol Bagh Rest", 3, 3900.0),
    "H-NYC-1": ("NYC", "Hudson Yard Hotel", 4, 329.0),
    "H-NYC-2": ("NYC", "Bowery Bunk", 2, 119.0),
    "H-TYO-1": ("TYO", "Shinjuku Tower", 4, 24800.0),
    "H-TYO-2": ("TYO", "Asakusa Capsule", 2, 5200.0),
    "H-CPT-1": ("CPT", "Table Bay View", 5, 6100.0),
    "H-CPT-2": ("CPT", "Bo-Kaap Guesthouse", 3, 1450.0),
}

#: units of each currency per 1 EUR (this desk's table, not today's market)
RATES: dict[str, float] = {
    "EUR": 1.0, "USD": 1.08, "CHF": 0.95, "NOK": 11.6, "INR": 90.5, "JPY": 162.0, "ZAR": 20.2, "GBP": 0.86,
}

#: unit -> (dimension, size in the dimension's base unit: m, kg, l)
UNITS: dict[str, tuple[str, float]] = {
    "km": ("length", 1000.0), "m": ("length", 1.0), "mi": ("length", 1609.344), "nmi": ("length", 1852.0),
    "ft": ("length", 0.3048), "kg": ("mass", 1.0), "lb": ("mass", 0.45359237), "g": ("mass", 0.001),
    "l": ("volume", 1.0), "gal": ("volume", 3.785411784), "ml": ("volume", 0.001),
}
_TEMPERATURES = ("C", "F", "K")

#: (a, b) city codes -> great-circle distance in km, either order
_DISTANCES: dict[frozenset[str], int] = {
    frozenset(k): v for k, v in {
        ("LIS", "OSL"): 2744, ("LIS", "ZRH"): 1641, ("BER", "ZRH"): 671, ("BER", "DEL"): 5790,
        ("NYC", "BER"): 6385, ("NYC", "TYO"): 10849, ("CPT", "ZRH"): 8968, ("OSL", "BER"): 840,
        ("TYO", "DEL"): 5840, ("LIS", "BER"): 2312, ("NYC", "LIS"): 5418, ("ZRH", "DEL"): 6161,
    }.items()
}

#: checked-bag fee per bag, by number of stops: (fee in EUR for nonstop, with stops)
_BAG_FEE_EUR = (35.0, 55.0)


def _code(city: str) -> str:
    key = city.strip()
    if key.upper() in CITIES:
        return key.upper()
    for code, (name, *_rest) in CITIES.items():
        if name.lower() == key.lower():
            return code
    raise KeyError(f"unknown city {city!r}; known: {', '.join(n for n, *_ in CITIES.values())}")


@tool
def get_city(city: str) -> dict:
    """Facts about a city: {"code", "name", "country", "currency", "utc_offset"} (hours, may be 5.5).

    Args:
        city: the city's name ("Zurich") or its code ("ZRH").
    """
    code = _code(city)
    name, country, currency, offset = CITIES[code]
    return {"code": code, "name": name, "country": country, "currency": currency, "utc_offset": offset}


@tool
def find_flights(origin: str, destination: str) -> list[dict]:
    """Flights from one city to another: a list of {"flight", "departs" (local "HH:MM"),
    "duration_min", "fare", "currency", "stops"}. Fares are one way, per passenger.

    Args:
        origin: city name or code.
        destination: city name or code.
    """
    src, dst = _code(origin), _code(destination)
    return [
        {"flight": f, "departs": dep, "duration_min": dur, "fare": fare, "currency": cur, "stops": stops}
        for f, (a, b, dep, dur, fare, cur, stops) in FLIGHTS.items() if (a, b) == (src, dst)
    ]


@tool
def list_hotels(city: str) -> list[dict]:
    """Hotels in a city: a list of {"hotel_id", "name", "stars", "nightly_rate", "currency"}.

    Args:
        city: city name or code.
    """
    code = _code(city)
    currency = CITIES[code][2]
    return [
        {"hotel_id": h, "name": name, "stars": stars, "nightly_rate": rate, "currency": currency}
        for h, (c, name, stars, rate) in HOTELS.items() if c == code
    ]


@tool
def bag_fee(flight: str, bags: int) -> dict:
    """The fee for checked bags on one flight: {"flight", "bags", "fee", "currency"}.

    Args:
        flight: the flight number, e.g. "TP1204".
        bags: how many checked bags.
    """
    key = flight.strip().upper()
    if key not in FLIGHTS:
        raise KeyError(f"unknown flight {flight!r}; use find_flights to list flights")
    if bags < 0:
        raise ValueError("bags must be 0 or more")
    per_bag = _BAG_FEE_EUR[1 if FLIGHTS[key][6] else 0]
    return {"flight": key, "bags": bags, "fee": per_bag * bags, "currency": "EUR"}


@tool
def distance_km(origin: str, destination: str) -> int:
    """Great-circle distance between two cities in kilometres.

    Args:
        origin: city name or code.
        destination: city name or code.
    """
    pair = frozenset((_code(origin), _code(destination)))
    if pair not in _DISTANCES:
        raise KeyError(f"no distance on file between {origin!r} and {destination!r}")
    return _DISTANCES[pair]


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
    """Convert money with the travel desk's rate table (EUR, USD, CHF, NOK, INR, JPY, ZAR, GBP); not rounded.

    Args:
        amount: how much money.
        from_currency: ISO code of the amount's currency, e.g. "NOK".
        to_currency: ISO code to convert to, e.g. "EUR".
    """
    src, dst = from_currency.strip().upper(), to_currency.strip().upper()
    for code in (src, dst):
        if code not in RATES:
            raise ValueError(f"unknown currency {code!r}; known: {', '.join(RATES)}")
    return float(amount) / RATES[src] * RATES[dst]


@tool
def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a measurement: length (km, m, mi, nmi, ft), mass (kg, g, lb), volume (l, ml, gal)
    or temperature (C, F, K); not rounded.

    Args:
        value: the number to convert.
        from_unit: its unit, e.g. "km".
        to_unit: the unit wanted, e.g. "mi".
    """
    src, dst = from_unit.strip(), to_unit.strip()
    if src.upper() in _TEMPERATURES and dst.upper() in _TEMPERATURES:
        kelvin = {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[src.upper()]
        return {"C": kelvin - 273.15, "F": (kelvin - 273.15) * 9 / 5 + 32, "K": kelvin}[dst.upper()]
    src, dst = src.lower(), dst.lower()
    for unit in (src, dst):
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; known: {', '.join([*UNITS, *_TEMPERATURES])}")
    if UNITS[src][0] != UNITS[dst][0]:
        raise ValueError(f"cannot convert {UNITS[src][0]} ({src}) to {UNITS[dst][0]} ({dst})")
    return float(value) * UNITS[src][1] / UNITS[dst][1]


TOOLS = [get_city, find_flights, list_hotels, bag_fee, distance_km, convert_currency, convert_units]
