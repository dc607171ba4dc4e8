"""What every TM Forum API here shares: camelCase resource models, references, Money, time
filters, pagination with ``X-Total-Count`` / ``X-Result-Count``, and the SQL filter builder the
list endpoints use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
from fastapi import Depends, Request, Response
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from dashboard.context import Edge

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_OFFSET = 2**63 - 1
"""PostgreSQL's OFFSET is a bigint."""


def no_nul(value: str) -> str:
    """``value``, unless it holds a NUL character, which PostgreSQL text cannot: such a value is
    refused (400) before it reaches a query."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _nul_free(value: Any) -> bool:
    """Whether no string anywhere in a JSON value holds a NUL character."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(_nul_free(k) and _nul_free(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_nul_free(v) for v in value)
    return True


ResourceId = Annotated[str, AfterValidator(no_nul)]
"""A resource id in a path: any text PostgreSQL can compare (no NUL)."""


def edge_of(request: Request) -> Edge:
    """The running system the app was built for."""
    edge: Edge = request.app.state.edge
    return edge


EdgeDep = Annotated[Edge, Depends(edge_of)]
"""The running system, as an endpoint's dependency."""


class TmfModel(BaseModel):
    """A TMF resource or sub-resource: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


class TmfRequest(TmfModel):
    """A request body: unknown TMF attributes (``@type``, ``@baseType``, ``href``...) are
    accepted and ignored. No text in it may hold a NUL character: the ids and words of a request
    end up in PostgreSQL, which refuses them."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if not _nul_free(value):
            raise ValueError("text must not contain a NUL character")
        return value


def _plus_sign(value: Any) -> Any:
    # A '+' of a UTC offset that was not percent-encoded arrives as a space in a query string.
    if isinstance(value, str) and " " in value:
        return value.replace(" ", "+")
    return value


def _in_utc_range(value: datetime) -> datetime:
    """``value``, if it is still a date once converted to UTC (``0001-01-01T00:00:00+14:00`` is
    not: the query would fail converting it)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None
    return value


QueryTime = Annotated[AwareDatetime, BeforeValidator(_plus_sign), AfterValidator(_in_utc_range)]
"""A time in a query string: RFC 3339 with a UTC offset (``Z`` or ``+01:00``), within the years
1 to 9999 in UTC too."""

Amount = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
"""A decimal amount, written as a JSON number. Amounts come from integer minor units, so they
have at most a few decimals and print exactly."""

# ISO 4217 currencies whose minor unit is not the hundredth.
_MINOR_DIGITS = {"BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3, "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0}


class Money(BaseModel):
    """TMF ``Money``: an amount and its ISO 4217 currency."""

    unit: str = Field(description="ISO 4217 currency code.")
    value: Amount = Field(description="The amount in the currency's major unit, e.g. 12.34.")

    @classmethod
    def of_minor(cls, minor: int, currency: str) -> Money:
        """The exact amount of ``minor`` minor units (pence, cents) of ``currency``."""
        digits = _MINOR_DIGITS.get(currency, 2)
        return cls(unit=currency, value=Decimal(minor).scaleb(-digits))


class EntityRef(TmfModel):
    """A reference to another resource (TMF ``EntityRef``)."""

    id: str = Field(description="Id of the referred resource.")
    href: str | None = Field(default=None, description="Where to read it, when this API serves it.")
    name: str | None = Field(default=None, description="Name of the referred resource.")
    referred_type: str = Field(alias="@referredType", description="TMF class of the referred resource.")


class Page(BaseModel):
    """TMF630 pagination: ``offset`` and ``limit``. A list answers with ``X-Total-Count`` (how
    many match) and ``X-Result-Count`` (how many this page holds)."""

    model_config = ConfigDict(extra="forbid")

    offset: int = Field(
        default=0,
        ge=0,
        le=MAX_OFFSET,
        description=f"How many matching resources to skip (0 to {MAX_OFFSET}).",
    )
    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Most resources to return (1 to {MAX_LIMIT})."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """Filters are compared in PostgreSQL, whose text cannot hold a NUL character."""
        return no_nul(value) if isinstance(value, str) else value


def href(request: Request, path: str, resource_id: str) -> str:
    """The absolute URL of a resource of this server: ``path`` is its collection's path."""
    return f"{str(request.base_url).rstrip('/')}{path}/{quote(resource_id, safe='')}"


class Where:
    """The WHERE clause of a list query, built from the filters a request gives: each condition
    holds one ``{}`` that becomes the next ``$n`` parameter. Conditions come from this code, values
    only ever travel as parameters."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def add(self, condition: str, value: Any) -> Where:
        """Add ``condition`` with ``value`` as its parameter, unless the filter was not given."""
        if value is not None:
            self.args.append(value)
            self.conditions.append(condition.format(f"${len(self.args)}"))
        return self

    def sql(self) -> str:
        return " AND ".join(self.conditions) or "true"


async def fetch_page(
    pool: asyncpg.Pool, source: str, columns: str, where: Where, order_by: str, page: Page, response: Response
) -> Sequence[asyncpg.Record]:
    """One page of rows of ``SELECT columns FROM source``, with the TMF630 pagination headers set
    on ``response``: ``X-Total-Count`` (how many match) and ``X-Result-Count`` (on this page)."""
    n = len(where.args)
    async with pool.acquire() as conn:
        total = await conn.fetchval(f"SELECT count(*) FROM {source} WHERE {where.sql()}", *where.args)
        rows = await conn.fetch(
            f"SELECT {columns} FROM {source} WHERE {where.sql()} ORDER BY {order_by} "
            f"LIMIT ${n + 1} OFFSET ${n + 2}",
            *where.args,
            page.limit,
            page.offset,
        )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return rows
