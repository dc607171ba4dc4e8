"""The operator's alarm console: acknowledgement and clear requests, sent to fault management as
events."""

from __future__ import annotations

from events import new_event
from events.oss import AckState, AlarmAcknowledgementRequested, AlarmClearanceRequested
from runtime.bus import Publisher

COMPONENT = "alarm-console"
SOURCE = "/oss/alarm-console"
HANDLES = ()
PUBLISHES = (AlarmAcknowledgementRequested, AlarmClearanceRequested)


async def request_acknowledgement(
    publisher: Publisher, alarm_id: str, operator: str, *, undo: bool = False
) -> None:
    """Ask fault management to acknowledge (or, with ``undo``, un-acknowledge) an alarm."""
    state = AckState.UNACKNOWLEDGED if undo else AckState.ACKNOWLEDGED
    await publisher.publish(
        new_event(
            AlarmAcknowledgementRequested(alarm_id=alarm_id, ack_state=state, ack_user_id=operator),
            source=SOURCE,
            subject=alarm_id,
        )
    )


async def request_clearance(publisher: Publisher, alarm_id: str, operator: str) -> None:
    """Ask fault management to clear an alarm by hand, as if its probe had cleared it."""
    await publisher.publish(
        new_event(
            AlarmClearanceRequested(alarm_id=alarm_id, clear_user_id=operator),
            source=SOURCE,
            subject=alarm_id,
        )
    )
