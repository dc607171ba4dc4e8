"""Billing's consumer: when OSS reports a service restored, each customer holding it is granted
the SLA credit for the outage's length, once, to go on their next invoice. The tier is the SLA
tier of the offering the service was ordered with when it has one, else the customer's (the
offering rule of `catalog.offerings`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

import structlog

from bss_consumers.billing.invoicing import sla_credit
from events import Envelope, EventPayload, new_event
from events.bss import (
    InvoiceIssued,
    InvoiceOverdueDetected,
    InvoiceState,
    PaymentApplied,
    PaymentReceived,
    SlaCreditGranted,
    SlaTier,
)
from events.oss import ServiceOutageStarted, ServiceRerouted, ServiceRestored
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-billing"
SOURCE = "/bss/billing"
HANDLES = (ServiceOutageStarted, ServiceRerouted, ServiceRestored, PaymentReceived)
PUBLISHES = (SlaCreditGranted, InvoiceIssued, PaymentApplied, InvoiceOverdueDetected)
log = structlog.get_logger(__name__)


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Grant the SLA credits of a restored service; an outage that has just started owes
    nothing yet."""
    data = event.data
    if isinstance(data, ServiceOutageStarted | ServiceRerouted):
        # Credits are for time down. A rerouted service stayed up, on a backup path, and earns none.
        return []
    if isinstance(data, PaymentReceived):
        return await apply_payment(conn, event, data)
    if not isinstance(data, ServiceRestored):
        raise Rejected(f"{COMPONENT} does not handle {event.type}")
    rows = await conn.fetch(
        """
        SELECT c.id AS customer_id, coalesce(CASE WHEN cs.offering_id IS NOT NULL THEN o.sla_tier END, c.sla_tier) AS sla_tier, a.id AS account_id,
               a.currency, o.recurring_price_minor
        FROM customer_services cs
        JOIN customers c ON c.id = cs.customer_id
        JOIN accounts a ON a.customer_id = c.id
        JOIN product_offerings o
          ON (o.id = cs.offering_id OR (cs.offering_id IS NULL AND o.name = cs.product_name))
         AND o.currency = a.currency
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


async def apply_payment(
    conn: Connection, cause: Envelope[EventPayload], payment: PaymentReceived
) -> list[Envelope[EventPayload]]:
    """Settle the account's unpaid invoices with a payment, oldest first; what is left over is
    kept on the payment (``unapplied_minor``): a later bill run does not draw on it yet. A payment
    seen before changes nothing."""
    currency = await conn.fetchval("SELECT currency FROM accounts WHERE id = $1", payment.account_id)
    if currency is None:
        raise Rejected(f"no account {payment.account_id}")
    if currency != payment.currency:
        raise Rejected(
            f"account {payment.account_id} is billed in {currency}, the payment is in {payment.currency}"
        )
    new = await conn.fetchval(
        """
        INSERT INTO payments (id, account_id, amount_minor, currency, received_at, unapplied_minor)
        VALUES ($1, $2, $3, $4, $5, $3) ON CONFLICT (id) DO NOTHING RETURNING 1
        """,
        payment.payment_id,
        payment.account_id,
        payment.amount_minor,
        payment.currency,
        payment.received_at,
    )
    if not new:
        return []
    left = payment.amount_minor
    out: list[Envelope[EventPayload]] = []
    for invoice in await conn.fetch(
        """
        SELECT id, tax_included_minor - paid_minor AS due FROM invoices
        WHERE account_id = $1 AND state <> 'settled' ORDER BY bill_number FOR UPDATE
        """,
        payment.account_id,
    ):
        if left == 0:
            break
        applied = min(left, invoice["due"])
        if applied <= 0:
            continue
        left -= applied
        remaining = invoice["due"] - applied
        state = InvoiceState.SETTLED if remaining == 0 else InvoiceState.PARTIALLY_PAID
        await conn.execute(
            "UPDATE invoices SET paid_minor = paid_minor + $2, state = $3 WHERE id = $1",
            invoice["id"],
            applied,
            state.value,
        )
        await conn.execute(
            "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor) VALUES ($1, $2, $3)",
            payment.payment_id,
            invoice["id"],
            applied,
        )
        out.append(
            new_event(
                PaymentApplied(
                    payment_id=payment.payment_id,
                    account_id=payment.account_id,
                    invoice_id=invoice["id"],
                    amount_minor=applied,
                    invoice_state=state,
                    remaining_due_minor=remaining,
                ),
                source=SOURCE,
                subject=invoice["id"],
                cause=cause,
            )
        )
    await conn.execute("UPDATE payments SET unapplied_minor = $2 WHERE id = $1", payment.payment_id, left)
    return out


async def dun_overdue(conn: Connection, today: date) -> list[Envelope[EventPayload]]:
    """Mark the invoices unpaid past their due date as dunned, once each, and return the
    InvoiceOverdueDetected events that make care remind their customers."""
    rows = await conn.fetch(
        """
        UPDATE invoices i SET dunned_at = now()
        FROM accounts a
        WHERE a.id = i.account_id AND i.state <> 'settled' AND i.payment_due_date < $1
          AND i.dunned_at IS NULL
        RETURNING i.id, i.account_id, a.customer_id, i.payment_due_date,
                  i.tax_included_minor - i.paid_minor AS due, i.currency
        """,
        today,
    )
    return [
        new_event(
            InvoiceOverdueDetected(
                invoice_id=r["id"],
                account_id=r["account_id"],
                customer_id=r["customer_id"],
                payment_due_date=r["payment_due_date"],
                remaining_due_minor=r["due"],
                currency=r["currency"],
            ),
            source=SOURCE,
            subject=r["id"],
        )
        for r in rows
        if r["due"] > 0
    ]
