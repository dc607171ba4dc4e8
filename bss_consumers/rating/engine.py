"""Rating of one usage record against a tariff plan: a pure function, no I/O.

The steps, in order:

1. The band is chosen by the usage's start time in the plan's time zone (see `tariff`).
2. The quantity is rounded up to the band rate's increments: the charged quantity.
3. The included allowance is drawn from the charged quantity, as CGRateS debits unit balances by
   increment: a 61 s call on 60/60 uses 120 s of allowance. The caller passes what remains of the
   allowance for the usage's kind and stores `remaining - allowance_used` itself.
4. What the allowance does not cover is billable. If nothing is billable (a zero-quantity record,
   or one the allowance covers), the amount is zero: no connect fee, no minimum charge.
5. Otherwise the exact total is connect fee + billable / rate unit x price per unit, in minor
   units, rounded once, half to even (see `money`), then raised to the minimum charge if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from bss_consumers.rating.money import Money, round_minor
from bss_consumers.rating.tariff import Rate, TariffPlan, UsageKind


class RatingError(ValueError):
    """A usage record that cannot be rated; `reason` is one line, fit for a TMF635 rejection."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Usage:
    """One usage record as rating sees it."""

    kind: UsageKind
    quantity: int  # in the kind's base unit: seconds, bytes or messages
    start: datetime  # aware


@dataclass(frozen=True)
class RatingBreakdown:
    """Every figure the amount is made of, enough to recompute it."""

    rate: Rate
    quantity: int
    charged_quantity: int
    allowance_used: int
    billable_quantity: int
    rate_units: Fraction  # billable_quantity / rate_unit, exact
    connect_fee: int  # minor units, 0 when nothing is billable
    usage_charge: Fraction  # rate_units x price_per_unit, exact minor units
    exact_total: Fraction  # connect_fee + usage_charge, before rounding
    rounded_total: int  # exact_total rounded half to even
    minimum_charge_applied: bool


@dataclass(frozen=True)
class RatingResult:
    """The outcome of rating one usage record."""

    kind: UsageKind
    band: str
    charged_quantity: int
    allowance_used: int
    amount: Money
    breakdown: RatingBreakdown


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(usage: Usage, plan: TariffPlan, allowance_remaining: int, account_currency: str | None) -> Rate:
    if not _is_int(usage.quantity):
        raise RatingError(f"quantity must be an integer, got {type(usage.quantity).__name__}")
    if usage.quantity < 0:
        raise RatingError(f"quantity must not be negative, got {usage.quantity}")
    if not isinstance(usage.start, datetime):
        raise RatingError(f"start must be a datetime, got {type(usage.start).__name__}")
    if usage.start.tzinfo is None or usage.start.utcoffset() is None:
        raise RatingError("start time has no time zone (naive datetime)")
    if not _is_int(allowance_remaining) or allowance_remaining < 0:
        raise RatingError(f"remaining allowance must be a non-negative integer, got {allowance_remaining!r}")
    if account_currency is not None and account_currency != plan.currency:
        raise RatingError(
            f"account currency {account_currency} differs from plan {plan.plan_id} currency {plan.currency}"
        )
    by_band = plan.rates.get(usage.kind)
    if by_band is None:
        raise RatingError(f"plan {plan.plan_id} has no rate for usage kind {str(usage.kind)!r}")
    band = plan.band_at(usage.start)
    found = by_band.get(band)
    if found is None:  # only reachable for a plan built without validation (model_construct)
        raise RatingError(f"plan {plan.plan_id} has no {usage.kind} rate for band {band!r}")
    return found


def rate(
    usage: Usage, plan: TariffPlan, allowance_remaining: int, *, account_currency: str | None = None
) -> RatingResult:
    """Rate `usage` by `plan`, drawing first on `allowance_remaining` (of the usage's kind).

    `account_currency`, when given, must be the plan's currency. Raises `RatingError` for a
    negative or non-integer quantity, a naive start time, a kind the plan does not rate, a
    negative allowance or a currency mismatch.
    """
    the_rate = _validate(usage, plan, allowance_remaining, account_currency)
    band = plan.band_at(usage.start)
    charged = the_rate.charged_quantity(usage.quantity)
    allowance_used = min(allowance_remaining, charged)
    billable = charged - allowance_used

    if billable == 0:
        connect_fee = 0
        units = Fraction(0)
    else:
        connect_fee = the_rate.connect_fee
        units = Fraction(billable, the_rate.rate_unit)
    usage_charge = units * Fraction(the_rate.price_per_unit)
    exact_total = connect_fee + usage_charge
    rounded = round_minor(exact_total)
    total, minimum_applied = rounded, False
    if billable and the_rate.minimum_charge is not None and rounded < the_rate.minimum_charge:
        total, minimum_applied = the_rate.minimum_charge, True

    breakdown = RatingBreakdown(
        rate=the_rate,
        quantity=usage.quantity,
        charged_quantity=charged,
        allowance_used=allowance_used,
        billable_quantity=billable,
        rate_units=units,
        connect_fee=connect_fee,
        usage_charge=usage_charge,
        exact_total=exact_total,
        rounded_total=rounded,
        minimum_charge_applied=minimum_applied,
    )
    return RatingResult(
        kind=UsageKind(usage.kind),
        band=band,
        charged_quantity=charged,
        allowance_used=allowance_used,
        amount=Money(total, plan.currency),
        breakdown=breakdown,
    )
