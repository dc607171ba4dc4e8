"""Rating engine and exact money, without I/O: each rule by example, then properties."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bss_consumers.rating.engine import RatingError, RatingResult, Usage, rate
from bss_consumers.rating.money import CurrencyMismatchError, Money, round_minor
from bss_consumers.rating.tariff import (
    BYTES_PER_KB,
    BYTES_PER_MB,
    WEEKDAYS,
    Rate,
    TariffPlan,
    TimeBand,
    UsageKind,
    demo_plans,
)

LONDON = ZoneInfo("Europe/London")
# Wednesday 14 January 2026, London is on GMT (UTC+0).
WED_NOON = datetime(2026, 1, 14, 12, 0, tzinfo=LONDON)
SATURDAY_NOON = datetime(2026, 1, 17, 12, 0, tzinfo=LONDON)

PER_MINUTE = Rate(price_per_unit=Decimal(10), rate_unit=60, first_increment=60, increment=60)
PER_SECOND = Rate(price_per_unit=Decimal(10), rate_unit=60, first_increment=1, increment=1)


def plan_with(
    voice: Rate = PER_MINUTE,
    *,
    offpeak: Rate | None = None,
    data: Rate | None = None,
    currency: str = "GBP",
    timezone: str = "Europe/London",
) -> TariffPlan:
    """A plan with a weekday 08:00-20:00 peak band; off-peak voice defaults to the peak rate."""
    rates: dict[UsageKind, dict[str, Rate]] = {UsageKind.VOICE: {"peak": voice, "offpeak": offpeak or voice}}
    if data is not None:
        rates[UsageKind.DATA] = {"peak": data, "offpeak": data}
    return TariffPlan(
        plan_id="TEST",
        name="Test",
        currency=currency,
        timezone=timezone,
        bands=(TimeBand(name="peak", days=WEEKDAYS, start=time(8), end=time(20)),),
        default_band="offpeak",
        rates=rates,
    )


def voice(seconds: int, at: datetime = WED_NOON) -> Usage:
    return Usage(UsageKind.VOICE, seconds, at)


# --- money ---------------------------------------------------------------------------------------


def test_money_adds_and_compares_within_one_currency() -> None:
    assert Money(150, "GBP") + Money(25, "GBP") == Money(175, "GBP")
    assert Money(150, "GBP") - Money(200, "GBP") == Money(-50, "GBP")
    assert Money(1, "GBP") < Money(2, "GBP") <= Money(2, "GBP")
    assert Money(0, "GBP") != Money(0, "EUR")


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
    ],
)
def test_money_refuses_mixing_currencies(op) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CurrencyMismatchError, match="GBP and EUR"):
        op(Money(1, "GBP"), Money(1, "EUR"))


def test_money_refuses_floats_and_bad_currencies() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "GBP")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "GBP")
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(1, "pounds")
    with pytest.raises(TypeError):
        round_minor(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exact", "rounded"),
    [
        (Decimal("2.5"), 2),
        (Decimal("3.5"), 4),
        (Decimal("-2.5"), -2),
        (Decimal("1.4999"), 1),
        (Fraction(7, 6), 1),
        (Fraction(5, 3), 2),
        (7, 7),
    ],
)
def test_rounding_is_half_to_even_to_the_minor_unit(exact: Decimal | Fraction | int, rounded: int) -> None:
    assert round_minor(exact) == rounded
    assert Money.from_exact(exact, "GBP") == Money(rounded, "GBP")


# --- increments, connect fee, minimum ------------------------------------------------------------


def test_60_60_bills_whole_minutes() -> None:
    plan = plan_with(PER_MINUTE)
    assert rate(voice(1), plan, 0).charged_quantity == 60
    assert rate(voice(60), plan, 0).amount == Money(10, "GBP")
    result = rate(voice(61), plan, 0)
    assert result.charged_quantity == 120
    assert result.amount == Money(20, "GBP")


def test_1_1_bills_by_the_second_rounding_once_per_record() -> None:
    plan = plan_with(PER_SECOND)
    result = rate(voice(61), plan, 0)
    assert result.charged_quantity == 61
    assert result.breakdown.exact_total == Fraction(61 * 10, 60)  # 10.1666... pence
    assert result.amount == Money(10, "GBP")
    # Rounding each second (1/6 p -> 0 p) would make a 7 s call free; rounding the total does not.
    assert rate(voice(7), plan, 0).amount == Money(1, "GBP")


def test_60_1_bills_a_first_minute_then_by_the_second() -> None:
    plan = plan_with(Rate(price_per_unit=Decimal(6), rate_unit=60, first_increment=60, increment=1))
    assert rate(voice(5), plan, 0).charged_quantity == 60
    assert rate(voice(75), plan, 0).charged_quantity == 75
    assert rate(voice(75), plan, 0).amount == Money.from_exact(Fraction(75 * 6, 60), "GBP")


def test_connect_fee_is_added_once() -> None:
    plan = plan_with(PER_MINUTE.model_copy(update={"connect_fee": 5}))
    assert rate(voice(30), plan, 0).amount == Money(15, "GBP")
    assert rate(voice(180), plan, 0).amount == Money(35, "GBP")


def test_zero_duration_call_costs_nothing_even_with_a_connect_fee() -> None:
    plan = plan_with(PER_MINUTE.model_copy(update={"connect_fee": 5, "minimum_charge": 20}))
    result = rate(voice(0), plan, 100)
    assert result.charged_quantity == 0
    assert result.allowance_used == 0
    assert result.amount == Money(0, "GBP")
    assert result.breakdown.connect_fee == 0


def test_minimum_charge_is_a_floor_on_a_charged_record() -> None:
    plan = plan_with(PER_SECOND.model_copy(update={"minimum_charge": 3}))
    short = rate(voice(2), plan, 0)
    assert short.amount == Money(3, "GBP")
    assert short.breakdown.minimum_charge_applied
    long = rate(voice(600), plan, 0)
    assert long.amount == Money(100, "GBP")
    assert not long.breakdown.minimum_charge_applied


def test_data_is_rounded_up_to_its_increment() -> None:
    per_kb = Rate(
        price_per_unit=Decimal(5),
        rate_unit=BYTES_PER_MB,
        first_increment=BYTES_PER_KB,
        increment=BYTES_PER_KB,
    )
    plan = plan_with(data=per_kb)
    one_byte = rate(Usage(UsageKind.DATA, 1, WED_NOON), plan, 0)
    assert one_byte.charged_quantity == BYTES_PER_KB
    assert one_byte.breakdown.exact_total == Fraction(5, 1000)
    assert one_byte.amount == Money(0, "GBP")
    per_mb = per_kb.model_copy(update={"first_increment": BYTES_PER_MB, "increment": BYTES_PER_MB})
    just_over = rate(Usage(UsageKind.DATA, BYTES_PER_MB + 1, WED_NOON), plan_with(data=per_mb), 0)
    assert just_over.charged_quantity == 2 * BYTES_PER_MB
    assert just_over.amount == Money(10, "GBP")


# --- bands ---------------------------------------------------------------------------------------

PEAK = Rate(price_per_unit=Decimal(12), rate_unit=60, first_increment=60, increment=60)
OFFPEAK = Rate(price_per_unit=Decimal(4), rate_unit=60, first_increment=60, increment=60)


@pytest.mark.parametrize(
    ("local", "band"),
    [
        (datetime(2026, 1, 14, 7, 59, 59, 999999, tzinfo=LONDON), "offpeak"),
        (datetime(2026, 1, 14, 8, 0, tzinfo=LONDON), "peak"),
        (datetime(2026, 1, 14, 19, 59, 59, tzinfo=LONDON), "peak"),
        (datetime(2026, 1, 14, 20, 0, tzinfo=LONDON), "offpeak"),
        (datetime(2026, 1, 16, 12, 0, tzinfo=LONDON), "peak"),  # Friday
        (SATURDAY_NOON, "offpeak"),
        (datetime(2026, 1, 18, 12, 0, tzinfo=LONDON), "offpeak"),  # Sunday
    ],
)
def test_band_is_chosen_by_start_time_with_a_half_open_window(local: datetime, band: str) -> None:
    result = rate(voice(60, local), plan_with(PEAK, offpeak=OFFPEAK), 0)
    assert result.band == band
    assert result.amount == Money(12 if band == "peak" else 4, "GBP")


def test_band_is_evaluated_in_the_plan_time_zone() -> None:
    plan = plan_with(PEAK, offpeak=OFFPEAK)
    # 07:30 UTC is 08:30 in London in summer (BST) but 07:30 in winter (GMT).
    assert rate(voice(60, datetime(2026, 7, 15, 7, 30, tzinfo=UTC)), plan, 0).band == "peak"
    assert rate(voice(60, datetime(2026, 1, 14, 7, 30, tzinfo=UTC)), plan, 0).band == "offpeak"
    # The same instant given in another zone rates the same.
    tokyo = datetime(2026, 7, 15, 7, 30, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    assert rate(voice(60, tokyo), plan, 0).band == "peak"


def test_a_call_spanning_bands_is_rated_at_its_start_band() -> None:
    plan = plan_with(PEAK, offpeak=OFFPEAK)
    result = rate(voice(3600, datetime(2026, 1, 14, 19, 30, tzinfo=LONDON)), plan, 0)
    assert result.band == "peak"
    assert result.amount == Money(60 * 12, "GBP")


# --- allowance -----------------------------------------------------------------------------------


def test_allowance_partly_covering_a_call() -> None:
    plan = plan_with(PER_MINUTE.model_copy(update={"connect_fee": 5}))
    result = rate(voice(300), plan, 120)
    assert result.allowance_used == 120
    assert result.breakdown.billable_quantity == 180
    assert result.amount == Money(5 + 3 * 10, "GBP")


def test_allowance_fully_covering_a_call_costs_nothing() -> None:
    plan = plan_with(PER_MINUTE.model_copy(update={"connect_fee": 5, "minimum_charge": 20}))
    result = rate(voice(61), plan, 18_000)
    assert result.allowance_used == 120  # drawn in increments, as CGRateS debits unit balances
    assert result.amount == Money(0, "GBP")


def test_allowance_with_per_second_remainder() -> None:
    result = rate(voice(90), plan_with(PER_SECOND), 30)
    assert result.allowance_used == 30
    assert result.breakdown.rate_units == Fraction(60, 60)
    assert result.amount == Money(10, "GBP")


# --- rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "remaining", "currency", "reason"),
    [
        (voice(-1), 0, None, "quantity must not be negative"),
        (Usage(UsageKind.VOICE, 1.5, WED_NOON), 0, None, "quantity must be an integer"),  # type: ignore[arg-type]
        (Usage(UsageKind.VOICE, True, WED_NOON), 0, None, "quantity must be an integer"),
        (voice(60, datetime(2026, 1, 14, 12, 0)), 0, None, "naive datetime"),  # noqa: DTZ001
        (Usage(UsageKind.SMS, 1, WED_NOON), 0, None, "no rate for usage kind 'sms'"),
        (voice(60), -1, None, "remaining allowance must be a non-negative integer"),
        (voice(60), 0, "EUR", "account currency EUR differs from plan TEST currency GBP"),
    ],
)
def test_invalid_usage_is_rejected_with_a_one_line_reason(
    usage: Usage, remaining: int, currency: str | None, reason: str
) -> None:
    with pytest.raises(RatingError, match=reason) as caught:
        rate(usage, plan_with(), remaining, account_currency=currency)
    assert "\n" not in caught.value.reason


# --- plan validation -----------------------------------------------------------------------------


def test_plan_must_rate_every_band() -> None:
    with pytest.raises(ValidationError, match="must cover exactly the bands"):
        TariffPlan(
            plan_id="P",
            name="P",
            currency="GBP",
            timezone="Europe/London",
            bands=(TimeBand(name="peak", days=WEEKDAYS, start=time(8), end=time(20)),),
            default_band="offpeak",
            rates={UsageKind.VOICE: {"peak": PEAK}},
        )


def test_plan_refuses_float_prices_unknown_zones_and_backwards_bands() -> None:
    with pytest.raises(ValidationError, match="never float"):
        Rate(price_per_unit=0.1, rate_unit=60, first_increment=60, increment=60)
    with pytest.raises(ValidationError, match="unknown time zone"):
        plan_with(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError, match="must end after it starts"):
        TimeBand(name="night", days=WEEKDAYS, start=time(22), end=time(6))
    from_text = Rate(price_per_unit="0.1", rate_unit=60, first_increment=60, increment=60)
    assert from_text.price_per_unit == Decimal("0.1")


def test_a_band_ending_at_midnight_covers_the_evening() -> None:
    evening = TimeBand(name="evening", days=WEEKDAYS, start=time(20), end=time(0))
    assert evening.covers(datetime(2026, 1, 14, 23, 59, 59, tzinfo=LONDON))
    assert not evening.covers(datetime(2026, 1, 15, 0, 0, tzinfo=LONDON))  # Thursday 00:00 is before 20:00
    assert not evening.covers(datetime(2026, 1, 17, 21, 0, tzinfo=LONDON))  # Saturday


def test_demo_plans_rate_realistic_usage() -> None:
    plans = demo_plans()
    assert set(plans) == {"UK-BIZ-300", "UK-PAYG", "DE-BIZ-FLEX"}
    biz = plans["UK-BIZ-300"]
    assert biz.allowance_for(UsageKind.VOICE) == 18_000
    assert rate(voice(125), biz, 0).amount == Money(5 + 25, "GBP")  # peak: 5p + 125 s at 12p/min
    assert rate(voice(125), biz, 100).allowance_used == 100
    payg = plans["UK-PAYG"]
    assert payg.allowance_for(UsageKind.VOICE) == 0
    assert rate(voice(10, SATURDAY_NOON), payg, 0).amount == Money(30, "GBP")  # 10p + one minute at 20p
    assert rate(Usage(UsageKind.SMS, 3, WED_NOON), payg, 0).amount == Money(30, "GBP")
    de = plans["DE-BIZ-FLEX"]
    with pytest.raises(RatingError, match="no rate for usage kind 'sms'"):
        rate(Usage(UsageKind.SMS, 1, WED_NOON), de, 0)
    with pytest.raises(RatingError, match="differs"):
        rate(voice(60), de, 0, account_currency="GBP")


# --- properties ----------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=500, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def rates(draw: st.DrawFn) -> Rate:
    return Rate(
        connect_fee=draw(st.integers(0, 50)),
        price_per_unit=draw(prices),
        rate_unit=draw(st.sampled_from([1, 60, BYTES_PER_KB, BYTES_PER_MB])),
        first_increment=draw(st.sampled_from([1, 30, 60, BYTES_PER_KB])),
        increment=draw(st.sampled_from([1, 6, 60, BYTES_PER_KB])),
        minimum_charge=draw(st.none() | st.integers(0, 100)),
    )


@st.composite
def plans(draw: st.DrawFn) -> TariffPlan:
    return plan_with(
        draw(rates()),
        offpeak=draw(rates()),
        timezone=draw(st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata", "UTC"])),
    )


starts = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001
    max_value=datetime(2030, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, LONDON, ZoneInfo("Australia/Sydney")]),
)
quantities = st.integers(0, 10**7)
remainders = st.integers(0, 10**6)


def recompute(result: RatingResult) -> int:
    """The amount from the breakdown alone, with the rounding rule written out independently."""
    b = result.breakdown
    if b.billable_quantity == 0:
        return 0
    exact = b.rate.connect_fee + Fraction(b.billable_quantity, b.rate.rate_unit) * Fraction(
        b.rate.price_per_unit
    )
    floor = exact.numerator // exact.denominator
    excess = exact - floor
    rounded = floor + 1 if excess > Fraction(1, 2) or (excess == Fraction(1, 2) and floor % 2) else floor
    return max(rounded, b.rate.minimum_charge or 0)


@settings(max_examples=300)
@given(plans(), quantities, starts, remainders)
def test_amount_is_a_non_negative_whole_number_of_minor_units(
    plan: TariffPlan, quantity: int, start: datetime, remaining: int
) -> None:
    result = rate(voice(quantity, start), plan, remaining)
    assert type(result.amount.minor) is int
    assert result.amount.minor >= 0
    assert result.amount.currency == plan.currency


@settings(max_examples=300)
@given(plans(), quantities, quantities, starts, remainders)
def test_more_usage_never_costs_less(
    plan: TariffPlan, a: int, b: int, start: datetime, remaining: int
) -> None:
    low, high = sorted((a, b))
    assert rate(voice(low, start), plan, remaining).amount <= rate(voice(high, start), plan, remaining).amount


@given(plans(), quantities, starts, remainders, remainders)
def test_more_allowance_never_costs_more(
    plan: TariffPlan, quantity: int, start: datetime, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    assert rate(voice(quantity, start), plan, high).amount <= rate(voice(quantity, start), plan, low).amount


@given(plans(), quantities, starts, remainders)
def test_rating_is_deterministic(plan: TariffPlan, quantity: int, start: datetime, remaining: int) -> None:
    first = rate(voice(quantity, start), plan, remaining)
    again = rate(voice(quantity, start), plan.model_copy(deep=True), remaining)
    assert first == again
    # The same instant in another zone is the same usage.
    assert rate(voice(quantity, start.astimezone(UTC)), plan, remaining) == first


@settings(max_examples=300)
@given(plans(), quantities, starts, remainders)
def test_allowance_used_is_bounded_and_charged_quantity_rounds_up(
    plan: TariffPlan, quantity: int, start: datetime, remaining: int
) -> None:
    result = rate(voice(quantity, start), plan, remaining)
    r = result.breakdown.rate
    assert 0 <= result.allowance_used <= min(remaining, result.charged_quantity)
    assert result.charged_quantity >= quantity
    if quantity:
        assert result.charged_quantity - quantity < max(r.first_increment, r.increment)
    else:
        assert result.charged_quantity == 0
    assert result.breakdown.billable_quantity == result.charged_quantity - result.allowance_used


@settings(max_examples=300)
@given(plans(), quantities, starts, remainders)
def test_amount_is_reconstructable_from_the_breakdown(
    plan: TariffPlan, quantity: int, start: datetime, remaining: int
) -> None:
    result = rate(voice(quantity, start), plan, remaining)
    b = result.breakdown
    assert result.amount.minor == recompute(result)
    assert b.exact_total == b.connect_fee + b.rate_units * Fraction(b.rate.price_per_unit)
    if not b.minimum_charge_applied:
        assert result.amount.minor == round_minor(b.exact_total)
    assert abs(Fraction(b.rounded_total) - b.exact_total) <= Fraction(1, 2)


@given(st.fractions(min_value=-(10**9), max_value=10**9))
def test_rounding_is_stable(value: Fraction) -> None:
    once = round_minor(value)
    assert round_minor(once) == once
    assert abs(value - once) <= Fraction(1, 2)
    assert round_minor(-value) == -once  # half to even is symmetric


@given(st.lists(st.integers(-(10**9), 10**9), max_size=20))
def test_money_sum_equals_sum_of_minor_units(minors: list[int]) -> None:
    total = Money.zero("EUR")
    for m in minors:
        total = total + Money(m, "EUR")
    assert total == Money(sum(minors), "EUR")


def test_rating_a_whole_bill_period_consumes_the_allowance_exactly() -> None:
    """The caller's loop: carry the balance from one record to the next."""
    plan = demo_plans()["UK-BIZ-300"]
    remaining = plan.allowance_for(UsageKind.VOICE)
    billable_seconds = 0
    charged_records = 0
    start = WED_NOON
    for _ in range(200):  # 200 calls of 95 s: 19_000 s against 18_000 s included
        result = rate(voice(95, start), plan, remaining)
        remaining -= result.allowance_used
        billable_seconds += result.breakdown.billable_quantity
        charged_records += result.amount > Money.zero("GBP")
        start += timedelta(minutes=10)
    assert remaining == 0
    assert billable_seconds == 1_000
    assert charged_records == 11  # the call that exhausts the allowance, and the ten after it
