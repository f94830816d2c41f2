"""A small back office: a keyed cipher, orders and inventory, and two data tables.

Domains of the `records` task set: text/cipher utilities (a substitution key the model cannot
know, and a house checksum), orders/inventory (order lines, prices, customer discounts,
shipping by weight and zone, stock), and small data tables read whole and then filtered or
aggregated in code.
"""

from __future__ import annotations

import string

from codeact.tools.tool import tool

__all__ = [
    "CUSTOMERS",
    "ITEMS",
    "ORDERS",
    "TABLES",
    "TOOLS",
    "checksum",
    "decode_message",
    "encode_message",
    "get_customer",
    "get_item",
    "get_order",
    "list_orders",
    "list_tables",
    "read_table",
    "shipping_quote",
    "stock_level",
]

_PLAIN = string.ascii_lowercase
_KEY = "qmzwlkvjxetyupcsrnfodhgiab"  # a fixed permutation of a-z
_ENCODE = str.maketrans(_PLAIN + _PLAIN.upper(), _KEY + _KEY.upper())
_DECODE = str.maketrans(_KEY + _KEY.upper(), _PLAIN + _PLAIN.upper())

#: customer id -> (name, shipping zone, discount percent)
CUSTOMERS: dict[str, tuple[str, int, float]] = {
    "C-101": ("Ana Ferreira", 1, 0.0),
    "C-102": ("Bruno Keller", 2, 5.0),
    "C-103": ("Chen Wei", 3, 10.0),
    "C-104": ("Dara Okafor", 1, 12.5),
    "C-105": ("Eli Novak", 2, 0.0),
}

#: sku -> (name, unit price in EUR, weight in kg per unit, units in stock)
ITEMS: dict[str, tuple[str, float, float, int]] = {
    "TL-01": ("brass hinge", 3.40, 0.12, 540),
    "TL-02": ("oak shelf board", 18.90, 2.60, 37),
    "TL-03": ("wall anchor pack", 5.75, 0.30, 212),
    "TL-04": ("cordless drill", 89.00, 1.85, 9),
    "TL-05": ("wood glue 500ml", 7.20, 0.55, 64),
    "TL-06": ("sanding sheets", 4.10, 0.20, 0),
    "TL-07": ("steel bracket", 2.25, 0.18, 1310),
    "TL-08": ("workbench lamp", 34.50, 1.10, 15),
}

#: order id -> (customer id, status, ((sku, quantity), ...))
ORDERS: dict[str, tuple[str, str, tuple[tuple[str, int], ...]]] = {
    "O-5001": ("C-101", "shipped", (("TL-01", 20), ("TL-03", 4))),
    "O-5002": ("C-102", "open", (("TL-04", 1), ("TL-05", 2), ("TL-06", 10))),
    "O-5003": ("C-103", "open", (("TL-02", 6), ("TL-07", 24))),
    "O-5004": ("C-101", "cancelled", (("TL-08", 2),)),
    "O-5005": ("C-104", "open", (("TL-08", 1), ("TL-01", 12), ("TL-05", 1))),
    "O-5006": ("C-105", "shipped", (("TL-02", 2), ("TL-03", 10), ("TL-07", 40))),
    "O-5007": ("C-102", "shipped", (("TL-04", 2),)),
    "O-5008": ("C-103", "open", (("TL-06", 30), ("TL-01", 50))),
    "O-5009": ("C-104", "shipped", (("TL-02", 3), ("TL-08", 1))),
    "O-5010": ("C-105", "open", (("TL-07", 100), ("TL-03", 6))),
}

#: shipping in EUR by zone: (base fee, fee per started kg)
_SHIPPING: dict[int, tuple[float, float]] = {1: (4.90, 0.80), 2: (7.50, 1.15), 3: (12.00, 1.60)}

TABLES: dict[str, list[dict]] = {
    "staff": [
        {"name": "Ines", "team": "platform", "city": "Porto", "salary_eur": 61200, "started": 2019},
        {"name": "Jonas", "team": "platform", "city": "Berlin", "salary_eur": 70500, "started": 2016},
        {"name": "Kemi", "team": "data", "city": "Berlin", "salary_eur": 66800, "started": 2021},
        {"name": "Lars", "team": "data", "city": "Oslo", "salary_eur": 74100, "started": 2018},
        {"name": "Mira", "team": "design", "city": "Porto", "salary_eur": 52900, "started": 2022},
        {"name": "Noor", "team": "platform", "city": "Oslo", "salary_eur": 68350, "started": 2020},
        {"name": "Omar", "team": "design", "city": "Berlin", "salary_eur": 57400, "started": 2017},
        {"name": "Pia", "team": "data", "city": "Porto", "salary_eur": 59950, "started": 2023},
        {"name": "Quinn", "team": "support", "city": "Berlin", "salary_eur": 44600, "started": 2019},
        {"name": "Rafa", "team": "support", "city": "Porto", "salary_eur": 41300, "started": 2021},
    ],
    "readings": [
        {"station": "north", "day": 1, "temp_c": 11.4, "rain_mm": 0.0},
        {"station": "north", "day": 2, "temp_c": 9.8, "rain_mm": 6.2},
        {"station": "north", "day": 3, "temp_c": 8.1, "rain_mm": 12.5},
        {"station": "north", "day": 4, "temp_c": 10.6, "rain_mm": 1.1},
        {"station": "harbor", "day": 1, "temp_c": 13.2, "rain_mm": 2.4},
        {"station": "harbor", "day": 2, "temp_c": 12.9, "rain_mm": 9.7},
        {"station": "harbor", "day": 3, "temp_c": 11.7, "rain_mm": 4.0},
        {"station": "harbor", "day": 4, "temp_c": 14.3, "rain_mm": 0.0},
        {"station": "ridge", "day": 1, "temp_c": 6.5, "rain_mm": 3.3},
        {"station": "ridge", "day": 2, "temp_c": 4.2, "rain_mm": 15.8},
        {"station": "ridge", "day": 3, "temp_c": 3.9, "rain_mm": 7.4},
        {"station": "ridge", "day": 4, "temp_c": 7.7, "rain_mm": 0.6},
    ],
}


