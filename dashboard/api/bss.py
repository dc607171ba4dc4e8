"""BSS resources: TMF622 product orders, TMF678 customer bills, TMF635 usage, read from the BSS
schema only.

A new order or a cancellation is not written here: it is published through the order portal, as
``ossbss order place`` does, and the ordering consumer takes it from there. The API checks first
what it can check at once (the body, the customer, the offering), so that a caller gets a 400
rather than an order rejected a moment later.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import Field, field_validator

from bss_consumers.ordering import portal
from bss_consumers.ordering.agents import CANCELLABLE
from dashboard.api.errors import ERROR_RESPONSES, ApiError, TmfError, bad_request, not_found, published
from dashboard.api.tmf import (
    EdgeDep,
    EntityRef,
    Money,
    Page,
    QueryTime,
    ResourceId,
    TmfModel,
    TmfRequest,
    Where,
    fetch_page,
    href,
)
from events.bss import InvoiceLineKind, InvoiceState, ProductOrderState
from events.network import UsageKind

ORDERS = "/tmf-api/productOrderingManagement/v5/productOrder"
CANCEL_ORDERS = "/tmf-api/productOrderingManagement/v5/cancelProductOrder"
BILLS = "/tmf-api/customerBillManagement/v5/customerBill"
USAGE = "/tmf-api/usageManagement/v5/usage"

router = APIRouter(responses=ERROR_RESPONSES)

T = TypeVar("T")


async def bss_pool(edge: EdgeDep) -> asyncpg.Pool:
    """The BSS schema's pool: the only data this API reads."""
    return edge.bss_pool


BssPool = Annotated[asyncpg.Pool, Depends(bss_pool)]


# TMF622 product orders --------------------------------------------------------------------------

A_END, Z_END = "aEnd", "zEnd"


def _end_of(label: str | None) -> str | None:
    """``aEnd`` or ``zEnd`` for a place role or characteristic name that names a service end
    (``aEnd``, ``A-End``, ``a_end`` ...), else None."""
    folded = re.sub(r"[^a-z]", "", (label or "").lower())
    return {"aend": A_END, "zend": Z_END}.get(folded)


class IdRef(TmfRequest):
    """A reference by id."""

    id: str = Field(min_length=1, max_length=64, description="Id of the referred entity.")


class PartyInput(TmfRequest):
    """A related party: ``{"id", "role"}`` (TMF622 v4) or ``{"role", "partyOrPartyRole": {"id"}}``
    (v5). The party with role ``customer`` places the order."""

    id: str | None = Field(default=None, description="Party id (v4 form).")
    role: str | None = Field(default=None, description="customer for the ordering customer.")
    party_or_party_role: IdRef | None = Field(default=None, description="The party (v5 form).")

    def party_id(self) -> str | None:
        return self.party_or_party_role.id if self.party_or_party_role is not None else self.id


class PlaceInput(TmfRequest):
    """A place of the product: ``{"id", "role"}`` (v4) or ``{"role", "place": {"id"}}`` (v5);
    role ``aEnd`` or ``zEnd``."""

    id: str | None = Field(default=None, description="Site id (v4 form).")
    role: str | None = Field(default=None, description="aEnd or zEnd.")
    place: IdRef | None = Field(default=None, description="The site (v5 form).")

    def site_id(self) -> str | None:
        return self.place.id if self.place is not None else self.id


class CharacteristicInput(TmfRequest):
    """A product characteristic; ``aEnd`` and ``zEnd`` name the two sites."""

    name: str = Field(description="Characteristic name.")
    value: Any = Field(default=None, description="Its value.")


class ProductInput(TmfRequest):
    """The product ordered: where it starts and ends."""

    place: list[PlaceInput] = Field(default_factory=list, description="aEnd and zEnd sites.")
    product_characteristic: list[CharacteristicInput] = Field(
        default_factory=list, description="Or: characteristics aEnd and zEnd whose values are site ids."
    )


class OrderItemInput(TmfRequest):
    """The one order item: an offering to add between two sites."""

    id: str = Field(default="1", max_length=64, description="Item id within the order.")
    action: str = Field(default="add", description="Only add is supported.")
    quantity: int = Field(default=1, description="Only 1 is supported.")
    product_offering: IdRef = Field(description="The product offering ordered.")
    product: ProductInput | None = Field(default=None, description="Its sites, as places or characteristics.")


