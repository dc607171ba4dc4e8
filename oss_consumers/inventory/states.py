"""TMF639 administrative and usage states of resources, kept by inventory.

- administrativeState: an operator locks a resource for planned maintenance and unlocks it after.
  A locked resource carries no new service and no rerouted traffic, and alarms raised on it open
  no trouble ticket (they are still recorded, and their service impact still counts).
- usageState: ``active`` while at least one service not terminated is placed on the resource,
  ``idle`` otherwise; derived from the placements when asked, never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

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


async def usage_state(conn: Connection, resource_id: str) -> str:
    """TMF639 usage state: ``active`` while a service not terminated is placed on the resource,
    ``idle`` otherwise. Derived, never stored."""
    busy = await conn.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM service_resources sr JOIN services s ON s.id = sr.service_id
                       WHERE sr.resource_id = $1 AND s.state <> 'terminated')
        """,
        resource_id,
    )
    return "active" if busy else "idle"


async def usable_links(conn: Connection) -> list[asyncpg.Record]:
    """The links traffic may use: the link and both its end nodes enabled (no active
    service-affecting major or critical alarm) and unlocked. With each, its utilization trend
    (``utilization``, None before a forecast), for admission."""
    return await conn.fetch(
        """
        SELECT l.id, l.a_end, l.z_end, f.level AS utilization FROM resources l
        JOIN resources a ON a.id = l.a_end
        JOIN resources z ON z.id = l.z_end
        LEFT JOIN capacity_forecasts f ON f.resource_id = l.id AND f.indicator = 'utilization'
        WHERE l.resource_type = 'link'
          AND l.operational_state = 'enable' AND l.administrative_state = 'unlocked'
          AND a.operational_state = 'enable' AND a.administrative_state = 'unlocked'
          AND z.operational_state = 'enable' AND z.administrative_state = 'unlocked'
        """
    )


async def locked(conn: Connection, resource_ids: Sequence[str]) -> set[str]:
    """Which of the resources are locked."""
    rows = await conn.fetch(
        "SELECT id FROM resources WHERE id = ANY($1::text[]) AND administrative_state = 'locked'",
        list(resource_ids),
    )
    return {r["id"] for r in rows}
