"""The operator's resource console: lock and unlock requests, sent to inventory as events."""

from __future__ import annotations

from events import new_event
from events.oss import AdministrativeState, ResourceAdministrationRequested
from runtime.bus import Publisher

COMPONENT = "resource-console"
SOURCE = "/oss/resource-console"
HANDLES = ()
PUBLISHES = (ResourceAdministrationRequested,)


async def request_state(
    publisher: Publisher, resource_id: str, state: AdministrativeState, operator: str, reason: str = ""
) -> None:
    """Ask inventory to lock (planned maintenance) or unlock a resource."""
    await publisher.publish(
        new_event(
            ResourceAdministrationRequested(
                resource_id=resource_id, administrative_state=state, requested_by=operator, reason=reason
            ),
            source=SOURCE,
            subject=resource_id,
        )
    )