@tool
def encode_message(text: str) -> str:
    """Encode text with the office cipher (letters substituted by a secret key; other characters kept).

    Args:
        text: the plain text.
    """
    return text.translate(_ENCODE)


@tool
def decode_message(text: str) -> str:
    """Decode text written with the office cipher back to plain text.

    Args:
        text: the encoded text.
    """
    return text.translate(_DECODE)


@tool
def checksum(text: str) -> int:
    """The office checksum of a text: an integer from 0 to 9972 (used to tag messages).

    Args:
        text: any text; case and spaces count.
    """
    return sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % 9973


def _order(order_id: str) -> tuple[str, str, tuple[tuple[str, int], ...]]:
    key = order_id.strip().upper()
    if key not in ORDERS:
        raise KeyError(f"no order {order_id!r}; use list_orders to find order ids")
    return ORDERS[key]


@tool
def list_orders(customer_id: str = "", status: str = "") -> list[str]:
    """Order ids, optionally only one customer's and/or only one status ("open", "shipped", "cancelled").

    Args:
        customer_id: e.g. "C-101"; "" for every customer.
        status: e.g. "open"; "" for every status.
    """
    return [o for o, (c, s, _) in ORDERS.items()
            if (not customer_id or c == customer_id.strip().upper()) and (not status or s == status.strip().lower())]


@tool
def get_order(order_id: str) -> dict:
    """One order: {"order_id", "customer_id", "status", "lines": [{"sku", "quantity"}]}. Prices are not included.

    Args:
        order_id: e.g. "O-5001".
    """
    customer, status, lines = _order(order_id)
    return {"order_id": order_id.strip().upper(), "customer_id": customer, "status": status,
            "lines": [{"sku": s, "quantity": q} for s, q in lines]}


@tool
def get_item(sku: str) -> dict:
    """One catalogue item: {"sku", "name", "unit_price_eur", "weight_kg"} (weight per unit).

    Args:
        sku: e.g. "TL-01".
    """
    key = sku.strip().upper()
    if key not in ITEMS:
        raise KeyError(f"no item {sku!r}; known SKUs: {', '.join(ITEMS)}")
    name, price, weight, _ = ITEMS[key]
    return {"sku": key, "name": name, "unit_price_eur": price, "weight_kg": weight}


@tool
def stock_level(sku: str) -> int:
    """Units of an item in the warehouse now.

    Args:
        sku: e.g. "TL-01".
    """
    key = sku.strip().upper()
    if key not in ITEMS:
        raise KeyError(f"no item {sku!r}; known SKUs: {', '.join(ITEMS)}")
    return ITEMS[key][3]


@tool
def get_customer(customer_id: str) -> dict:
    """One customer: {"customer_id", "name", "zone" (shipping zone 1-3), "discount_pct"} (applies to item prices).

    Args:
        customer_id: e.g. "C-101".
    """
    key = customer_id.strip().upper()
    if key not in CUSTOMERS:
        raise KeyError(f"no customer {customer_id!r}; known: {', '.join(CUSTOMERS)}")
    name, zone, discount = CUSTOMERS[key]
    return {"customer_id": key, "name": name, "zone": zone, "discount_pct": discount}


@tool
def shipping_quote(weight_kg: float, zone: int) -> float:
    """Shipping cost in EUR for a parcel of this total weight to a zone (1-3); not discounted.

    Args:
        weight_kg: the parcel's total weight.
        zone: the customer's shipping zone.
    """
    if zone not in _SHIPPING:
        raise ValueError(f"unknown zone {zone!r}; zones are 1, 2 and 3")
    base, per_kg = _SHIPPING[zone]
    started_kg = int(-(-float(weight_kg) // 1))  # every started kilogram counts
    return round(base + per_kg * started_kg, 2)


@tool(at_start=True)  # the model sees the tables before its first step (README: Tools called at start)
def list_tables() -> dict:
    """The data tables and their columns: {table name: [column, ...]}."""
    return {name: list(rows[0]) for name, rows in TABLES.items()}


@tool
def read_table(name: str) -> list[dict]:
    """Every row of a data table, as a list of dicts (see list_tables for names and columns).

    Args:
        name: the table, e.g. "staff".
    """
    key = name.strip().lower()
    if key not in TABLES:
        raise KeyError(f"no table {name!r}; known: {', '.join(TABLES)}")
    return [dict(row) for row in TABLES[key]]


TOOLS = [encode_message, decode_message, checksum, list_orders, get_order, get_item, stock_level,
         get_customer, shipping_quote, list_tables, read_table]
