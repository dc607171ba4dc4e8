"""TMF639 administrative and usage states of resources, kept by inventory.

- administrativeState: an operator locks a resource for planned maintenance and unlocks it after.
  A locked resource carries no new service and no rerouted traffic, and alarms raised on it open
  no trouble ticket (they are still recorded, and their service impact still counts).
- usageState: ``active`` while at least one service not terminated is placed on the resource,
  ``idle`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from events import Envelope, EventPayload, new_event
from events.oss import (
    AdministrativeState,
    ResourceAdministrationRequested,
    ResourceAdministrativeStateChanged,
)
from events.x733 import ResourceType
from runtime.consumer import Rejected
from runtime.db import Connection

SOURCE = "/oss/inventory"


async def administer(
    conn: Connection, cause: Envelope[EventPayload], request: ResourceAdministrationRequested
) -> list[Envelope[EventPayload]]:
    """Lock or unlock a resource; nothing to publish when it already is in that state."""
    row = await conn.fetchrow(
        "SELECT resource_type, administrative_state FROM resources WHERE id = $1 FOR UPDATE",
        request.resource_id,
    )
    if row is None:
        raise Rejected(f"no resource {request.resource_id}")
    if row["administrative_state"] == request.administrative_state.value:
        return []
    await conn.execute(
        "UPDATE resources SET administrative_state = $2 WHERE id = $1",
        request.resource_id,
        request.administrative_state.value,
    )
    return [
        new_event(
            ResourceAdministrativeStateChanged(
                resource_id=request.resource_id,
                resource_type=ResourceType(row["resource_type"]),
                administrative_state=request.administrative_state,
                previous_state=AdministrativeState(row["administrative_state"]),
                changed_by=request.requested_by,
                reason=request.reason,
                changed_at=datetime.now(UTC),
            ),
            source=SOURCE,
            subject=request.resource_id,
            cause=cause,
        )
    ]


async def refresh_usage(conn: Connection, resource_ids: Sequence[str] | None = None) -> None:
    """Set the usage state of the resources (all of them when None) from the services on them."""
    await conn.execute(
        """
        UPDATE resources r SET usage_state = CASE WHEN EXISTS (
                SELECT 1 FROM service_resources sr JOIN services s ON s.id = sr.service_id
                WHERE sr.resource_id = r.id AND s.state <> 'terminated')
            THEN 'active' ELSE 'idle' END
        WHERE ($1::text[] IS NULL OR r.id = ANY($1::text[]))
        """,
        None if resource_ids is None else list(resource_ids),
    )


async def locked(conn: Connection, resource_ids: Sequence[str]) -> set[str]:
    """Which of the resources are locked."""
    rows = await conn.fetch(
        "SELECT id FROM resources WHERE id = ANY($1::text[]) AND administrative_state = 'locked'",
        list(resource_ids),
    )
    return {r["id"] for r in rows}
