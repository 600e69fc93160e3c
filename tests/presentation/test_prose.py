"""The prose helpers: the cases that made glued sentences read like templates."""

import pytest

from actlab.presentation.prose import MINUS, count, listing, num, nums, of, plural, span


def test_counts_and_plurals_read_as_words() -> None:
    assert [count(n, "seed") for n in (0, 1, 5)] == ["no seeds", "1 seed", "5 seeds"]
    assert count(2, "unit", zero="none") == "2 units"
    assert plural(1, "activation") == "activation"
    assert count(3, "matrix", "matrices") == "3 matrices"


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (0, 5, "none of the 5 seeds"),
        (5, 5, "all 5 seeds"),
        (2, 2, "both seeds"),
        (1, 1, "the only seed"),
        (3, 5, "3 of 5 seeds"),
    ],
)
def test_of_names_the_none_and_all_cases(k: int, n: int, expected: str) -> None:
    assert of(k, n, "seed") == expected


def test_of_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        of(6, 5, "seed")
    with pytest.raises(ValueError, match="whole number"):
        count(1.5, "seed")


def test_lists_join_like_a_sentence() -> None:
    assert listing([]) == "none"
    assert listing(["sigmoid"]) == "sigmoid"
    assert listing(["sigmoid", "tanh"]) == "sigmoid and tanh"
    assert listing(["a", "b", "c"], "or") == "a, b or c"


def test_numbers_have_a_true_minus_and_no_negative_zero() -> None:
    assert num(-0.0, "g") == "0"
    assert num(-0.0004, ".2f") == "0.00"
    assert num(-1.5, ".1f") == f"{MINUS}1.5"
    assert num(2.5e-9, ".1e") == f"2.5e{MINUS}09"
    assert num(-0.004, ".0%") == "0%"
    assert nums([-1, -0.0, 1], "g") == f"{MINUS}1, 0 and 1"
    assert num(float("nan")) == "NaN"


def test_a_range_reads_low_to_high_and_collapses_when_both_ends_print_alike() -> None:
    assert span(2.1e-10, 9.04e-10, ".1e") == f"2.1e{MINUS}10 to 9.0e{MINUS}10"
    assert span(0.51, 0.512, ".2f") == "0.51"
    assert span(-1.5, 2, ".1f") == f"{MINUS}1.5 to 2.0"
