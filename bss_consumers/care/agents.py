"""Customer care's consumer: tells each customer affected by an outage, once, and again when
the service is restored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from events import Envelope, EventPayload, new_event
from events.bss import CustomerNotificationSent, NotificationReason
from events.oss import ServiceOutageStarted, ServiceRestored
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-care"
SOURCE = "/bss/care"
HANDLES = (ServiceOutageStarted, ServiceRestored)
PUBLISHES = (CustomerNotificationSent,)


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Notify the customers of an outage or a restoration; return the notifications sent."""
    data = event.data
    if isinstance(data, ServiceOutageStarted):
        reason = NotificationReason.SERVICE_OUTAGE
    elif isinstance(data, ServiceRestored):
        reason = NotificationReason.SERVICE_RESTORED
    else:
        raise Rejected(f"{COMPONENT} does not handle {event.type}")
    if not data.customer_ids:
        return []
    now = datetime.now(UTC)
    # The unique (incident, customer, reason) makes a redelivered or republished outage, or a
    # second service of the same customer down in the same incident, a no-op.
    rows = await conn.fetch(
        """
        INSERT INTO notifications
            (id, customer_id, incident_id, outage_id, service_id, reason, channel, sent_at)
        SELECT 'NTF-' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12), c.id, $2, $3, $4,
               $5, c.preferred_channel, $6
        FROM customers c WHERE c.id = ANY($1::text[])
        ON CONFLICT (incident_id, customer_id, reason) DO NOTHING
        RETURNING id, customer_id, channel
        """,
        list(data.customer_ids),
        data.alarm_id,
        data.outage_id,
        data.service_id,
        reason.value,
        now,
    )
    return [
        new_event(
            CustomerNotificationSent(
                notification_id=r["id"],
                customer_id=r["customer_id"],
                reason=reason,
                incident_id=data.alarm_id,
                service_id=data.service_id,
                outage_id=data.outage_id,
                channel=r["channel"],
                sent_at=now,
            ),
            source=SOURCE,
            subject=r["customer_id"],
            cause=event,
        )
        for r in rows
    ]


async def notifications_sent(conn: Connection) -> int:
    """How many notifications care has sent."""
    return int(await conn.fetchval("SELECT count(*) FROM notifications"))
