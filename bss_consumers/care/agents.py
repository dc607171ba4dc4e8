"""Customer care's consumer: tells each customer affected by an outage, once per incident, and
again when the service is restored; opens a support case for each customer whose service is down
and resolves it when everything is back; reminds customers of overdue invoices (dunning).

A customer whose service was rerouted is told, but gets no case: the service stayed up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from events import Envelope, EventPayload, new_event
from events.bss import (
    CaseState,
    CustomerCaseOpened,
    CustomerCaseResolved,
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
PUBLISHES = (CustomerNotificationSent, CustomerCaseOpened, CustomerCaseResolved)


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
        sent = await _notify(
            conn,
            event,
            reason,
            list(data.customer_ids),
            data.alarm_id,
            incident_id=data.alarm_id,
            service_id=data.service_id,
            outage_id=data.outage_id,
        )
        if isinstance(data, ServiceOutageStarted):
            return [*sent, *await _open_cases(conn, event, data)]
        return [*sent, *await _resolve_cases(conn, event, data)]
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


async def _open_cases(
    conn: Connection, cause: Envelope[EventPayload], outage: ServiceOutageStarted
) -> list[Envelope[EventPayload]]:
    """A case per customer for the incident, or the service added to the customer's open one."""
    if not outage.customer_ids:
        return []
    # A case the incident's earlier restorations resolved opens again: services of one customer
    # reach care in any order across partitions.
    reopened = await conn.fetch(
        """
        UPDATE care_cases SET state = 'acknowledged', resolved_at = NULL, services_down = ARRAY[$3::text]
        WHERE incident_id = $2 AND customer_id = ANY($1::text[]) AND state = 'resolved'
          AND NOT $3 = ANY(services_restored)
        RETURNING id, customer_id, services_down, opened_at, true AS opened
        """,
        list(outage.customer_ids),
        outage.alarm_id,
        outage.service_id,
    )
    rows = await conn.fetch(
        """
        INSERT INTO care_cases AS c (id, customer_id, incident_id, services_down, state, opened_at)
        SELECT 'CASE-' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12), cu.id, $2,
               ARRAY[$3::text], 'acknowledged', $4
        FROM customers cu WHERE cu.id = ANY($1::text[])
        ON CONFLICT (customer_id, incident_id) DO UPDATE
            SET services_down = array(SELECT DISTINCT unnest(c.services_down || excluded.services_down))
            WHERE c.state = 'acknowledged' AND NOT $3 = ANY(c.services_restored)
        RETURNING c.id, c.customer_id, c.services_down, c.opened_at, (xmax = 0) AS opened
        """,
        list(outage.customer_ids),
        outage.alarm_id,
        outage.service_id,
        outage.started_at,
    )
    return [
        new_event(
            CustomerCaseOpened(
                case_id=r["id"],
                customer_id=r["customer_id"],
                incident_id=outage.alarm_id,
                service_ids=tuple(r["services_down"]),
                state=CaseState.OPEN,
                opened_at=r["opened_at"],
            ),
            source=SOURCE,
            subject=r["customer_id"],
            cause=cause,
        )
        for r in [*reopened, *rows]
        if r["opened"]
    ]


async def _resolve_cases(
    conn: Connection, cause: Envelope[EventPayload], restored: ServiceRestored
) -> list[Envelope[EventPayload]]:
    """Take the service off the open cases of the incident that hold it (whoever holds the
    service now: it may have ended while down); resolve those left with nothing down."""
    rows = await conn.fetch(
        """
        UPDATE care_cases SET services_down = array_remove(services_down, $2),
            services_restored = services_restored || $2::text,
            state = CASE WHEN services_down = ARRAY[$2::text] THEN 'resolved' ELSE state END,
            resolved_at = CASE WHEN services_down = ARRAY[$2::text] THEN $3::timestamptz END
        WHERE incident_id = $1 AND state = 'acknowledged' AND $2 = ANY(services_down)
        RETURNING id, customer_id, state, opened_at, resolved_at
        """,
        restored.alarm_id,
        restored.service_id,
        restored.restored_at,
    )
    return [
        new_event(
            CustomerCaseResolved(
                case_id=r["id"],
                customer_id=r["customer_id"],
                incident_id=restored.alarm_id,
                state=CaseState.RESOLVED,
                resolved_at=r["resolved_at"],
                resolution=(
                    f"every service back after {_minutes(r['resolved_at'] - r['opened_at'])}; "
                    "any SLA credit goes on the next invoice"
                ),
            ),
            source=SOURCE,
            subject=r["customer_id"],
            cause=cause,
        )
        for r in rows
        if r["state"] == CaseState.RESOLVED.value
    ]


def _minutes(duration: timedelta) -> str:
    minutes = max(1, round(duration.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


async def notifications_sent(conn: Connection) -> int:
    """How many notifications care has sent."""
    return int(await conn.fetchval("SELECT count(*) FROM notifications"))
