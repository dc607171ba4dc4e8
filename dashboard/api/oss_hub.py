"""The OSS side of the TMF688 event hub: the component that delivers alarm (TMF642) and trouble
ticket (TMF621) events to the callbacks subscribed through ``/hub``, and the events each API's
subscribers can ask for."""

from __future__ import annotations

from events import EventPayload
from events.oss import (
    AlarmAcknowledged,
    AlarmChanged,
    AlarmCleared,
    AlarmRaised,
    TroubleTicketCreated,
    TroubleTicketEscalated,
    TroubleTicketResolved,
)

COMPONENT = "oss-event-hub"
DOMAIN = "oss"
APIS: dict[str, tuple[type[EventPayload], ...]] = {
    "alarmManagement": (AlarmRaised, AlarmChanged, AlarmCleared, AlarmAcknowledged),
    "troubleTicket": (TroubleTicketCreated, TroubleTicketEscalated, TroubleTicketResolved),
}
"""API name (as in ``/tmf-api/{name}/v5/hub``) to the event types its subscribers receive."""
HANDLES = tuple(t for types in APIS.values() for t in types)
PUBLISHES = ()
