"""Fault management's consumer: probe alarms and operator commands in; alarms, trouble tickets
and service impact out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from events import Envelope, EventPayload, new_event
from events.network import ProbeAlarmCleared, ProbeAlarmRaised
from events.oss import (
    AckState,
    AlarmAcknowledged,
    AlarmAcknowledgementRequested,
    AlarmChanged,
    AlarmCleared,
    AlarmRaised,
    RelatedEntity,
    ServiceOutageStarted,
    ServiceRestored,
    TroubleTicketCreated,
    TroubleTicketResolved,
    TroubleTicketStatus,
)
from events.x733 import PerceivedSeverity
from oss_consumers.fault import lifecycle, store
from oss_consumers.fault.lifecycle import ClearOutcome, RaiseOutcome
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "oss-fault"
SOURCE = "/oss/fault"
HANDLES = (ProbeAlarmRaised, ProbeAlarmCleared, AlarmAcknowledgementRequested)
PUBLISHES = (
    AlarmRaised,
    AlarmChanged,
    AlarmCleared,
    AlarmAcknowledged,
    TroubleTicketCreated,
    TroubleTicketResolved,
    ServiceOutageStarted,
    ServiceRestored,
)
log = structlog.get_logger(__name__)

Out = list[Envelope[EventPayload]]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Apply one event in the caller's transaction; return the events to publish."""
    data = event.data
    if isinstance(data, ProbeAlarmRaised):
        return await on_raise(conn, event, data)
    if isinstance(data, ProbeAlarmCleared):
        return await on_clear(conn, event, data)
    if isinstance(data, AlarmAcknowledgementRequested):
        return await on_ack_request(conn, event, data)
    raise Rejected(f"{COMPONENT} does not handle {event.type}")


async def on_raise(conn: Connection, cause: Envelope[EventPayload], raised: ProbeAlarmRaised) -> Out:
    state = await store.key_state(conn, raised.reduction_key)
    outcome = lifecycle.decide_raise(state, raised)
    if outcome is RaiseOutcome.REPEAT:
        assert state.active_alarm_id is not None
        repeat = await store.record_repeat(conn, state.active_alarm_id, raised)
        if repeat["previous_severity"] == raised.perceived_severity.value:
            return []
        return [
            new_event(
                AlarmChanged(
                    alarm_id=state.active_alarm_id,
                    reduction_key=raised.reduction_key,
                    perceived_severity=raised.perceived_severity,
                    previous_severity=PerceivedSeverity(repeat["previous_severity"]),
                    alarm_changed_time=raised.event_time,
                    occurrences=repeat["occurrences"],
                ),
                source=SOURCE,
                subject=state.active_alarm_id,
                cause=cause,
            )
        ]
    if outcome is RaiseOutcome.STALE:
        log.info("stale raise dropped", reduction_key=raised.reduction_key)
        return []
    alarm_id = _id("ALM")
    await store.insert_alarm(conn, alarm_id, raised)
    out: Out = [
        new_event(
            AlarmRaised(
                alarm_id=alarm_id,
                reduction_key=raised.reduction_key,
                alarmed_object_id=raised.alarmed_object_id,
                alarmed_object_type=raised.alarmed_object_type,
                alarm_type=raised.alarm_type,
                probable_cause=raised.probable_cause,
                specific_problem=raised.specific_problem,
                perceived_severity=raised.perceived_severity,
                alarm_raised_time=raised.event_time,
                service_affecting=raised.service_affecting,
                source_system_id=raised.source_system_id,
            ),
            source=SOURCE,
            subject=alarm_id,
            cause=cause,
        )
    ]
    if state.held_clear_at is not None:
        await store.drop_held_clear(conn, raised.reduction_key)
    if outcome is RaiseOutcome.NEW_AND_CLEARED:
        # The clear overtook the raise: the condition is already over, nobody is impacted now.
        assert state.held_clear_at is not None
        await store.clear_alarm(conn, alarm_id, state.held_clear_at)
        out.append(
            _cleared(cause, alarm_id, raised.reduction_key, raised.alarmed_object_id, state.held_clear_at)
        )
        return out
    if lifecycle.opens_ticket(raised.perceived_severity, raised.service_affecting):
        out.extend(await _open_ticket_and_outages(conn, cause, alarm_id, raised))
    return out


