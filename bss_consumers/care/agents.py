"""Customer care's consumer: tells each customer affected by an outage, once per incident, and
again when the service is restored; reminds customers of overdue invoices (dunning)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from events import Envelope, EventPayload, new_event
from events.bss import (
    CustomerNotificationSent,
    InvoiceIssued,
    InvoiceOverdueDetected,
    NotificationReason,
    PaymentApplied,
)
from events.oss import ServiceOutageStarted, ServiceRerouted, ServiceRestored
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-care"
SOURCE = "/bss/care"
HANDLES = (
    ServiceOutageStarted,
    ServiceRerouted,
    ServiceRestored,
    InvoiceIssued,
    PaymentApplied,
    InvoiceOverdueDetected,
)
PUBLISHES = (CustomerNotificationSent,)


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Notify the customers concerned; return the notifications sent."""
    data = event.data
    if isinstance(data, InvoiceIssued | PaymentApplied):
        return []  # the invoice itself is the customer's notice
    if isinstance(data, InvoiceOverdueDetected):
        return await _notify(
            conn,
            event,
            NotificationReason.INVOICE_OVERDUE,
            [data.customer_id],
            data.invoice_id,
            invoice_id=data.invoice_id,
        )
    if isinstance(data, ServiceRerouted):
        # Proactive: the service is up, on a backup path, while the fault is repaired.
        return await _notify(
            conn,
            event,
            NotificationReason.SERVICE_REROUTED,
            list(data.customer_ids),
            data.alarm_id,
            incident_id=data.alarm_id,
            service_id=data.service_id,
        )
    if isinstance(data, ServiceOutageStarted | ServiceRestored):
        reason = (
            NotificationReason.SERVICE_OUTAGE
            if isinstance(data, ServiceOutageStarted)
            else NotificationReason.SERVICE_RESTORED
        )
        return await _notify(
            conn,
            event,
            reason,
            list(data.customer_ids),
            data.alarm_id,
            incident_id=data.alarm_id,
            service_id=data.service_id,
            outage_id=data.outage_id,
        )
    raise Rejected(f"{COMPONENT} does not handle {event.type}")


async def _notify(
    conn: Connection,
    cause: Envelope[EventPayload],
    reason: NotificationReason,
    customer_ids: list[str],
    subject_id: str,
    *,
    incident_id: str | None = None,
    service_id: str | None = None,
    outage_id: str | None = None,
    invoice_id: str | None = None,
) -> list[Envelope[EventPayload]]:
    if not customer_ids:
        return []
    now = datetime.now(UTC)
    # The unique (subject, customer, reason) makes a redelivered or republished event, or a
    # second service of the same customer down in the same incident, a no-op.
    rows = await conn.fetch(
        """
        INSERT INTO notifications
            (id, customer_id, subject_id, outage_id, service_id, invoice_id, reason, channel, sent_at)
        SELECT 'NTF-' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12), c.id, $2, $3, $4,
               $5, $6, c.preferred_channel, $7
        FROM customers c WHERE c.id = ANY($1::text[])
        ON CONFLICT (subject_id, customer_id, reason) DO NOTHING
        RETURNING id, customer_id, channel
        """,
        customer_ids,
        subject_id,
        outage_id,
        service_id,
        invoice_id,
        reason.value,
        now,
    )
    return [
        new_event(
            CustomerNotificationSent(
                notification_id=r["id"],
                customer_id=r["customer_id"],
                reason=reason,
                incident_id=incident_id,
                service_id=service_id,
                outage_id=outage_id,
                invoice_id=invoice_id,
                channel=r["channel"],
                sent_at=now,
            ),
            source=SOURCE,
            subject=r["customer_id"],
            cause=cause,
        )
        for r in rows
    ]


async def notifications_sent(conn: Connection) -> int:
    """How many notifications care has sent."""
    return int(await conn.fetchval("SELECT count(*) FROM notifications"))
