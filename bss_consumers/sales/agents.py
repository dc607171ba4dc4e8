"""Sales' consumer: counts orders by product, day and outcome, churn (services terminated) by
product and day, and books invoiced revenue by product and day (usage and SLA credits under their
own headings).

Churn rule: a termination order (action delete) counts once, on the day it is completed, under
the offering of the service it ended. Termination orders are not counted as orders placed,
completed, failed or cancelled: those figures are about new services.
"""

from __future__ import annotations

from collections.abc import Sequence

from events import Envelope, EventPayload
from events.bss import (
    InvoiceIssued,
    InvoiceOverdueDetected,
    OrderItemAction,
    PaymentApplied,
    ProductOrderStateChanged,
)
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-sales"
HANDLES = (ProductOrderStateChanged, InvoiceIssued, PaymentApplied, InvoiceOverdueDetected)
PUBLISHES = ()
USAGE = "usage"
CREDITS = "sla-credits"

_ORDER_COLUMN = {
    "acknowledged": "orders_placed",
    "rejected": "orders_placed",
    "completed": "orders_completed",
    "failed": "orders_failed",
    "cancelled": "orders_cancelled",
}
_CHURN_COLUMN = {"completed": "services_terminated"}


def order_columns(state: str, action: OrderItemAction) -> list[str]:
    """The daily figures an order reaching ``state`` adds one to."""
    if action is OrderItemAction.DELETE:
        return [_CHURN_COLUMN[state]] if state in _CHURN_COLUMN else []
    columns = [_ORDER_COLUMN[state]] if state in _ORDER_COLUMN else []
    if state == "rejected":
        columns.append("orders_failed")  # a rejected order was placed, and failed
    return columns


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Book one order state change or one invoice into the daily figures."""
    data = event.data
    if isinstance(data, ProductOrderStateChanged):
        for column in order_columns(data.state.value, data.action):
            await conn.execute(
                f"""
                INSERT INTO sales_daily (day, offering_id, {column}) VALUES ($1, $2, 1)
                ON CONFLICT (day, offering_id, currency) DO UPDATE SET {column} = sales_daily.{column} + 1
                """,
                event.time.date(),
                data.offering_id,
            )
        return []
    if isinstance(data, InvoiceIssued):
        revenue: dict[str, int] = {}
        for line in data.lines:
            product = line.offering_id or (USAGE if line.kind.value == "usage" else CREDITS)
            revenue[product] = revenue.get(product, 0) + line.amount_minor
        await conn.execute(
            """
            INSERT INTO sales_daily (day, offering_id, currency, revenue_minor)
            SELECT $1, p, $2, r FROM unnest($3::text[], $4::bigint[]) AS u(p, r)
            ON CONFLICT (day, offering_id, currency)
            DO UPDATE SET revenue_minor = sales_daily.revenue_minor + excluded.revenue_minor
            """,
            data.bill_date.date(),
            data.currency,
            list(revenue),
            list(revenue.values()),
        )
        return []
    if isinstance(data, PaymentApplied | InvoiceOverdueDetected):
        return []
    raise Rejected(f"{COMPONENT} does not handle {event.type}")


async def report(conn: Connection, days: int) -> list[dict[str, object]]:
    """The daily figures of the last ``days`` days that have any, newest first."""
    rows = await conn.fetch(
        """
        SELECT day, offering_id,
               sum(orders_placed)::int AS placed, sum(orders_completed)::int AS completed,
               sum(orders_failed)::int AS failed, sum(orders_cancelled)::int AS cancelled,
               sum(services_terminated)::int AS terminated,
               string_agg(DISTINCT nullif(currency, ''), ',') AS currency,
               sum(revenue_minor)::bigint AS revenue
        FROM sales_daily WHERE day > current_date - $1::int
        GROUP BY day, offering_id ORDER BY day DESC, offering_id
        """,
        days,
    )
    return [dict(r) for r in rows]
