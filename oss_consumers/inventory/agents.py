"""Inventory's consumer: learns from BSS which customer holds which service (the essay's
BSS-to-OSS synchronization), so fault management knows whom a failure impacts; and provides and
terminates the services BSS orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from events import Envelope, EventPayload
from events.bss import CustomerServiceAssigned, ServiceProvisioningRequested, ServiceTerminationRequested
from events.oss import (
    ResourceAdministrationRequested,
    ResourceAdministrativeStateChanged,
    ServiceActivated,
    ServiceActivationFailed,
    ServiceTerminated,
    ServiceTerminationFailed,
)
from oss_consumers.inventory.provisioning import provision
from oss_consumers.inventory.states import administer
from oss_consumers.inventory.termination import terminate
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "oss-inventory"
HANDLES = (
    CustomerServiceAssigned,
    ServiceProvisioningRequested,
    ServiceTerminationRequested,
    ResourceAdministrationRequested,
)
PUBLISHES = (
    ServiceActivated,
    ServiceActivationFailed,
    ServiceTerminated,
    ServiceTerminationFailed,
    ResourceAdministrativeStateChanged,
)


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Apply one customer-service assignment, one provisioning or termination request, or one
    operator's lock or unlock of a resource."""
    data = event.data
    if isinstance(data, CustomerServiceAssigned):
        await assign(conn, data, event.time)
        return []
    if isinstance(data, ServiceProvisioningRequested):
        return await provision(conn, event, data)
    if isinstance(data, ServiceTerminationRequested):
        return await terminate(conn, event, data)
    if isinstance(data, ResourceAdministrationRequested):
        return await administer(conn, event, data)
    raise Rejected(f"{COMPONENT} does not handle {event.type}")


async def assign(conn: Connection, assignment: CustomerServiceAssigned, at: datetime) -> None:
    """Record who holds a service, or forget the holder once the assignment has ended.

    An ended assignment is final (a terminated service is never held again), so a redelivered
    older assignment of a service the inventory has terminated is ignored.
    """
    if assignment.ended_at is not None:
        await conn.execute("DELETE FROM customer_services WHERE service_id = $1", assignment.service_id)
        return
    await conn.execute(
        """
        INSERT INTO customer_services (service_id, customer_id, sla_tier, product_name, updated_at)
        SELECT $1::text, $2::text, $3::text, $4::text, $5::timestamptz
        WHERE NOT EXISTS (SELECT 1 FROM services WHERE id = $1::text AND state = 'terminated')
        ON CONFLICT (service_id) DO UPDATE SET customer_id = excluded.customer_id,
            sla_tier = excluded.sla_tier, product_name = excluded.product_name,
            updated_at = excluded.updated_at
        WHERE customer_services.updated_at <= excluded.updated_at
        """,
        assignment.service_id,
        assignment.customer_id,
        assignment.sla_tier.value,
        assignment.product_name,
        at,
    )
