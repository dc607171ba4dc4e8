"""Inventory's consumer: learns from BSS which customer holds which service (the essay's
BSS-to-OSS synchronization), so fault management knows whom a failure impacts."""

from __future__ import annotations

from collections.abc import Sequence

from events import Envelope, EventPayload
from events.bss import CustomerServiceAssigned, ServiceProvisioningRequested
from events.oss import ServiceActivated, ServiceActivationFailed
from oss_consumers.inventory.provisioning import provision
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "oss-inventory"
HANDLES = (CustomerServiceAssigned, ServiceProvisioningRequested)
PUBLISHES = (ServiceActivated, ServiceActivationFailed)


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Apply one customer-service assignment; publishes nothing."""
    data = event.data
    if isinstance(data, CustomerServiceAssigned):
        await conn.execute(
            """
            INSERT INTO customer_services (service_id, customer_id, sla_tier, product_name, updated_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (service_id) DO UPDATE SET customer_id = excluded.customer_id,
                sla_tier = excluded.sla_tier, product_name = excluded.product_name,
                updated_at = excluded.updated_at
            WHERE customer_services.updated_at <= excluded.updated_at
            """,
            data.service_id,
            data.customer_id,
            data.sla_tier.value,
            data.product_name,
            event.time,
        )
        return []
    if isinstance(data, ServiceProvisioningRequested):
        return await provision(conn, event, data)
    raise Rejected(f"{COMPONENT} does not handle {event.type}")
