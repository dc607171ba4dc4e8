"""Billing's consumer: when OSS reports a service restored, each customer holding it is granted
the SLA credit of their tier for the outage's length, once, to go on their next invoice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from bss_consumers.billing.invoicing import sla_credit
from events import Envelope, EventPayload, new_event
from events.bss import InvoiceIssued, SlaCreditGranted, SlaTier
from events.oss import ServiceOutageStarted, ServiceRestored
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-billing"
SOURCE = "/bss/billing"
HANDLES = (ServiceOutageStarted, ServiceRestored)
PUBLISHES = (SlaCreditGranted, InvoiceIssued)
log = structlog.get_logger(__name__)


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Grant the SLA credits of a restored service; an outage that has just started owes
    nothing yet."""
    data = event.data
    if isinstance(data, ServiceOutageStarted):
        return []
    if not isinstance(data, ServiceRestored):
        raise Rejected(f"{COMPONENT} does not handle {event.type}")
    rows = await conn.fetch(
        """
        SELECT c.id AS customer_id, c.sla_tier, a.id AS account_id, a.currency,
               o.recurring_price_minor
        FROM customer_services cs
        JOIN customers c ON c.id = cs.customer_id
        JOIN accounts a ON a.customer_id = c.id
        JOIN product_offerings o ON o.name = cs.product_name AND o.currency = a.currency
        WHERE cs.service_id = $1 AND c.id = ANY($2::text[])
        """,
        data.service_id,
        list(data.customer_ids),
    )
    now = datetime.now(UTC)
    out: list[Envelope[EventPayload]] = []
    for r in rows:
        amount = sla_credit(r["recurring_price_minor"], r["sla_tier"], data.duration_seconds)
        if amount == 0:
            continue
        credit_id = f"CR-{uuid.uuid4().hex[:12]}"
        inserted = await conn.fetchval(
            """
            INSERT INTO sla_credits (id, account_id, service_id, outage_id, sla_tier, outage_seconds,
                                     amount_minor, currency, granted_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (outage_id, service_id) DO NOTHING RETURNING 1
            """,
            credit_id,
            r["account_id"],
            data.service_id,
            data.outage_id,
            r["sla_tier"],
            data.duration_seconds,
            amount,
            r["currency"],
            now,
        )
        if not inserted:
            continue
        out.append(
            new_event(
                SlaCreditGranted(
                    credit_id=credit_id,
                    account_id=r["account_id"],
                    customer_id=r["customer_id"],
                    service_id=data.service_id,
                    outage_id=data.outage_id,
                    sla_tier=SlaTier(r["sla_tier"]),
                    outage_seconds=data.duration_seconds,
                    amount_minor=amount,
                    currency=r["currency"],
                    granted_at=now,
                ),
                source=SOURCE,
                subject=r["account_id"],
                cause=event,
            )
        )
    return out
