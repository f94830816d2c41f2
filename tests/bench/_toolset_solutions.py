"""The `travel` and `records` task sets: each question with a reference solution over the tools.

The shipped JSONL files are generated from here (`python tests/bench/_toolset_solutions.py`),
so no expected answer is typed by hand; test_toolset_tasks.py checks the files still match.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeact.bench.toolsets import records as r
from codeact.bench.toolsets import travel as t

Solution = Callable[[], Any]
TaskDef = tuple[str, str, str, Solution]  # id, question, checker, solution


# -- travel helpers -----------------------------------------------------------------------------
def eur(amount: float, currency: str) -> float:
    return t.convert_currency(amount, currency, "EUR")


def fare_eur(flight: dict) -> float:
    return eur(flight["fare"], flight["currency"])


def flight(number: str) -> dict:
    a, b, *_ = t.FLIGHTS[number]
    return next(f for f in t.find_flights(a, b) if f["flight"] == number)


def route(number: str) -> tuple[str, str]:
    a, b, *_ = t.FLIGHTS[number]
    return a, b


def arrival(number: str) -> str:
    """Local arrival time: departure + duration, moved from the origin's UTC offset to the destination's."""
    src, dst = route(number)
    f = flight(number)
    hours, minutes = map(int, f["departs"].split(":"))
    shift = (t.get_city(dst)["utc_offset"] - t.get_city(src)["utc_offset"]) * 60
    total = (hours * 60 + minutes + f["duration_min"] + int(shift)) % (24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}"


def hotel_eur(hotel: dict) -> float:
    return eur(hotel["nightly_rate"], hotel["currency"])


def cheapest(items: list[dict], key: Callable[[dict], float]) -> dict:
    return min(items, key=key)


def with_bags_eur(number: str, bags: int) -> float:
    fee = t.bag_fee(number, bags)
    return fare_eur(flight(number)) + eur(fee["fee"], fee["currency"])


TRAVEL: list[TaskDef] = [
    ("travel-fare-01", "What is the cheapest one-way fare from Lisbon to Oslo, in EUR? Round to 2 decimals.", "numeric",
     lambda: round(min(fare_eur(f) for f in t.find_flights("Lisbon", "Oslo")), 2)),
    ("travel-fare-02", "Which flight from Berlin to Zurich is the cheapest once the fares are compared in the same "
     "currency? Answer with the flight number.", "normalized",
     lambda: cheapest(t.find_flights("Berlin", "Zurich"), fare_eur)["flight"]),
    ("travel-fare-03", "How many of the flights from New York to Tokyo are nonstop?", "numeric",
     lambda: sum(f["stops"] == 0 for f in t.find_flights("New York", "Tokyo"))),
    ("travel-fare-04", "What is the fare of the fastest flight from Berlin to Delhi, in EUR? Round to 2 decimals.",
     "numeric", lambda: round(fare_eur(min(t.find_flights("Berlin", "Delhi"), key=lambda f: f["duration_min"])), 2)),
    ("travel-fare-05", "What does flight TP1204 cost in EUR for one passenger with 2 checked bags (fare plus bag "
     "fees)? Round to 2 decimals.", "numeric", lambda: round(with_bags_eur("TP1204", 2), 2)),
    ("travel-fare-06", "One passenger flies from New York to Berlin on the flight with the lower fare and checks 1 "
     "bag. What is the total (fare plus bag fee) in USD? Round to 2 decimals.", "numeric",
     lambda: round(t.convert_currency(with_bags_eur(cheapest(t.find_flights("New York", "Berlin"), fare_eur)["flight"], 1),
                                      "EUR", "USD"), 2)),
    ("travel-fare-07", "Which costs more in EUR: flight AI0122 or flight LH7620? Answer with the flight number.",
     "normalized", lambda: max(["AI0122", "LH7620"], key=lambda n: fare_eur(flight(n)))),
    ("travel-fare-08", "What is the absolute difference in EUR between the fares of the two flights from Lisbon to "
     "Zurich? Round to 2 decimals.", "numeric",
     lambda: round(abs(fare_eur(t.find_flights("LIS", "ZRH")[0]) - fare_eur(t.find_flights("LIS", "ZRH")[1])), 2)),
    ("travel-fare-09", "What is the fare of flight NH0109 in USD? Round to 2 decimals.", "numeric",
     lambda: round(t.convert_currency(flight("NH0109")["fare"], flight("NH0109")["currency"], "USD"), 2)),
    ("travel-fare-10", "How many flights from Berlin to Zurich or from Berlin to Delhi have a fare below 150 EUR?",
     "numeric", lambda: sum(fare_eur(f) < 150 for f in t.find_flights("BER", "ZRH") + t.find_flights("BER", "DEL"))),
    ("travel-fare-11", "Flight SA0221: what is its fare in CHF? Round to 2 decimals.", "numeric",
     lambda: round(t.convert_currency(flight("SA0221")["fare"], flight("SA0221")["currency"], "CHF"), 2)),
    ("travel-hotel-01", "What is the nightly rate of the cheapest hotel in Tokyo, in USD? Round to 2 decimals.",
     "numeric", lambda: round(t.convert_currency(cheapest(t.list_hotels("Tokyo"), hotel_eur)["nightly_rate"], "JPY",
                                                 "USD"), 2)),
    ("travel-hotel-02", "Of Oslo, Zurich and Lisbon, which city has the cheapest hotel night when compared in EUR? "
     "Answer with the city name.", "normalized",
     lambda: min(["Oslo", "Zurich", "Lisbon"], key=lambda c: min(hotel_eur(h) for h in t.list_hotels(c)))),
    ("travel-hotel-03", "How many 4-star hotels are there in Lisbon, Oslo, Zurich and Berlin together?", "numeric",
     lambda: sum(h["stars"] == 4 for c in ("Lisbon", "Oslo", "Zurich", "Berlin") for h in t.list_hotels(c))),
    ("travel-hotel-04", "What is the average nightly rate of the hotels in Zurich, in EUR? Round to 2 decimals.",
     "numeric", lambda: round(sum(hotel_eur(h) for h in t.list_hotels("Zurich")) / len(t.list_hotels("Zurich")), 2)),
    ("travel-hotel-05", "How much do 5 nights at the 5-star hotel in Delhi cost in EUR? Round to 2 decimals.",
     "numeric", lambda: round(5 * hotel_eur(next(h for h in t.list_hotels("Delhi") if h["stars"] == 5)), 2)),
    ("travel-hotel-06", "What is the nightly rate in EUR of the cheapest hotel with at least 3 stars in Cape Town? "
     "Round to 2 decimals.", "numeric",
     lambda: round(min(hotel_eur(h) for h in t.list_hotels("Cape Town") if h["stars"] >= 3), 2)),
    ("travel-hotel-07", "Which hotel in Zurich is the cheapest 4-star one? Answer with its name.", "normalized",
     lambda: cheapest([h for h in t.list_hotels("Zurich") if h["stars"] == 4], hotel_eur)["name"]),
    ("travel-fx-01", "Convert 2500 NOK to CHF with the travel desk's rates. Round to 2 decimals.", "numeric",
     lambda: round(t.convert_currency(2500, "NOK", "CHF"), 2)),
    ("travel-fx-02", "How many JPY is 1 ZAR worth at the travel desk's rates? Round to 4 decimals.", "numeric",
     lambda: round(t.convert_currency(1, "ZAR", "JPY"), 4)),
    ("travel-fx-03", "In which currency are hotels in Cape Town priced? Answer with the ISO code.", "normalized",
     lambda: t.list_hotels("Cape Town")[0]["currency"]),
    ("travel-time-01", "Flight TP1204 leaves Lisbon at its scheduled local time. What is the local time in Oslo "
     "when it lands? Answer as HH:MM (24-hour).", "normalized", lambda: arrival("TP1204")),
    ("travel-time-02", "Flight AI0122 leaves Berlin at its scheduled local time. What is the local time in Delhi "
     "when it lands? Answer as HH:MM (24-hour).", "normalized", lambda: arrival("AI0122")),
    ("travel-time-03", "Flight JL0005 leaves New York at its scheduled local time. What is the local time in Tokyo "
     "when it lands? Answer as HH:MM (24-hour).", "normalized", lambda: arrival("JL0005")),
    ("travel-time-04", "How many hours ahead of New York is Delhi?", "numeric",
     lambda: t.get_city("Delhi")["utc_offset"] - t.get_city("New York")["utc_offset"]),
    ("travel-time-05", "Of the flights from Lisbon to Oslo and from Lisbon to Zurich, which one lands at the earliest "
     "local time at its destination? Answer with the flight number.", "normalized",
     lambda: min([f["flight"] for f in t.find_flights("LIS", "OSL") + t.find_flights("LIS", "ZRH")], key=arrival)),
    ("travel-unit-01", "How far is it from Lisbon to Oslo in miles? Round to 1 decimal.", "numeric",
     lambda: round(t.convert_units(t.distance_km("Lisbon", "Oslo"), "km", "mi"), 1)),
    ("travel-unit-02", "How far is it from New York to Tokyo in nautical miles? Round to a whole number.", "numeric",
     lambda: round(t.convert_units(t.distance_km("New York", "Tokyo"), "km", "nmi"))),
    ("travel-unit-03", "Which is farther from Delhi: Zurich or Berlin? Answer with the city name.", "normalized",
     lambda: max(["Zurich", "Berlin"], key=lambda c: t.distance_km(c, "Delhi"))),
    ("travel-unit-04", "What is the average speed of flight DL0087 in km/h: the great-circle distance between its "
     "two cities divided by its flight time? Round to 1 decimal.", "numeric",
     lambda: round(t.distance_km(*route("DL0087")) / (flight("DL0087")["duration_min"] / 60), 1)),
    ("travel-unit-05", "What does flight SA0221 cost in EUR per 1000 km of great-circle distance between its cities? "
     "Round to 2 decimals.", "numeric",
     lambda: round(fare_eur(flight("SA0221")) / t.distance_km(*route("SA0221")) * 1000, 2)),
    ("travel-unit-06", "What is the total distance in miles of the route Lisbon -> Zurich -> Delhi? Round to a "
     "whole number.", "numeric",
     lambda: round(t.convert_units(t.distance_km("LIS", "ZRH") + t.distance_km("ZRH", "DEL"), "km", "mi"))),
    ("travel-trip-01", "A traveller flies from Berlin to Zurich on flight LH0331 and stays 3 nights at the cheapest "
     "4-star hotel in Zurich. What is the total in EUR? Round to 2 decimals.", "numeric",
     lambda: round(fare_eur(flight("LH0331"))
                   + 3 * hotel_eur(cheapest([h for h in t.list_hotels("Zurich") if h["stars"] == 4], hotel_eur)), 2)),
    ("travel-trip-02", "A traveller flies from Oslo to Berlin on the cheaper flight and stays 2 nights at the "
     "cheapest hotel in Berlin. What is the total in NOK? Round to 2 decimals.", "numeric",
     lambda: round(t.convert_currency(fare_eur(cheapest(t.find_flights("OSL", "BER"), fare_eur))
                                      + 2 * min(hotel_eur(h) for h in t.list_hotels("Berlin")), "EUR", "NOK"), 2)),
    ("travel-trip-03", "Two travellers fly from New York to Tokyo on JL0005 with 1 checked bag each, then share one "
     "room at Shinjuku Tower for 4 nights. What is the total in USD? Round to 2 decimals.", "numeric",
     lambda: round(t.convert_currency(2 * with_bags_eur("JL0005", 1)
                                      + 4 * hotel_eur(next(h for h in t.list_hotels("Tokyo")
                                                           if h["name"] == "Shinjuku Tower")), "EUR", "USD"), 2)),
]


# -- records helpers ----------------------------------------------------------------------------
def lines(order_id: str) -> list[dict]:
    return r.get_order(order_id)["lines"]


def order_value(order_id: str) -> float:
    return sum(r.get_item(x["sku"])["unit_price_eur"] * x["quantity"] for x in lines(order_id))


def order_weight(order_id: str) -> float:
    return sum(r.get_item(x["sku"])["weight_kg"] * x["quantity"] for x in lines(order_id))


def customer_of(order_id: str) -> dict:
    return r.get_customer(r.get_order(order_id)["customer_id"])


def staff() -> list[dict]:
    return r.read_table("staff")


def readings() -> list[dict]:
    return r.read_table("readings")


def open_quantities() -> Counter[str]:
    counts: Counter[str] = Counter()
    for o in r.list_orders(status="open"):
        for x in lines(o):
            counts[x["sku"]] += x["quantity"]
    return counts


_SKUS = [f"TL-0{i}" for i in range(1, 9)]
_CUSTOMERS = [f"C-10{i}" for i in range(1, 6)]
enc = r.encode_message

RECORDS: list[TaskDef] = [
    ("records-cipher-01", f"Decode this office message: '{enc('meet at the north gate')}'. What does it say?",
     "normalized", lambda: r.decode_message(enc("meet at the north gate"))),
    ("records-cipher-02", "Encode the word 'workbench' with the office cipher.", "exact",
     lambda: r.encode_message("workbench")),
    ("records-cipher-03", f"Decode the office message '{enc('seven green trees')}' and count the letter e in the "
     "decoded text.", "numeric", lambda: r.decode_message(enc("seven green trees")).count("e")),
    ("records-cipher-04", "What is the office checksum of the text 'Order O-5003 ready'?", "numeric",
     lambda: r.checksum("Order O-5003 ready")),
    ("records-cipher-05", f"The office message '{enc('order o-5008')}' names an order. Decode it. How many "
     "different SKUs are in that order?", "numeric",
     lambda: len(lines(r.decode_message(enc("order o-5008")).split()[-1]))),
    ("records-cipher-06", "What is the office checksum of the office-cipher encoding of 'hello'?", "numeric",
     lambda: r.checksum(r.encode_message("hello"))),
    ("records-cipher-07", f"Decode the office message '{enc('zinc copper tin iron')}' and give its words sorted "
     "alphabetically, as a list.", "list", lambda: sorted(r.decode_message(enc("zinc copper tin iron")).split())),
    ("records-cipher-08", "Which lowercase plain letter does the office cipher encode as 'q'?", "normalized",
     lambda: r.decode_message("q")),
    ("records-cipher-09", "Encode the name 'Ana Ferreira' with the office cipher.", "exact",
     lambda: r.encode_message("Ana Ferreira")),
    ("records-cipher-10", f"The office message '{enc('tl-04')}' is an item SKU. Decode it. How many units of that "
     "item are in stock?", "numeric", lambda: r.stock_level(r.decode_message(enc("tl-04")).upper())),
    ("records-cipher-11", f"The office message '{enc('Chen Wei')}' is a customer's name. Decode it. What is that "
     "customer's id (customers are C-101 to C-105)?", "normalized",
     lambda: next(c for c in _CUSTOMERS if r.get_customer(c)["name"] == r.decode_message(enc("Chen Wei")))),
    ("records-cipher-12", "Is the checksum of 'TL-07' larger than the checksum of 'TL-08'? Answer yes or no.",
     "normalized", lambda: "yes" if r.checksum("TL-07") > r.checksum("TL-08") else "no"),
    ("records-order-01", "How many open orders are there?", "numeric", lambda: len(r.list_orders(status="open"))),
    ("records-order-02", "What is the total value of order O-5002 in EUR, before discounts and shipping? Round to "
     "2 decimals.", "numeric", lambda: round(order_value("O-5002"), 2)),
    ("records-order-03", "What is the total weight of order O-5003 in kg? Round to 2 decimals.", "numeric",
     lambda: round(order_weight("O-5003"), 2)),
    ("records-order-04", "What does the customer pay for order O-5003: the items after the customer's discount, "
     "plus shipping for the order's total weight to the customer's zone? Round to 2 decimals.", "numeric",
     lambda: round(order_value("O-5003") * (1 - customer_of("O-5003")["discount_pct"] / 100)
                   + r.shipping_quote(order_weight("O-5003"), customer_of("O-5003")["zone"]), 2)),
    ("records-order-05", "Across all open orders, which SKU is ordered in the largest total quantity?", "normalized",
     lambda: open_quantities().most_common(1)[0][0]),
    ("records-order-06", "How many units of TL-07 would be left in stock after filling every open order?", "numeric",
     lambda: r.stock_level("TL-07") - open_quantities()["TL-07"]),
    ("records-order-07", "Which open orders contain an item that has no units in stock? Give the order ids.", "set",
     lambda: [o for o in r.list_orders(status="open") if any(r.stock_level(x["sku"]) == 0 for x in lines(o))]),
    ("records-order-08", "What is the shipping cost in EUR of order O-5006 to its customer's zone?", "numeric",
     lambda: r.shipping_quote(order_weight("O-5006"), customer_of("O-5006")["zone"])),
    ("records-order-09", "Which customer has the largest total value of shipped orders, before discounts? Answer "
     "with the customer's name.", "normalized",
     lambda: r.get_customer(max(_CUSTOMERS, key=lambda c: sum(order_value(o) for o in r.list_orders(c, "shipped"))))[
         "name"]),
    ("records-order-10", "What is the total value in EUR of all shipped orders, before discounts? Round to 2 "
     "decimals.", "numeric", lambda: round(sum(order_value(o) for o in r.list_orders(status="shipped")), 2)),
    ("records-order-11", "How many different SKUs appear in customer C-101's orders, whatever their status?",
     "numeric", lambda: len({x["sku"] for o in r.list_orders("C-101") for x in lines(o)})),
    ("records-order-12", "What is the value of order O-5005 after the customer's discount, without shipping? Round "
     "to 2 decimals.", "numeric",
     lambda: round(order_value("O-5005") * (1 - customer_of("O-5005")["discount_pct"] / 100), 2)),
    ("records-order-13", "Of the items TL-01 to TL-08, which is the heaviest per unit? Answer with its name.",
     "normalized", lambda: max((r.get_item(s) for s in _SKUS), key=lambda i: i["weight_kg"])["name"]),
    ("records-order-14", "What are the units in stock of TL-04 and TL-08 worth together at their unit prices, in "
     "EUR? Round to 2 decimals.", "numeric",
     lambda: round(sum(r.stock_level(s) * r.get_item(s)["unit_price_eur"] for s in ("TL-04", "TL-08")), 2)),
    ("records-table-01", "What is the average salary in EUR of the data team? Round to 2 decimals.", "numeric",
     lambda: round(sum(s["salary_eur"] for s in staff() if s["team"] == "data")
                   / sum(s["team"] == "data" for s in staff()), 2)),
    ("records-table-02", "How many staff members in Berlin started before 2020?", "numeric",
     lambda: sum(s["city"] == "Berlin" and s["started"] < 2020 for s in staff())),
    ("records-table-03", "Which team has the highest total salary?", "normalized",
     lambda: max({s["team"] for s in staff()},
                 key=lambda team: sum(s["salary_eur"] for s in staff() if s["team"] == team))),
    ("records-table-04", "Which weather station recorded the most rain in total over all days?", "normalized",
     lambda: max({x["station"] for x in readings()},
                 key=lambda st: sum(x["rain_mm"] for x in readings() if x["station"] == st))),
    ("records-table-05", "What was the mean temperature at the harbor station, in degrees C? Round to 1 decimal.",
     "numeric", lambda: round(sum(x["temp_c"] for x in readings() if x["station"] == "harbor") / 4, 1)),
    ("records-table-06", "On which day was the rain summed over all stations the highest? Answer with the day number.",
     "numeric", lambda: max({x["day"] for x in readings()},
                            key=lambda d: sum(x["rain_mm"] for x in readings() if x["day"] == d))),
    ("records-table-07", "Who in the platform team started most recently? Answer with the name.", "normalized",
     lambda: max((s for s in staff() if s["team"] == "platform"), key=lambda s: s["started"])["name"]),
    ("records-table-08", "Which staff members in Porto earn more than 55,000 EUR? Give their names sorted "
     "alphabetically, as a list.", "list",
     lambda: sorted(s["name"] for s in staff() if s["city"] == "Porto" and s["salary_eur"] > 55000)),
    ("records-table-09", "What is the difference between the highest and lowest temperature recorded at the ridge "
     "station? Round to 1 decimal.", "numeric",
     lambda: round(max(x["temp_c"] for x in readings() if x["station"] == "ridge")
                   - min(x["temp_c"] for x in readings() if x["station"] == "ridge"), 1)),
    ("records-table-10", "How many readings recorded more than 5 mm of rain?", "numeric",
     lambda: sum(x["rain_mm"] > 5 for x in readings())),
]

SETS: dict[str, tuple[str, list[TaskDef]]] = {
    "travel": ("codeact.bench.toolsets.travel", TRAVEL),
    "records": ("codeact.bench.toolsets.records", RECORDS),
}


def rows(name: str) -> list[dict[str, Any]]:
    """The task file's rows, each answer computed by its reference solution now."""
    tools, tasks = SETS[name]
    return [{"id": i, "question": q, "answer": solve(), "tools": tools, "checker": c} for i, q, c, solve in tasks]


def write(folder: Path) -> None:
    for name in SETS:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows(name))
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("src/codeact/bench/tasks"))
