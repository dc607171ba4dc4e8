"""Invoice arithmetic: proration, SLA credits, tax and totals, exact to the minor unit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bss_consumers.billing.invoicing import Line, prorate, sla_credit, totals
from bss_consumers.billing.run import last_ended_period, next_period_start


def test_proration_is_exact_and_rounded_once() -> None:
    assert prorate(45_000, 30, 30) == 45_000
    assert prorate(45_000, 15, 30) == 22_500
    assert prorate(100, 1, 3) == 33  # 33.33...
    assert prorate(5, 1, 2) == 2  # 2.5, half to even
    with pytest.raises(ValueError):
        prorate(100, 31, 30)


def test_sla_credit_by_tier_and_started_hour() -> None:
    assert sla_credit(45_000, "platinum", 1) == 4_500  # a started hour: 10 %
    assert sla_credit(45_000, "platinum", 3601) == 9_000  # two started hours
    assert sla_credit(45_000, "gold", 1800) == 2_250
    assert sla_credit(45_000, "bronze", 7200) == 0
    assert sla_credit(45_000, "platinum", 40 * 3600) == 45_000  # never more than the month
    assert sla_credit(45_000, "gold", 0) == 0
    with pytest.raises(ValueError):
        sla_credit(45_000, "diamond", 60)


def test_credits_beyond_the_charges_are_capped() -> None:
    t = totals(
        [Line("recurring", "fibre", 1_000), Line("credit", "outage", -800), Line("credit", "outage 2", -800)]
    )
    assert [line.amount_minor for line in t.lines] == [1_000, -800, -200]
    assert "capped" in t.lines[2].description
    assert (t.tax_excluded_minor, t.tax_minor, t.tax_included_minor) == (0, 0, 0)


def test_bill_periods() -> None:
    from datetime import date

    assert next_period_start(date(2026, 12, 5)) == date(2027, 1, 5)
    assert last_ended_period(5, date(2026, 11, 27)) == date(2026, 10, 5)
    assert last_ended_period(27, date(2026, 11, 27)) == date(2026, 10, 27)
    assert last_ended_period(28, date(2026, 11, 27)) == date(2026, 9, 28)


charges = st.lists(
    st.builds(Line, st.sampled_from(["recurring", "usage"]), st.just("charge"), st.integers(0, 10**9)),
    max_size=8,
)
credits = st.lists(
    st.builds(Line, st.just("credit"), st.just("credit"), st.integers(-(10**9), 0)), max_size=4
)


@given(charges, credits)
def test_invoice_total_is_the_sum_of_its_lines_plus_tax(
    charge_lines: list[Line], credit_lines: list[Line]
) -> None:
    t = totals(charge_lines + credit_lines)
    assert t.tax_excluded_minor == sum(line.amount_minor for line in t.lines)
    assert t.tax_excluded_minor >= 0
    assert t.tax_included_minor == t.tax_excluded_minor + t.tax_minor
    assert all(isinstance(line.amount_minor, int) for line in t.lines)
    # Tax is 20 % rounded once: within half a minor unit of exact.
    assert abs(t.tax_minor * 5 - t.tax_excluded_minor) <= 2.5


@given(st.integers(0, 10**9), st.integers(1, 31), st.data())
def test_proration_never_exceeds_the_month(monthly: int, period_days: int, data: st.DataObject) -> None:
    held = data.draw(st.integers(0, period_days))
    amount = prorate(monthly, held, period_days)
    assert 0 <= amount <= monthly
    assert abs(amount * period_days - monthly * held) * 2 <= period_days
