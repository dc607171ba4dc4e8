"""Tariff plans in CGRateS terms: rates with connect fee, rate unit and increments, time-of-day
bands, and included allowances per bill period.

Quantities are integers in the kind's base unit: seconds for voice, bytes for data, messages for
SMS. Money in a plan is in minor units of the plan's currency: connect fees and minimum charges
are whole minor units; a price per rate unit may be fractional (0.15 pence per MB) and is kept
exact as a Decimal until the rated record's total is rounded once (see `money`).

Band rule: the band is chosen by the usage's start time, converted to the plan's time zone. The
plan's bands are tried in order and the first whose days and [start, end) wall-clock window hold
that local time wins; if none does, the plan's default band applies. A call that spans a band
boundary is rated entirely at its start band.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MIDNIGHT = time(0)
WEEKDAYS = frozenset({1, 2, 3, 4, 5})
WEEKEND = frozenset({6, 7})
ALL_DAYS = WEEKDAYS | WEEKEND

SECONDS_PER_MINUTE = 60
BYTES_PER_KB = 1_000
BYTES_PER_MB = 1_000_000
BYTES_PER_GB = 1_000_000_000


class UsageKind(StrEnum):
    """What was used, and so its base unit."""

    VOICE = "voice"  # seconds
    DATA = "data"  # bytes
    SMS = "sms"  # messages


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Rate(BaseModel):
    """How one usage kind is priced in one band (a CGRateS rate with its increments).

    The usage quantity is first rounded up to increments: one `first_increment`, then whole
    `increment`s (60/60 bills whole minutes, 1/1 bills by the second, 60/1 bills a first minute
    then by the second). The chargeable part costs `price_per_unit` per `rate_unit`.
    """

    model_config = _FROZEN

    connect_fee: int = Field(
        default=0, ge=0, description="Minor units charged once per record that has a chargeable part."
    )
    price_per_unit: Decimal = Field(
        ge=0, description="Price of one rate unit in minor units of the plan currency; may be fractional."
    )
    rate_unit: int = Field(
        gt=0, description="Quantity the price is for, in base units (60 s, 1_000_000 bytes, 1)."
    )
    first_increment: int = Field(gt=0, description="Smallest quantity billed for a non-empty record.")
    increment: int = Field(gt=0, description="Step the quantity is rounded up by after the first increment.")
    minimum_charge: int | None = Field(
        default=None,
        ge=0,
        description="Floor, in minor units, on the total of a record that is charged at all.",
    )

    @field_validator("price_per_unit", mode="before")
    @classmethod
    def _no_float_price(cls, value: Any) -> Any:
        # A float like 0.1 is already inexact; insist on a Decimal, int or decimal string.
        if isinstance(value, float):
            raise ValueError("prices must be given as Decimal, int or a decimal string, never float")
        return value

    @field_validator("price_per_unit")
    @classmethod
    def _finite_price(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("price must be finite")
        return value

    def charged_quantity(self, quantity: int) -> int:
        """`quantity` rounded up to this rate's increments; zero stays zero."""
        if quantity <= 0:
            return 0
        if quantity <= self.first_increment:
            return self.first_increment
        steps = -(-(quantity - self.first_increment) // self.increment)
        return self.first_increment + steps * self.increment


class TimeBand(BaseModel):
    """A named wall-clock window on some days of the week, in the plan's time zone."""

    model_config = _FROZEN

    name: str = Field(min_length=1, description="Band name, e.g. 'peak'.")
    days: frozenset[int] = Field(description="ISO weekdays the band applies on: 1 = Monday ... 7 = Sunday.")
    start: time = Field(description="Local start time, inclusive.")
    end: time = Field(description="Local end time, exclusive; 00:00 means the end of the day.")

    @field_validator("days")
    @classmethod
    def _iso_weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if not value or not value <= ALL_DAYS:
            raise ValueError("days must be a non-empty set of ISO weekdays 1..7")
        return value

    @model_validator(mode="after")
    def _window(self) -> TimeBand:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("band times are local wall-clock times and carry no time zone")
        if self.end != MIDNIGHT and self.end <= self.start:
            raise ValueError("a band must end after it starts (split a band that crosses midnight in two)")
        return self

    def covers(self, local: datetime) -> bool:
        """Whether the local wall-clock time `local` falls in this band."""
        if local.isoweekday() not in self.days:
            return False
        t = local.time()
        return self.start <= t and (self.end == MIDNIGHT or t < self.end)


class TariffPlan(BaseModel):
    """Rates per usage kind and band, the bands, and the allowances included per bill period."""

    model_config = _FROZEN

    plan_id: str = Field(min_length=1, description="Stable identifier of the plan, referenced by accounts.")
    name: str = Field(min_length=1, description="Commercial name.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of every amount in the plan.")
    timezone: str = Field(description="IANA time zone the bands are evaluated in, e.g. 'Europe/London'.")
    bands: tuple[TimeBand, ...] = Field(default=(), description="Bands tried in order; the first match wins.")
    default_band: str = Field(default="standard", min_length=1, description="Band when no band matches.")
    rates: dict[UsageKind, dict[str, Rate]] = Field(
        description="Rate per usage kind, then per band name; each rated kind covers every band."
    )
    allowances: dict[UsageKind, int] = Field(
        default_factory=dict,
        description="Quantity per bill period, in base units, included before charging (e.g. 18000 s).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("allowances")
    @classmethod
    def _non_negative_allowances(cls, value: dict[UsageKind, int]) -> dict[UsageKind, int]:
        if any(q < 0 for q in value.values()):
            raise ValueError("allowances cannot be negative")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TariffPlan:
        names = [b.name for b in self.bands] + [self.default_band]
        if len(set(names)) != len(names):
            raise ValueError(f"band names must be unique (the default band included): {names}")
        for kind, by_band in self.rates.items():
            if set(by_band) != set(names):
                raise ValueError(
                    f"rates for {kind.value} must cover exactly the bands {sorted(names)}, got {sorted(by_band)}"
                )
        unrated = set(self.allowances) - set(self.rates)
        if unrated:
            raise ValueError(f"allowance for a kind the plan does not rate: {sorted(unrated)}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The plan's time zone."""
        return ZoneInfo(self.timezone)

    def band_at(self, start: datetime) -> str:
        """Name of the band for usage starting at the aware datetime `start` (see the module's band rule)."""
        local = start.astimezone(self.zone)
        for band in self.bands:
            if band.covers(local):
                return band.name
        return self.default_band

    def allowance_for(self, kind: UsageKind) -> int:
        """Quantity of `kind` included per bill period (0 when none), to reset balances at period start."""
        return self.allowances.get(kind, 0)


def _every_band(plan_bands: list[str], rate: Rate) -> dict[str, Rate]:
    return dict.fromkeys(plan_bands, rate)


def demo_plans() -> dict[str, TariffPlan]:
    """Sample plans by plan id: a UK business plan with allowances and peak/off-peak voice, a UK
    pay-as-you-go plan, and a German per-second business plan in EUR."""
    peak = TimeBand(name="peak", days=WEEKDAYS, start=time(8), end=time(20))
    uk_business = TariffPlan(
        plan_id="UK-BIZ-300",
        name="Business 300",
        currency="GBP",
        timezone="Europe/London",
        bands=(peak,),
        default_band="offpeak",
        rates={
            UsageKind.VOICE: {
                "peak": Rate(
                    connect_fee=5, price_per_unit=Decimal(12), rate_unit=60, first_increment=60, increment=1
                ),
                "offpeak": Rate(price_per_unit=Decimal(6), rate_unit=60, first_increment=60, increment=1),
            },
            UsageKind.DATA: _every_band(
                ["peak", "offpeak"],
                Rate(
                    price_per_unit=Decimal("1.5"),
                    rate_unit=BYTES_PER_MB,
                    first_increment=BYTES_PER_MB,
                    increment=BYTES_PER_MB,
                ),
            ),
            UsageKind.SMS: _every_band(
                ["peak", "offpeak"],
                Rate(price_per_unit=Decimal(8), rate_unit=1, first_increment=1, increment=1),
            ),
        },
        allowances={
            UsageKind.VOICE: 300 * SECONDS_PER_MINUTE,
            UsageKind.DATA: 5 * BYTES_PER_GB,
            UsageKind.SMS: 100,
        },
    )
    uk_payg = TariffPlan(
        plan_id="UK-PAYG",
        name="Pay As You Go",
        currency="GBP",
        timezone="Europe/London",
        rates={
            UsageKind.VOICE: {
                "standard": Rate(
                    connect_fee=10,
                    price_per_unit=Decimal(20),
                    rate_unit=60,
                    first_increment=60,
                    increment=60,
                    minimum_charge=15,
                )
            },
            UsageKind.DATA: {
                "standard": Rate(
                    price_per_unit=Decimal(5),
                    rate_unit=BYTES_PER_MB,
                    first_increment=BYTES_PER_KB,
                    increment=BYTES_PER_KB,
                )
            },
            UsageKind.SMS: {
                "standard": Rate(price_per_unit=Decimal(10), rate_unit=1, first_increment=1, increment=1)
            },
        },
    )
    de_business = TariffPlan(
        plan_id="DE-BIZ-FLEX",
        name="Business Flex",
        currency="EUR",
        timezone="Europe/Berlin",
        bands=(TimeBand(name="peak", days=WEEKDAYS, start=time(7), end=time(19)),),
        default_band="offpeak",
        rates={
            UsageKind.VOICE: {
                "peak": Rate(price_per_unit=Decimal("9.9"), rate_unit=60, first_increment=1, increment=1),
                "offpeak": Rate(price_per_unit=Decimal("4.9"), rate_unit=60, first_increment=1, increment=1),
            },
            UsageKind.DATA: _every_band(
                ["peak", "offpeak"],
                Rate(
                    price_per_unit=Decimal("0.99"),
                    rate_unit=BYTES_PER_MB,
                    first_increment=100 * BYTES_PER_KB,
                    increment=100 * BYTES_PER_KB,
                ),
            ),
        },
        allowances={UsageKind.VOICE: 1000 * SECONDS_PER_MINUTE, UsageKind.DATA: 20 * BYTES_PER_GB},
    )
    return {p.plan_id: p for p in (uk_business, uk_payg, de_business)}