async def _open_ticket_and_outages(
    conn: Connection, cause: Envelope[EventPayload], alarm_id: str, raised: ProbeAlarmRaised
) -> Out:
    services = await store.services_on(conn, raised.alarmed_object_id)
    ticket_id = _id("TT")
    now = datetime.now(UTC)
    name = f"{raised.probable_cause.value} on {raised.alarmed_object_type.value} {raised.alarmed_object_id}"
    priority = lifecycle.ticket_priority(raised.perceived_severity)
    await store.open_ticket(
        conn,
        ticket_id,
        alarm_id,
        name,
        raised.perceived_severity.value,
        priority,
        TroubleTicketStatus.ACKNOWLEDGED.value,
        now,
    )
    related = [
        RelatedEntity(id=alarm_id, role="rootCauseAlarm", referred_type="Alarm"),
        RelatedEntity(id=raised.alarmed_object_id, role="affectedResource", referred_type="Resource"),
        *(
            RelatedEntity(id=s["service_id"], role="affectedService", referred_type="Service")
            for s in services
        ),
    ]
    out: Out = [
        new_event(
            TroubleTicketCreated(
                ticket_id=ticket_id,
                name=name,
                description=(
                    f"{raised.alarm_type.value} {raised.probable_cause.value} "
                    f"({raised.specific_problem or 'no detail'}) reported by {raised.source_system_id}; "
                    f"{len(services)} service(s) affected"
                ),
                severity=raised.perceived_severity,
                priority=priority,
                status=TroubleTicketStatus.ACKNOWLEDGED,
                creation_date=now,
                related_entity=tuple(related),
            ),
            source=SOURCE,
            subject=ticket_id,
            cause=cause,
        )
    ]
    for service in services:
        existing = await store.open_outage(conn, service["service_id"])
        if existing is not None:
            await store.add_cause(conn, existing, alarm_id)
            continue
        outage_id = _id("OUT")
        await store.start_outage(
            conn, outage_id, service["service_id"], raised.alarmed_object_id, alarm_id, raised.event_time
        )
        out.append(
            new_event(
                ServiceOutageStarted(
                    outage_id=outage_id,
                    service_id=service["service_id"],
                    resource_id=raised.alarmed_object_id,
                    alarm_id=alarm_id,
                    started_at=raised.event_time,
                    customer_ids=tuple(service["customer_ids"]),
                ),
                source=SOURCE,
                subject=service["service_id"],
                cause=cause,
            )
        )
    return out


def _cleared(
    cause: Envelope[EventPayload], alarm_id: str, key: str, object_id: str, at: datetime
) -> Envelope[EventPayload]:
    return new_event(
        AlarmCleared(
            alarm_id=alarm_id, reduction_key=key, alarm_cleared_time=at, alarmed_object_id=object_id
        ),
        source=SOURCE,
        subject=alarm_id,
        cause=cause,
    )


async def on_clear(conn: Connection, cause: Envelope[EventPayload], clear: ProbeAlarmCleared) -> Out:
    state = await store.key_state(conn, clear.reduction_key)
    outcome = lifecycle.decide_clear(state, clear)
    if outcome is ClearOutcome.STALE:
        return []
    if outcome is ClearOutcome.HOLD:
        await store.hold_clear(conn, clear.reduction_key, clear.event_time)
        log.debug("clear held until its raise arrives", reduction_key=clear.reduction_key)
        return []
    alarm_id = state.active_alarm_id
    assert alarm_id is not None
    await store.clear_alarm(conn, alarm_id, clear.event_time)
    out: Out = [_cleared(cause, alarm_id, clear.reduction_key, clear.alarmed_object_id, clear.event_time)]
    now = datetime.now(UTC)
    ticket_id = await store.resolve_ticket(conn, alarm_id, now)
    if ticket_id is not None:
        out.append(
            new_event(
                TroubleTicketResolved(
                    ticket_id=ticket_id,
                    status=TroubleTicketStatus.RESOLVED,
                    resolution_date=now,
                    status_change_reason=f"alarm {alarm_id} cleared",
                ),
                source=SOURCE,
                subject=ticket_id,
                cause=cause,
            )
        )
    for outage in await store.remove_cause_and_restore(conn, alarm_id, clear.event_time):
        out.append(
            new_event(
                ServiceRestored(
                    outage_id=outage["id"],
                    service_id=outage["service_id"],
                    alarm_id=outage["alarm_id"],
                    started_at=outage["started_at"],
                    restored_at=outage["restored_at"],
                    duration_seconds=(outage["restored_at"] - outage["started_at"]).total_seconds(),
                    customer_ids=tuple(outage["customer_ids"]),
                ),
                source=SOURCE,
                subject=outage["service_id"],
                cause=cause,
            )
        )
    return out


async def on_ack_request(
    conn: Connection, cause: Envelope[EventPayload], request: AlarmAcknowledgementRequested
) -> Out:
    row = await store.alarm(conn, request.alarm_id)
    if row is None:
        raise Rejected(f"no alarm {request.alarm_id}")
    if row["ack_state"] == request.ack_state.value:
        return []
    await store.set_ack(conn, request.alarm_id, request.ack_state.value, request.ack_user_id)
    return [
        new_event(
            AlarmAcknowledged(
                alarm_id=request.alarm_id,
                reduction_key=row["reduction_key"],
                ack_state=AckState(request.ack_state),
                ack_user_id=request.ack_user_id,
                ack_time=datetime.now(UTC),
            ),
            source=SOURCE,
            subject=request.alarm_id,
            cause=cause,
        )
    ]