class ProductOrderCreate(TmfRequest):
    """TMF622 ``ProductOrder_Create``: a customer, and one item naming an offering and two sites."""

    related_party: list[PartyInput] = Field(min_length=1, description="Needs the customer (role customer).")
    product_order_item: list[OrderItemInput] = Field(min_length=1, description="Exactly one item.")
    description: str | None = Field(default=None, description="Free text, not kept.")

    @field_validator("product_order_item")
    @classmethod
    def _one_item(cls, items: list[OrderItemInput]) -> list[OrderItemInput]:
        if len(items) != 1:
            raise ValueError("an order holds exactly one productOrderItem here")
        item = items[0]
        if item.action != "add":
            raise ValueError(f"productOrderItem action {item.action!r} is not supported, only 'add'")
        if item.quantity != 1:
            raise ValueError("productOrderItem quantity must be 1")
        return items


def _customer_of(order: ProductOrderCreate) -> str:
    customers = {
        p.party_id()
        for p in order.related_party
        if (p.role or "").lower() == "customer" and p.party_id() is not None
    }
    if len(customers) != 1:
        raise bad_request(
            "relatedParty needs exactly one party with role 'customer' and its id", "invalidBody"
        )
    return str(customers.pop())


def _sites_of(item: OrderItemInput) -> tuple[str, str]:
    """The aEnd and zEnd site ids, from the product's places or characteristics."""
    sites: dict[str, set[str]] = {A_END: set(), Z_END: set()}
    product = item.product or ProductInput()
    for place in product.place:
        end, site = _end_of(place.role), place.site_id()
        if end is not None and site:
            sites[end].add(site)
    for characteristic in product.product_characteristic:
        end = _end_of(characteristic.name)
        if end is not None:
            if not isinstance(characteristic.value, str) or not characteristic.value:
                raise bad_request(
                    f"productCharacteristic {characteristic.name!r} must be a site id", "invalidBody"
                )
            sites[end].add(characteristic.value)
    for end, found in sites.items():
        if len(found) != 1:
            raise bad_request(
                f"productOrderItem.product needs exactly one {end} site, as a place with role {end!r} "
                f"or a productCharacteristic named {end!r} (found {len(found)})",
                "invalidBody",
            )
    a_site, z_site = sites[A_END].pop(), sites[Z_END].pop()
    if a_site == z_site:
        raise bad_request("a service needs two different sites: aEnd and zEnd are the same", "invalidBody")
    return a_site, z_site


class RelatedParty(TmfModel):
    """A party of the order."""

    id: str = Field(description="Party id.")
    role: str = Field(description="customer.")
    referred_type: str = Field(default="Customer", alias="@referredType", description="TMF class.")


class RelatedPlace(TmfModel):
    """A site the product runs between."""

    id: str = Field(description="Site id.")
    role: str = Field(description="aEnd or zEnd.")
    referred_type: str = Field(default="GeographicSite", alias="@referredType", description="TMF class.")


class Product(TmfModel):
    """The product the item provides."""

    type_: str = Field(default="Product", alias="@type", description="TMF class.")
    place: list[RelatedPlace] = Field(description="Its two sites.")
    realizing_service: list[EntityRef] | None = Field(
        default=None, description="The network service providing it, once requested from OSS."
    )


class ProductOrderItem(TmfModel):
    """TMF622 ``ProductOrderItem``."""

    id: str = Field(description="Item id within the order.")
    action: str = Field(default="add", description="add (a new service) or delete (ending one).")
    quantity: int = Field(default=1, description="1.")
    product_offering: EntityRef = Field(description="The offering ordered.")
    product: Product = Field(description="What it provides, and where.")


class OrderNote(TmfModel):
    """TMF ``Note``."""

    author: str = Field(default="bss-ordering", description="Who wrote it.")
    text: str = Field(description="Why the order failed, was rejected or was cancelled.")


