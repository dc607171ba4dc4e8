"""Termination: end a service BSS asks to end (TMF638 state terminated) and release the resources
it ran over, so that it no longer counts for fault impact or capacity.

Outcomes: a service in a state that may end is terminated, and ``ServiceTerminated`` lists what
was released. A service already terminated gets ``ServiceTerminated`` again, with its original
termination time and nothing released: the request is idempotent, so an order whose first answer
was lost still completes. A service the inventory does not know gets ``ServiceTerminationFailed``
with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

from events import Envelope, EventPayload, new_event
from events.bss import ServiceTerminationRequested
from events.oss import ServiceTerminated, ServiceTerminationFailed
from oss_consumers.inventory.lifecycle import ServiceState, may_move
from oss_consumers.inventory.provisioning import SOURCE, move_service
from runtime.db import Connection


async def terminate(
    conn: Connection, cause: Envelope[EventPayload], request: ServiceTerminationRequested
) -> list[Envelope[EventPayload]]:
    """Terminate the requested service and release its resources, or say why not."""
    service = await conn.fetchrow(
        "SELECT state, terminated_at FROM services WHERE id = $1 FOR UPDATE", request.service_id
    )
    if service is None:
        return [_failed(cause, request, f"unknown service {request.service_id}")]
    if service["state"] == ServiceState.TERMINATED.value:
        return [_terminated(cause, request, (), service["terminated_at"])]
    if not may_move(service["state"], ServiceState.TERMINATED):
        return [_failed(cause, request, f"service {request.service_id} is {service['state']}")]
    released = await conn.fetch(
        "DELETE FROM service_resources WHERE service_id = $1 RETURNING resource_id, position",
        request.service_id,
    )
    path = tuple(
        r["resource_id"]
        for r in sorted(released, key=lambda r: (r["position"] is None, r["position"] or 0, r["resource_id"]))
    )
    now = datetime.now(UTC)
    await move_service(conn, request.service_id, ServiceState.TERMINATED, now)
    return [_terminated(cause, request, path, now)]


def _terminated(
    cause: Envelope[EventPayload],
    request: ServiceTerminationRequested,
    released: tuple[str, ...],
    at: datetime,
) -> Envelope[EventPayload]:
    return new_event(
        ServiceTerminated(
            service_id=request.service_id,
            order_id=request.order_id,
            released_resource_ids=released,
            terminated_at=at,
        ),
        source=SOURCE,
        subject=request.service_id,
        cause=cause,
    )


def _failed(
    cause: Envelope[EventPayload], request: ServiceTerminationRequested, reason: str
) -> Envelope[EventPayload]:
    return new_event(
        ServiceTerminationFailed(service_id=request.service_id, order_id=request.order_id, reason=reason),
        source=SOURCE,
        subject=request.service_id,
        cause=cause,
    )
