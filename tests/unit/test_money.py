from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import ValidationError
from services.common.money import (
    check_positive_amount,
    decimal_to_cents,
    format_cents,
    parse_money,
    share_percent,
    split_vat_included,
)


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("0", 0),
        ("12.5", 1250),
        ("12.50", 1250),
        ("0.01", 1),
        ("-3.20", -320),
        ("10000000.00", 10**9),
    ],
)
def test_parse_money_accepts_plain_decimal_strings(text: str, cents: int) -> None:
    assert parse_money(text, field="amount") == cents


@pytest.mark.parametrize(
    "bad",
    [
        "1e3",
        "NaN",
        "Infinity",
        "-Infinity",
        "12.345",
        "12,50",
        "",
        " 1.00",
        "01.00",
        "1.",
        ".5",
        "+1",
    ],
)
def test_parse_money_rejects_everything_else_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_money(bad, field="lines[0].amount")
    assert error.value.field == "lines[0].amount"


@pytest.mark.parametrize("not_a_string", [12.5, 12, True, None, Decimal("1.00")])
def test_parse_money_rejects_numbers(not_a_string: object) -> None:
    with pytest.raises(ValidationError):
        parse_money(not_a_string, field="amount")


def test_decimal_to_cents_refuses_a_third_decimal() -> None:
    with pytest.raises(ValidationError):
        decimal_to_cents(Decimal("1.005"), field="amount")
    assert decimal_to_cents(Decimal("1.05"), field="amount") == 105


def test_amount_must_be_positive_and_under_the_ceiling() -> None:
    check_positive_amount(1, field="a", ceiling_cents=100)
    check_positive_amount(100, field="a", ceiling_cents=100)
    for bad in (0, -1, 101):
        with pytest.raises(ValidationError):
            check_positive_amount(bad, field="a", ceiling_cents=100)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_format_and_parse_are_inverse(cents: int) -> None:
    assert parse_money(format_cents(cents), field="x") == cents


@given(st.integers(min_value=0, max_value=10**10), st.sampled_from([0, 400, 500, 1000, 2200]))
def test_vat_split_sums_to_gross_and_net_is_rounded_half_up(gross: int, rate_bp: int) -> None:
    net, vat = split_vat_included(gross, rate_bp)
    assert net + vat == gross
    exact_net = Decimal(gross) * 10_000 / Decimal(10_000 + rate_bp)
    assert abs(Decimal(net) - exact_net) <= Decimal("0.5")


def test_vat_split_examples_computed_by_hand() -> None:
    # 110.00 at 10%: net 100.00, VAT 10.00. 12.20 at 22%: 10.00 + 2.20.
    assert split_vat_included(11000, 1000) == (10000, 1000)
    assert split_vat_included(1220, 2200) == (1000, 220)
    # 0.05 at 10%: 0.04545.. -> net 0.05 (half up), VAT 0.00
    assert split_vat_included(5, 1000) == (5, 0)
    # 1.00 at 22%: 0.8196.. -> net 0.82, VAT 0.18
    assert split_vat_included(100, 2200) == (82, 18)


@pytest.mark.parametrize(
    ("part", "whole", "shown"),
    [
        (1, 3, "33.3"),
        (2, 3, "66.7"),
        (1, 8, "12.5"),
        (1, 16, "6.3"),  # 6.25 rounds half up
        (-1, 3, "-33.3"),  # more returned than sold in the period: not -34.7
        (-2, 7, "-28.6"),
        (-1, 16, "-6.3"),  # half away from zero, the same as its positive
        (-1, 10_000, "0.0"),  # no "-0.0"
        (0, 5, "0.0"),
        (40, 40, "100.0"),
    ],
)
def test_a_share_is_rounded_the_same_on_both_sides_of_zero(
    part: int, whole: int, shown: str
) -> None:
    assert share_percent(part, whole) == shown


@given(st.integers(-(10**6), 10**6), st.integers(1, 10**6))
def test_a_share_matches_decimal_rounding_half_away_from_zero(part: int, whole: int) -> None:
    exact = (Decimal(part) * 100 / Decimal(whole)).quantize(
        Decimal("0.1"), rounding="ROUND_HALF_UP"
    )
    assert Decimal(share_percent(part, whole)) == exact
