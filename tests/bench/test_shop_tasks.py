"""Every answer in the shipped `shop` task set is recomputed here from the shop's own tools."""

from __future__ import annotations

import pytest

from codeact.bench import shop
from codeact.bench.checkers import get_checker
from codeact.bench.tasks import load_taskset


def usd(sku: str) -> float:
    price = shop.get_price(sku)
    return shop.convert_currency(price["price"], price["currency"], "USD")


def to(sku: str, currency: str) -> float:
    price = shop.get_price(sku)
    return shop.convert_currency(price["price"], price["currency"], currency)


def skus(category: str) -> list[str]:
    return [p["sku"] for p in shop.search_products(category)]


def units(sku: str) -> int:
    return sum(shop.get_stock(sku).values())


def sku_of(name: str) -> str:
    return shop.search_products(name)[0]["sku"]


SOLUTIONS = {
    "shop-01": lambda: round(usd(sku_of("Gaming Mouse Pro")), 2),
    "shop-02": lambda: units(sku_of("Ergonomic Split Keyboard")),
    "shop-03": lambda: max(skus("keyboards"), key=lambda s: shop.get_product(s)["rating"]),
    "shop-04": lambda: round(to(sku_of("Mechanical Keyboard K1"), "EUR") + to(sku_of("Wireless Mouse M2"), "EUR"), 2),
    "shop-05": lambda: max(shop.get_stock(sku_of("27-inch 4K Monitor")).items(), key=lambda kv: kv[1])[0],
    "shop-06": lambda: min(skus("monitors"), key=usd),
    "shop-07": lambda: sum(usd(s) < 40 for s in skus("mice")),
    "shop-08": lambda: sorted(s for s in skus("keyboards") if shop.get_stock(s)["osaka"] > 0),
    "shop-09": lambda: round(sum(usd(s) for s in skus("headphones")) / len(skus("headphones")), 2),
    "shop-10": lambda: round(3 * to(sku_of("HDMI Cable 1m"), "GBP") + 2 * to(sku_of("USB-C Cable 2m"), "GBP"), 2),
    "shop-11": lambda: sum(units(s) for s in skus("cables")),
    "shop-12": lambda: max([sku_of("Noise Cancelling Headphones"), sku_of("27-inch 4K Monitor")], key=usd),
    "shop-13": lambda: round(to(sku_of("USB-C Docking Station"), "JPY")),
    "shop-14": lambda: round(units(sku_of("HD Webcam")) * usd(sku_of("HD Webcam")), 2),
    "shop-15": lambda: len(shop.list_categories()),
    "shop-16": lambda: sorted(p["sku"] for p in shop.search_products("") if shop.get_product(p["sku"])["rating"] >= 4.6),
    "shop-17": lambda: shop.get_product(min(skus("monitors"), key=lambda s: shop.get_stock(s)["berlin"]))["name"],
    "shop-18": lambda: round(abs(to(sku_of("Wireless Keyboard Slim"), "EUR") - to(sku_of("Mechanical Keyboard K1"), "EUR")), 2),
    "shop-19": lambda: round(sum(to(s, "EUR") for s in skus("mice")), 2),
    "shop-20": lambda: "yes" if shop.get_stock(sku_of("Vertical Mouse"))["austin"] > 0 else "no",
    "shop-21": lambda: max(["berlin", "austin", "osaka"], key=lambda w: sum(shop.get_stock(s)[w] for s in skus("keyboards"))),
    "shop-22": lambda: round(shop.get_stock(sku_of("Wireless Earbuds"))["berlin"] * to(sku_of("Wireless Earbuds"), "EUR"), 2),
}


def test_every_task_has_a_solution():
    tasks = load_taskset("shop").tasks
    assert sorted(t.id for t in tasks) == sorted(SOLUTIONS)
    assert all(t.tools == "codeact.bench.shop" for t in tasks)


@pytest.mark.parametrize("task", load_taskset("shop").tasks, ids=lambda t: t.id)
def test_answer_matches_the_tools(task):
    computed = SOLUTIONS[task.id]()
    assert get_checker(task.checker or "exact")(computed, task.answer), (computed, task.answer)
    assert computed == task.answer


def test_wrong_answers_fail_their_checker():
    for task in load_taskset("shop").tasks:
        check = get_checker(task.checker or "exact")
        wrong = ["KB-999"] if isinstance(task.answer, list) else (
            task.answer * 1.01 + 1 if isinstance(task.answer, (int, float)) else task.answer + " x")
        assert not check(wrong, task.answer), task.id
