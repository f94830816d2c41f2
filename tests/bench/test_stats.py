"""The Wilson interval against values computed by hand."""

import pytest

from codeact.bench.stats import wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (40, 50, 0.6696, 0.8876),
    ],
)
def test_known_values(successes, trials, low, high):
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


def test_interval_contains_the_rate_and_narrows_with_more_trials():
    small = wilson_interval(8, 10)
    large = wilson_interval(80, 100)
    assert small[0] < 0.8 < small[1]
    assert large[1] - large[0] < small[1] - small[0]


def test_no_trials_means_no_information():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_impossible_counts_are_rejected():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