class ProductOrder(TmfModel):
    """TMF622 ``ProductOrder``."""

    id: str = Field(description="Order id.")
    href: str = Field(description="Where to read it.")
    type_: str = Field(default="ProductOrder", alias="@type", description="TMF class.")
    state: ProductOrderState = Field(description="TMF622 state.")
    order_date: datetime = Field(description="When the customer ordered.")
    creation_date: datetime = Field(description="When the order was placed.")
    completion_date: datetime | None = Field(default=None, description="When it was completed.")
    cancellation_date: datetime | None = Field(default=None, description="When it was cancelled.")
    cancellation_reason: str | None = Field(default=None, description="Why it was cancelled.")
    related_party: list[RelatedParty] = Field(description="The customer.")
    product_order_item: list[ProductOrderItem] = Field(description="The one item.")
    note: list[OrderNote] | None = Field(default=None, description="Why it failed or was rejected.")


class OrderFilter(Page):
    """Filters of ``GET /productOrder``; all given filters must hold."""

    state: ProductOrderState | None = Field(default=None, description="TMF622 state.")
    customer_id: str | None = Field(default=None, alias="relatedParty.id", description="The customer's id.")
    ordered_after: QueryTime | None = Field(
        default=None, alias="orderDate.gt", description="Ordered after this time (RFC 3339, with offset)."
    )
    ordered_before: QueryTime | None = Field(
        default=None, alias="orderDate.lt", description="Ordered before this time (RFC 3339, with offset)."
    )


_ORDER_SOURCE = "product_orders o LEFT JOIN product_offerings p ON p.id = o.offering_id"
_ORDER_COLUMNS = """
    o.id, o.customer_id, o.offering_id, p.name AS offering_name, o.a_site_id, o.z_site_id, o.state,
    o.service_id, o.reason, o.requested_at, o.updated_at,
    o.action
"""


def _order(
    request: Request,
    *,
    order_id: str,
    state: str,
    customer_id: str,
    offering_id: str,
    offering_name: str | None,
    a_site_id: str,
    z_site_id: str,
    requested_at: datetime,
    updated_at: datetime | None = None,
    service_id: str | None = None,
    reason: str | None = None,
    action: str = "add",
) -> ProductOrder:
    cancelled = state == ProductOrderState.CANCELLED
    return ProductOrder(
        id=order_id,
        href=href(request, ORDERS, order_id),
        state=ProductOrderState(state),
        order_date=requested_at,
        creation_date=requested_at,
        completion_date=updated_at if state == ProductOrderState.COMPLETED else None,
        cancellation_date=updated_at if cancelled else None,
        cancellation_reason=reason if cancelled else None,
        related_party=[RelatedParty(id=customer_id, role="customer")],
        product_order_item=[
            ProductOrderItem(
                id="1",
                action=action,
                product_offering=EntityRef(
                    id=offering_id, name=offering_name, referred_type="ProductOffering"
                ),
                product=Product(
                    place=[
                        RelatedPlace(id=site, role=role)
                        for site, role in ((a_site_id, A_END), (z_site_id, Z_END))
                        if site
                    ],
                    realizing_service=[EntityRef(id=service_id, referred_type="Service")]
                    if service_id
                    else None,
                ),
            )
        ],
        note=[OrderNote(text=reason)] if reason and not cancelled else None,
    )


def _order_of_row(request: Request, row: asyncpg.Record) -> ProductOrder:
    return _order(
        request,
        order_id=row["id"],
        state=row["state"],
        customer_id=row["customer_id"],
        offering_id=row["offering_id"],
        offering_name=row["offering_name"],
        a_site_id=row["a_site_id"],
        z_site_id=row["z_site_id"],
        requested_at=row["requested_at"],
        updated_at=row["updated_at"],
        service_id=row["service_id"],
        reason=row["reason"],
        action=row["action"],
    )


@router.get(
    ORDERS,
    response_model=list[ProductOrder],
    response_model_exclude_none=True,
    tags=["TMF622 Product Ordering"],
    summary="List product orders",
)
async def list_orders(
    request: Request, response: Response, pool: BssPool, query: Annotated[OrderFilter, Query()]
) -> list[ProductOrder]:
    """Product orders, newest first, filtered and paginated (``X-Total-Count``, ``X-Result-Count``)."""
    where = (
        Where()
        .add("o.state = {}", query.state)
        .add("o.customer_id = {}", query.customer_id)
        .add("o.requested_at > {}", query.ordered_after)
        .add("o.requested_at < {}", query.ordered_before)
    )
    rows = await fetch_page(
        pool, _ORDER_SOURCE, _ORDER_COLUMNS, where, "o.requested_at DESC, o.id", query, response
    )
    return [_order_of_row(request, r) for r in rows]


