"""Exact money: integer minor units of one ISO 4217 currency.

The one rounding rule: an exact (rational) amount in minor units is rounded to a whole minor
unit with round-half-to-even, once per rated record, on its total. Intermediate values (prices
per rate unit, fractions of a unit) stay exact and are never rounded. Floats are refused
everywhere, because binary floating point cannot represent most decimal prices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

_CURRENCY = re.compile(r"^[A-Z]{3}$")

ExactAmount = Fraction | Decimal | int
"""An exact amount in minor units, before rounding."""


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were added or compared."""


def round_minor(value: ExactAmount) -> int:
    """Round an exact amount of minor units to a whole minor unit, half to even.

    This is the only rounding rule of rating: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 1.4999 -> 1.
    """
    if isinstance(value, bool) or not isinstance(value, Fraction | Decimal | int):
        raise TypeError(f"an exact amount must be an int, Decimal or Fraction, not {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"an amount must be finite, not {value}")
    # Fraction's round() with no digits is round-half-to-even, and exact for any Decimal.
    return round(Fraction(value))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one currency, in integer minor units (pence, cents).

    Equality is structural (0 GBP != 0 EUR); addition, subtraction and ordering across currencies
    raise `CurrencyMismatchError`.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError(
                f"Money.minor must be an int number of minor units, not {type(self.minor).__name__}"
            )
        if not isinstance(self.currency, str) or not _CURRENCY.match(self.currency):
            raise ValueError(f"currency must be an ISO 4217 code like 'GBP', not {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in `currency`."""
        return cls(0, currency)

    @classmethod
    def from_exact(cls, value: ExactAmount, currency: str) -> Money:
        """Money from an exact amount of minor units, rounded by `round_minor`."""
        return cls(round_minor(value), currency)

    def _same_currency(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot {op} {self.currency} and {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._same_currency(other, "add").minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._same_currency(other, "subtract").minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same_currency(other, "compare").minor

    def __le__(self, other: Money) -> bool:
        return self.minor <= self._same_currency(other, "compare").minor

    def __gt__(self, other: Money) -> bool:
        return self.minor > self._same_currency(other, "compare").minor

    def __ge__(self, other: Money) -> bool:
        return self.minor >= self._same_currency(other, "compare").minor

    def __str__(self) -> str:
        return f"{self.minor} {self.currency} minor units"
