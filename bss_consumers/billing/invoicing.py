"""Invoice arithmetic, free of I/O: prorated recurring charges, SLA credits, tax and totals.

Money is in integer minor units. Every amount is computed exactly and rounded once, half to even,
where it becomes a line (the rule of `rating.money`). The invoice total is then the plain sum of
its lines, and the tax is computed on that sum and rounded once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from bss_consumers.rating.money import round_minor

TAX_RATE = Fraction(20, 100)  # VAT on the tax-excluded total

# SLA credit per started hour of outage, as a share of the service's monthly recurring price.
CREDIT_PER_HOUR = {
    "platinum": Fraction(10, 100),
    "gold": Fraction(5, 100),
    "silver": Fraction(2, 100),
    "bronze": Fraction(0),
}


def prorate(monthly_minor: int, held_days: int, period_days: int) -> int:
    """The recurring charge for ``held_days`` of a period of ``period_days``."""
    if period_days <= 0 or not 0 <= held_days <= period_days:
        raise ValueError(f"cannot prorate {held_days} days of a {period_days}-day period")
    return round_minor(Fraction(monthly_minor * held_days, period_days))


def held_days(period_start: date, period_end: date, assigned_on: date, ended_on: date | None) -> int:
    """Days of the period ``[period_start, period_end)`` the customer held a service: from the day
    it was assigned (activation) up to, not including, the day it ended (termination). A service
    activated and terminated on the same day is not charged."""
    held_from = max(period_start, assigned_on)
    held_to = period_end if ended_on is None else min(period_end, ended_on)
    return max(0, (held_to - held_from).days)


def sla_credit(monthly_minor: int, sla_tier: str, outage_seconds: float) -> int:
    """The credit for an outage: the tier's share of the monthly price per started hour, never
    more than the monthly price."""
    share = CREDIT_PER_HOUR.get(sla_tier)
    if share is None:
        raise ValueError(f"unknown SLA tier {sla_tier!r}")
    if outage_seconds <= 0:
        return 0
    hours = math.ceil(outage_seconds / 3600)
    return min(monthly_minor, round_minor(monthly_minor * share * hours))


@dataclass(frozen=True)
class Line:
    """One invoice line: charges positive, credits negative."""

    kind: str  # recurring, usage, credit
    description: str
    amount_minor: int
    offering_id: str | None = None  # the product a recurring line charges for


@dataclass(frozen=True)
class Totals:
    lines: tuple[Line, ...]
    tax_excluded_minor: int
    tax_minor: int
    tax_included_minor: int


def totals(lines: list[Line], tax_rate: Fraction = TAX_RATE) -> Totals:
    """Sum the lines and add tax. Credits beyond the charges are cut back, last first, so that no
    invoice goes below zero (the cut is said in the line's description)."""
    charges = sum(line.amount_minor for line in lines if line.kind != "credit")
    if charges < 0:
        raise ValueError("charges cannot be negative")
    room = charges
    kept: list[Line] = []
    for line in lines:
        if line.kind != "credit":
            kept.append(line)
            continue
        if line.amount_minor > 0:
            raise ValueError("a credit line must not be positive")
        applied = max(line.amount_minor, -room)
        room += applied
        if applied != line.amount_minor:
            line = Line("credit", f"{line.description} (capped at the charges)", applied, line.offering_id)
        kept.append(line)
    excluded = sum(line.amount_minor for line in kept)
    tax = round_minor(excluded * tax_rate)
    return Totals(tuple(kept), excluded, tax, excluded + tax)