async def _order_row(pool: asyncpg.Pool, order_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM {_ORDER_SOURCE} WHERE o.id = $1", order_id)
    if row is None:
        raise not_found("product order", order_id)
    return row


@router.get(
    ORDERS + "/{order_id}",
    response_model=ProductOrder,
    response_model_exclude_none=True,
    tags=["TMF622 Product Ordering"],
    summary="Read one product order",
)
async def get_order(request: Request, order_id: ResourceId, pool: BssPool) -> ProductOrder:
    """One product order. An order just placed shows here once ordering has taken it, a moment
    after the POST."""
    return _order_of_row(request, await _order_row(pool, order_id))


@router.post(
    ORDERS,
    response_model=ProductOrder,
    response_model_exclude_none=True,
    status_code=201,
    tags=["TMF622 Product Ordering"],
    summary="Place a product order",
)
async def create_order(
    request: Request,
    response: Response,
    order: Annotated[ProductOrderCreate, Body()],
    pool: BssPool,
    edge: EdgeDep,
) -> ProductOrder:
    """Check the order (one item, an existing customer and offering, two different sites), publish
    it, and answer 201 with the order ``acknowledged`` and its ``Location``. Ordering then asks
    OSS for the service; follow the order's state with GET or the hub."""
    customer_id = _customer_of(order)
    item = order.product_order_item[0]
    a_site, z_site = _sites_of(item)
    offering_id = item.product_offering.id
    async with pool.acquire() as conn:
        customer = await conn.fetchval("SELECT 1 FROM customers WHERE id = $1", customer_id)
        offering = await conn.fetchval("SELECT name FROM product_offerings WHERE id = $1", offering_id)
    if customer is None:
        raise bad_request(f"unknown customer {customer_id!r}", "invalidBody")
    if offering is None:
        raise bad_request(f"unknown product offering {offering_id!r}", "invalidBody")
    placed = await published(
        portal.place_order(edge.bus.publisher(portal.COMPONENT), customer_id, offering_id, a_site, z_site)
    )
    created = _order(
        request,
        order_id=placed.order_id,
        state=ProductOrderState.ACKNOWLEDGED,
        customer_id=customer_id,
        offering_id=offering_id,
        offering_name=offering,
        a_site_id=a_site,
        z_site_id=z_site,
        requested_at=placed.requested_at,
    )
    response.headers["Location"] = created.href
    return created


class CancelProductOrderCreate(TmfRequest):
    """TMF622 ``CancelProductOrder_Create``."""

    product_order: IdRef = Field(description="The order to cancel.")
    cancellation_reason: str = Field(default="", max_length=500, description="Why, in the customer's words.")


class CancelProductOrder(TmfModel):
    """TMF622 ``CancelProductOrder`` task."""

    id: str = Field(description="Id of the task.")
    type_: str = Field(default="CancelProductOrder", alias="@type", description="TMF class.")
    state: str = Field(description="acknowledged (requested), or done (the order was already cancelled).")
    product_order: EntityRef = Field(description="The order.")
    cancellation_reason: str = Field(description="Why.")


@router.post(
    CANCEL_ORDERS,
    response_model=CancelProductOrder,
    response_model_exclude_none=True,
    status_code=201,
    responses={409: {"model": TmfError, "description": "Too late to cancel."}},
    tags=["TMF622 Product Ordering"],
    summary="Cancel a product order",
)
async def cancel_order(
    request: Request,
    task: Annotated[CancelProductOrderCreate, Body()],
    pool: BssPool,
    edge: EdgeDep,
) -> CancelProductOrder:
    """Ask ordering to cancel an order that is not completed yet (409 once it is too late)."""
    order_id = task.product_order.id
    row = await _order_row(pool, order_id)
    state = row["state"]
    if state != ProductOrderState.CANCELLED and state not in CANCELLABLE:
        raise ApiError(409, f"order {order_id} is {state}: it can no longer be cancelled")
    if state != ProductOrderState.CANCELLED:
        await published(
            portal.cancel_order(edge.bus.publisher(portal.COMPONENT), order_id, task.cancellation_reason)
        )
    return CancelProductOrder(
        id=str(uuid.uuid4()),
        state="done" if state == ProductOrderState.CANCELLED else "acknowledged",
        product_order=EntityRef(
            id=order_id, href=href(request, ORDERS, order_id), referred_type="ProductOrder"
        ),
        cancellation_reason=task.cancellation_reason,
    )


# TMF678 customer bills ----------------------------------------------------------------------------


class BillingPeriod(TmfModel):
    """The period a bill covers: first and last day, both included."""

    start_date_time: date = Field(description="First day of the period.")
    end_date_time: date = Field(description="Last day of the period (included).")


class TaxItem(TmfModel):
    """TMF678 ``TaxItem``."""

    tax_category: str = Field(default="VAT", description="Kind of tax.")
    tax_amount: Money = Field(description="Tax on the bill.")


class AppliedCustomerBillingRate(TmfModel):
    """TMF678 ``AppliedCustomerBillingRate``: one line of the bill."""

    id: str = Field(description="Bill id and line number.")
    type_: str = Field(default="AppliedCustomerBillingRate", alias="@type", description="TMF class.")
    rate_type: InvoiceLineKind = Field(alias="type", description="recurring, usage or credit.")
    name: str = Field(description="What the line is for.")
    date: datetime = Field(description="When it was billed: the bill date.")
    is_billed: bool = Field(default=True, description="Always true: lines exist on issued bills only.")
    tax_excluded_amount: Money = Field(description="Tax-excluded amount; credits are negative.")
    product_offering: EntityRef | None = Field(default=None, description="Offering of a recurring line.")


class CustomerBill(TmfModel):
    """TMF678 ``CustomerBill``: an issued invoice, never changed afterwards except by payments."""

    id: str = Field(description="Bill id.")
    href: str = Field(description="Where to read it.")
    type_: str = Field(default="CustomerBill", alias="@type", description="TMF class.")
    bill_no: str = Field(description="Bill number, without gaps across all bills.")
    bill_date: datetime = Field(description="When it was issued.")
    billing_period: BillingPeriod = Field(description="The period billed.")
    payment_due_date: date = Field(description="Day by which it is to be paid.")
    state: InvoiceState = Field(description="new, partiallyPaid or settled.")
    category: str = Field(default="normal", description="normal.")
    run_type: str = Field(default="onCycle", description="onCycle: issued by a bill run.")
    billing_account: EntityRef = Field(description="The account billed.")
    amount_due: Money = Field(description="What the bill asks for (tax included).")
    remaining_amount: Money = Field(description="What is still to be paid after payments.")
    tax_excluded_amount: Money = Field(description="Total before tax.")
    tax_included_amount: Money = Field(description="Total with tax.")
    tax_item: list[TaxItem] = Field(description="The tax.")
    applied_customer_billing_rate: list[AppliedCustomerBillingRate] | None = Field(
        default=None, description="The bill's lines (single reads only)."
    )


class BillFilter(Page):
    """Filters of ``GET /customerBill``; all given filters must hold."""

    state: InvoiceState | None = Field(default=None, description="new, partiallyPaid or settled.")
    billing_account_id: str | None = Field(default=None, alias="billingAccount.id", description="Account id.")
    billed_after: QueryTime | None = Field(
        default=None, alias="billDate.gt", description="Issued after this time (RFC 3339, with offset)."
    )
    billed_before: QueryTime | None = Field(
        default=None, alias="billDate.lt", description="Issued before this time (RFC 3339, with offset)."
    )


_BILL_COLUMNS = """
    id, bill_number, account_id, period_start, period_end, bill_date, payment_due_date, currency,
    tax_excluded_minor, tax_minor, tax_included_minor, paid_minor, state
"""


def _bill(request: Request, row: asyncpg.Record) -> CustomerBill:
    currency = row["currency"]
    return CustomerBill(
        id=row["id"],
        href=href(request, BILLS, row["id"]),
        bill_no=str(row["bill_number"]),
        bill_date=row["bill_date"],
        billing_period=BillingPeriod(start_date_time=row["period_start"], end_date_time=row["period_end"]),
        payment_due_date=row["payment_due_date"],
        state=row["state"],
        billing_account=EntityRef(id=row["account_id"], referred_type="BillingAccount"),
        amount_due=Money.of_minor(row["tax_included_minor"], currency),
        remaining_amount=Money.of_minor(row["tax_included_minor"] - row["paid_minor"], currency),
        tax_excluded_amount=Money.of_minor(row["tax_excluded_minor"], currency),
        tax_included_amount=Money.of_minor(row["tax_included_minor"], currency),
        tax_item=[TaxItem(tax_amount=Money.of_minor(row["tax_minor"], currency))],
    )


def _line(bill: CustomerBill, currency: str, row: asyncpg.Record) -> AppliedCustomerBillingRate:
    offering = row["offering_id"]
    return AppliedCustomerBillingRate(
        id=f"{bill.id}-{row['line_no']}",
        rate_type=row["kind"],
        name=row["description"],
        date=bill.bill_date,
        tax_excluded_amount=Money.of_minor(row["amount_minor"], currency),
        product_offering=EntityRef(id=offering, referred_type="ProductOffering") if offering else None,
    )


@router.get(
    BILLS,
    response_model=list[CustomerBill],
    response_model_exclude_none=True,
    tags=["TMF678 Customer Bill Management"],
    summary="List customer bills",
)
async def list_bills(
    request: Request, response: Response, pool: BssPool, query: Annotated[BillFilter, Query()]
) -> list[CustomerBill]:
    """Issued bills, newest first, filtered and paginated (``X-Total-Count``, ``X-Result-Count``)."""
    where = (
        Where()
        .add("state = {}", query.state)
        .add("account_id = {}", query.billing_account_id)
        .add("bill_date > {}", query.billed_after)
        .add("bill_date < {}", query.billed_before)
    )
    rows = await fetch_page(
        pool, "invoices", _BILL_COLUMNS, where, "bill_date DESC, bill_number DESC", query, response
    )
    return [_bill(request, r) for r in rows]


@router.get(
    BILLS + "/{bill_id}",
    response_model=CustomerBill,
    response_model_exclude_none=True,
    tags=["TMF678 Customer Bill Management"],
    summary="Read one customer bill",
)
async def get_bill(request: Request, bill_id: ResourceId, pool: BssPool) -> CustomerBill:
    """One bill, with its lines (``appliedCustomerBillingRate``)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT {_BILL_COLUMNS} FROM invoices WHERE id = $1", bill_id)
        if row is None:
            raise not_found("customer bill", bill_id)
        lines = await conn.fetch(
            "SELECT line_no, kind, description, offering_id, amount_minor FROM invoice_lines "
            "WHERE invoice_id = $1 ORDER BY line_no",
            bill_id,
        )
    bill = _bill(request, row)
    bill.applied_customer_billing_rate = [_line(bill, row["currency"], line) for line in lines]
    return bill


# TMF635 usage -----------------------------------------------------------------------------------


class UsageStatus(StrEnum):
    """TMF635 ``UsageStatusType``. Rating leaves each record rated or rejected; a rated record
    on an issued bill is billed. The other values are valid filters that match nothing here."""

    RECEIVED = "received"
    REJECTED = "rejected"
    RECYCLED = "recycled"
    GUIDED = "guided"
    RATED = "rated"
    RERATED = "rerated"
    BILLED = "billed"


_UNITS = {UsageKind.VOICE: "seconds", UsageKind.DATA: "bytes", UsageKind.SMS: "messages"}


class UsageCharacteristic(TmfModel):
    """TMF635 ``UsageCharacteristic``: one measured or derived value of the usage."""

    name: str = Field(description="serviceId, quantity, unit, chargedQuantity, allowanceUsed, ...")
    value: str | int = Field(description="The value.")
    value_type: str = Field(description="string or integer.")


class RatedProductUsage(TmfModel):
    """TMF635 ``RatedProductUsage``: what rating charged for the usage."""

    type_: str = Field(default="RatedProductUsage", alias="@type", description="TMF class.")
    is_billed: bool = Field(description="Whether an issued bill holds it.")
    rating_date: datetime = Field(description="When it was rated.")
    rating_amount_type: str = Field(default="total", description="total.")
    usage_rating_tag: str | None = Field(default=None, description="Rating band: peak or offPeak.")
    tax_excluded_rating_amount: Money = Field(description="The charge, tax excluded.")


class Usage(TmfModel):
    """TMF635 ``Usage``: one usage record and what rating made of it."""

    id: str = Field(description="Usage id (mediation's).")
    href: str = Field(description="Where to read it.")
    type_: str = Field(default="Usage", alias="@type", description="TMF class.")
    usage_date: datetime = Field(description="When the usage started.")
    usage_type: UsageKind = Field(description="voice, data or sms.")
    status: UsageStatus = Field(description="rated, billed or rejected.")
    description: str | None = Field(default=None, description="Why it was rejected.")
    usage_characteristic: list[UsageCharacteristic] = Field(description="Service, quantity and unit, ...")
    rated_product_usage: list[RatedProductUsage] | None = Field(default=None, description="Its rating.")


class UsageFilter(Page):
    """Filters of ``GET /usage``; all given filters must hold."""

    status: UsageStatus | None = Field(default=None, description="rated, billed or rejected.")
    usage_type: UsageKind | None = Field(default=None, alias="usageType", description="voice, data or sms.")
    service_id: str | None = Field(default=None, alias="serviceId", description="The service used.")
    used_after: QueryTime | None = Field(
        default=None, alias="usageDate.gt", description="Started after this time (RFC 3339, with offset)."
    )
    used_before: QueryTime | None = Field(
        default=None, alias="usageDate.lt", description="Started before this time (RFC 3339, with offset)."
    )


_USAGE_STATUS = (
    "CASE WHEN state = 'rejected' THEN 'rejected' WHEN invoice_id IS NOT NULL THEN 'billed' ELSE 'rated' END"
)
_USAGE_COLUMNS = f"""
    usage_id, service_id, account_id, usage_kind, quantity, start_time, ({_USAGE_STATUS}) AS status,
    reason, charged_quantity, allowance_used, amount_minor, currency, band, received_at
"""


def _usage(request: Request, row: asyncpg.Record) -> Usage:
    kind = UsageKind(row["usage_kind"])
    values: list[tuple[str, str | int | None]] = [
        ("serviceId", row["service_id"]),
        ("quantity", row["quantity"]),
        ("unit", _UNITS[kind]),
        ("billingAccountId", row["account_id"]),
        ("chargedQuantity", row["charged_quantity"]),
        ("allowanceUsed", row["allowance_used"]),
    ]
    rated = None
    if row["amount_minor"] is not None:
        rated = [
            RatedProductUsage(
                is_billed=row["status"] == UsageStatus.BILLED,
                rating_date=row["received_at"],
                usage_rating_tag=row["band"],
                tax_excluded_rating_amount=Money.of_minor(row["amount_minor"], row["currency"]),
            )
        ]
    return Usage(
        id=row["usage_id"],
        href=href(request, USAGE, row["usage_id"]),
        usage_date=row["start_time"],
        usage_type=kind,
        status=row["status"],
        description=row["reason"],
        usage_characteristic=[
            UsageCharacteristic(
                name=name, value=value, value_type="integer" if isinstance(value, int) else "string"
            )
            for name, value in values
            if value is not None
        ],
        rated_product_usage=rated,
    )


@router.get(
    USAGE,
    response_model=list[Usage],
    response_model_exclude_none=True,
    tags=["TMF635 Usage Management"],
    summary="List usage",
)
async def list_usage(
    request: Request, response: Response, pool: BssPool, query: Annotated[UsageFilter, Query()]
) -> list[Usage]:
    """Usage records as rating left them, latest usage first, filtered and paginated
    (``X-Total-Count``, ``X-Result-Count``)."""
    where = (
        Where()
        .add(f"({_USAGE_STATUS}) = {{}}", query.status)
        .add("usage_kind = {}", query.usage_type)
        .add("service_id = {}", query.service_id)
        .add("start_time > {}", query.used_after)
        .add("start_time < {}", query.used_before)
    )
    rows = await fetch_page(
        pool, "rated_usage", _USAGE_COLUMNS, where, "start_time DESC, usage_id", query, response
    )
    return [_usage(request, r) for r in rows]


@router.get(
    USAGE + "/{usage_id}",
    response_model=Usage,
    response_model_exclude_none=True,
    tags=["TMF635 Usage Management"],
    summary="Read one usage record",
)
async def get_usage(request: Request, usage_id: ResourceId, pool: BssPool) -> Usage:
    """One usage record and its rating."""
    row = await pool.fetchrow(f"SELECT {_USAGE_COLUMNS} FROM rated_usage WHERE usage_id = $1", usage_id)
    if row is None:
        raise not_found("usage", usage_id)
    return _usage(request, row)
