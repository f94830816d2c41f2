"""A small in-memory shop API: the tools of the `shop` task set.

The tasks need several tools composed (find a product, read its price in its own currency,
convert, add up stock across warehouses), which is where code actions and JSON tool calls differ.
Everything is deterministic, so each task's answer is computed from these same functions (see
tests/bench/test_shop_tasks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from codeact.tools.tool import tool

__all__ = [
    "CATALOG",
    "RATES",
    "TOOLS",
    "Product",
    "convert_currency",
    "get_price",
    "get_product",
    "get_stock",
    "list_categories",
    "search_products",
]


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: float
    currency: str
    rating: float
    stock: tuple[tuple[str, int], ...]


def _p(sku: str, name: str, category: str, price: float, currency: str, rating: float,
       berlin: int, austin: int, osaka: int) -> Product:
    return Product(sku, name, category, price, currency, rating,
                   (("berlin", berlin), ("austin", austin), ("osaka", osaka)))


CATALOG: tuple[Product, ...] = (
    _p("KB-100", "Mechanical Keyboard K1", "keyboards", 89.00, "USD", 4.5, 4, 12, 0),
    _p("KB-200", "Wireless Keyboard Slim", "keyboards", 59.90, "EUR", 4.1, 20, 0, 5),
    _p("KB-300", "Ergonomic Split Keyboard", "keyboards", 149.00, "GBP", 4.7, 0, 3, 2),
    _p("MS-100", "Wireless Mouse M2", "mice", 25.50, "USD", 4.3, 15, 8, 30),
    _p("MS-200", "Gaming Mouse Pro", "mice", 7800, "JPY", 4.6, 2, 0, 11),
    _p("MS-300", "Vertical Mouse", "mice", 34.00, "EUR", 3.9, 6, 0, 1),
    _p("MN-100", "27-inch 4K Monitor", "monitors", 329.00, "USD", 4.4, 3, 9, 1),
    _p("MN-200", "24-inch Office Monitor", "monitors", 149.00, "EUR", 4.0, 7, 2, 4),
    _p("MN-300", "34-inch Ultrawide Monitor", "monitors", 69800, "JPY", 4.8, 1, 5, 6),
    _p("HP-100", "Noise Cancelling Headphones", "headphones", 199.00, "GBP", 4.6, 5, 5, 2),
    _p("HP-200", "Wireless Earbuds", "headphones", 79.00, "USD", 4.2, 25, 14, 9),
    _p("CB-100", "USB-C Cable 2m", "cables", 12.99, "USD", 4.0, 120, 80, 45),
    _p("CB-200", "HDMI Cable 1m", "cables", 10.50, "EUR", 3.8, 60, 0, 25),
    _p("DK-100", "USB-C Docking Station", "docks", 129.00, "EUR", 4.3, 8, 6, 0),
    _p("WC-100", "HD Webcam", "webcams", 5980, "JPY", 4.1, 10, 4, 7),
)

#: Units of each currency per 1 USD.
RATES: dict[str, float] = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0}
_BY_SKU = {p.sku: p for p in CATALOG}


def _product(sku: str) -> Product:
    key = sku.strip().upper()
    if key not in _BY_SKU:
        raise KeyError(f"no product with SKU {sku!r}; use search_products to find SKUs")
    return _BY_SKU[key]


@tool
def search_products(query: str) -> list[dict]:
    """Products whose name or category contains every word of the query: a list of {"sku", "name", "category"}.

    Args:
        query: words to look for, case-insensitive, e.g. "wireless mouse"; "" lists every product.
    """
    words = query.lower().split()
    hits = []
    for p in CATALOG:
        haystack = f"{p.name} {p.category}".lower()
        if all(w in haystack for w in words):
            hits.append({"sku": p.sku, "name": p.name, "category": p.category})
    return hits


@tool
def list_categories() -> list[str]:
    """All product categories, sorted."""
    return sorted({p.category for p in CATALOG})


@tool
def get_product(sku: str) -> dict:
    """Details of one product: sku, name, category and rating (0-5).

    Args:
        sku: the product's SKU, e.g. "KB-100".
    """
    p = _product(sku)
    return {"sku": p.sku, "name": p.name, "category": p.category, "rating": p.rating}


@tool
def get_price(sku: str) -> dict:
    """The price of one product in the currency it is sold in: {"sku", "price", "currency"}.

    Args:
        sku: the product's SKU, e.g. "KB-100".
    """
    p = _product(sku)
    return {"sku": p.sku, "price": p.price, "currency": p.currency}


@tool
def get_stock(sku: str) -> dict:
    """Units in stock per warehouse: {"berlin": n, "austin": n, "osaka": n}.

    Args:
        sku: the product's SKU, e.g. "KB-100".
    """
    return dict(_product(sku).stock)


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
    """Convert an amount of money between USD, EUR, GBP and JPY (not rounded).

    Args:
        amount: how much money.
        from_currency: ISO code of the amount's currency, e.g. "EUR".
        to_currency: ISO code to convert to, e.g. "USD".
    """
    src, dst = from_currency.strip().upper(), to_currency.strip().upper()
    for code in (src, dst):
        if code not in RATES:
            raise ValueError(f"unknown currency {code!r}; known: {', '.join(RATES)}")
    return float(amount) / RATES[src] * RATES[dst]


TOOLS = [search_products, list_categories, get_product, get_price, get_stock, convert_currency]
