"""Checkers: each reduces answers to a comparable form before comparing."""

import pytest

from codeact.bench.checkers import (
    exact,
    get_checker,
    last_number,
    list_match,
    normalized,
    numeric,
    set_match,
)
from codeact.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("The answer is 18.", 18.0),
        ("$1,234.50 in total", 1234.5),
        ("from 3 to -7", -7.0),
        ("about .5 of it", 0.5),
        ("2 apples and 3 pears; total 5 fruits", 5.0),
        ("1e3", 1000.0),
        ("no digits", None),
    ],
)
def test_last_number_reads_the_last_number_written(text, number):
    assert last_number(text) == number


def test_last_number_takes_numbers_as_they_are_and_refuses_bools():
    assert last_number(7) == 7.0
    assert last_number(2.5) == 2.5
    assert last_number(True) is None


@pytest.mark.parametrize(
    ("output", "expected", "ok"),
    [
        (18, 18, True),
        ("18", 18, True),
        ("She makes $18.00 every day.", 18, True),
        (18.00005, 18, True),  # within rel 1e-4
        (18.01, 18, False),
        ("1,000", 1000, True),
        ("19", 18, False),
        ("no idea", 18, False),
        (None, 18, False),
        (True, 1, False),
    ],
)
def test_numeric(output, expected, ok):
    assert numeric(output, expected) is ok


def test_exact_compares_values_or_stripped_text():
    assert exact("KB-300", "KB-300")
    assert exact(" KB-300\n", "KB-300")
    assert exact(42, "42")
    assert not exact("kb-300", "KB-300")


def test_normalized_ignores_case_punctuation_articles_and_spacing():
    assert normalized("The  Austin!", "austin")
    assert normalized("34-inch Ultrawide Monitor", "34 inch ultrawide monitor")
    assert not normalized("austin warehouse", "austin")


@pytest.mark.parametrize(
    ("output", "ok"),
    [
        (["KB-300", "KB-200"], True),
        ("KB-200, KB-300", True),
        ("KB-300 and KB-200", True),
        ('["kb-200", "kb-300"]', True),
        ("('KB-200', 'KB-300')", True),
        (["KB-200"], False),
        (["KB-200", "KB-300", "KB-100"], False),
        (42, False),
    ],
)
def test_set_match_ignores_order(output, ok):
    assert set_match(output, ["KB-200", "KB-300"]) is ok


def test_list_match_respects_order_and_compares_numbers_as_numbers():
    assert list_match([1, 2.0, "3"], ["1", "2", 3])
    assert not list_match([2, 1], [1, 2])


def test_get_checker_by_name_and_by_import_path():
    assert get_checker("numeric") is numeric
    custom = get_checker("codeact.bench.checkers:exact")
    assert custom("a", "a")


def test_get_checker_explains_unknown_names():
    with pytest.raises(ConfigError, match="unknown checker 'fuzzy'.*numeric"):
        get_checker("fuzzy")
