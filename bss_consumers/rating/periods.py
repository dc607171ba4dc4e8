"""Bill periods: an account's period starts on its bill cycle day and lasts a calendar month."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def bill_period_start(at: datetime, cycle_day: int, timezone: str) -> date:
    """The first day of the bill period holding ``at`` (an aware time), in ``timezone``.

    A usage belongs to the period of its start time. Billing decides what happens to usage of a
    period already invoiced (it goes on the next bill).
    """
    if not 1 <= cycle_day <= 28:
        raise ValueError("bill cycle day must be 1 to 28")
    local = at.astimezone(ZoneInfo(timezone)).date()
    if local.day >= cycle_day:
        return local.replace(day=cycle_day)
    year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return date(year, month, cycle_day)
