"""Fault management's consumer: probe alarms and operator commands in; alarms, trouble tickets
and service impact out."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from events import Envelope, EventPayload, new_event
from events.network import ProbeAlarmCleared, ProbeAlarmRaised, reduction_key
from events.oss import (
    AckState,
    AlarmAcknowledged,
    AlarmAcknowledgementRequested,
    AlarmChanged,
    AlarmClearanceRequested,
    AlarmCleared,
    AlarmRaised,
    CrossedThresholdInformation,
    CrossingDirection,
    OperationalState,
    RelatedEntity,
    ResourceStateChanged,
    ServiceOutageStarted,
    ServiceRerouted,
    ServiceRestored,
    ThresholdCrossed,
    TroubleTicketCreated,
    TroubleTicketEscalated,
    TroubleTicketResolved,
    TroubleTicketStatus,
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderEscalated,
    WorkOrderSlaBreached,
    WorkOrderState,
    WorkOrderStateChanged,
)
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType
from oss_consumers.fault import lifecycle, store
from oss_consumers.fault.lifecycle import ClearOutcome, KeyState, RaiseOutcome
from oss_consumers.fault.store import CROSSED_THRESHOLD
from oss_consumers.inventory import states
from oss_consumers.inventory.paths import detour
from runtime.consumer import Rejected, event_context
from runtime.db import Connection

COMPONENT = "oss-fault"
SOURCE = "/oss/fault"
HANDLES = (
    ProbeAlarmRaised,
    ProbeAlarmCleared,
    AlarmAcknowledgementRequested,
    AlarmClearanceRequested,
    ThresholdCrossed,
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderStateChanged,
    WorkOrderEscalated,
    WorkOrderSlaBreached,
)
# Work order news fault management does not act on: only a work order's state matters to tickets.
_IGNORED = WorkOrderDispatched | WorkOrderEscalated | WorkOrderSlaBreached
PUBLISHES = (
    AlarmRaised,
    AlarmChanged,
    AlarmCleared,
    AlarmAcknowledged,
    TroubleTicketCreated,
    TroubleTicketEscalated,
    TroubleTicketResolved,
    ServiceOutageStarted,
    ServiceRerouted,
    ServiceRestored,
    ResourceStateChanged,
)
log = structlog.get_logger(__name__)

Out = list[Envelope[EventPayload]]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def handle_batch(
    conn: Connection, events: Sequence[Envelope[EventPayload]]
) -> Sequence[Envelope[EventPayload]]:
    """Apply a batch in the caller's transaction; return the events to publish.

    The batch is taken in arrival order, as runs of one kind: notifications (probes, threshold
    crossings, operator clears), acknowledgements, work order news. Notifications go in rounds,
    each holding at most one notification per reduction key, in arrival order: every round is a
    handful of set-based statements, and the outcome is what one-by-one processing would give.
    """
    out: Out = []
    for kind, run in _runs(events):
        if kind == "notification":
            probe = [n for n in [await _notification(conn, e) for e in run] if n is not None]
            for round_ in rounds(probe):
                out.extend(await _apply_round(conn, round_))
        elif kind == "ack":
            for event in run:
                with event_context(event):
                    out.extend(await on_ack_request(conn, event, event.data))  # type: ignore[arg-type]
        elif kind == "work order":
            out.extend(await on_work_orders(conn, run))
    return out


def _runs(events: Sequence[Envelope[EventPayload]]) -> list[tuple[str, list[Envelope[EventPayload]]]]:
    """The batch as consecutive runs of one kind, in arrival order."""
    runs: list[tuple[str, list[Envelope[EventPayload]]]] = []
    for event in events:
        data = event.data
        if isinstance(
            data, ProbeAlarmRaised | ProbeAlarmCleared | ThresholdCrossed | AlarmClearanceRequested
        ):
            kind = "notification"
        elif isinstance(data, AlarmAcknowledgementRequested):
            kind = "ack"
        elif isinstance(data, WorkOrderCreated | WorkOrderStateChanged):
            kind = "work order"
        elif isinstance(data, _IGNORED):
            continue
        else:
            raise Rejected(f"{COMPONENT} does not handle {event.type}")
        if runs and runs[-1][0] == kind:
            runs[-1][1].append(event)
        else:
            runs.append((kind, [event]))
    return runs


async def _notification(conn: Connection, event: Envelope[EventPayload]) -> Envelope[EventPayload] | None:
    """A probe's notification as it is; a threshold crossing or an operator's clear as the probe
    notification it stands for (None for a clear of an alarm already cleared)."""
    if isinstance(event.data, ThresholdCrossed):
        return _threshold_alarm(event, event.data)
    if isinstance(event.data, AlarmClearanceRequested):
        with event_context(event):
            return await _operator_clear(conn, event, event.data)
    return event


async def _operator_clear(
    conn: Connection, event: Envelope[EventPayload], request: AlarmClearanceRequested
) -> Envelope[EventPayload] | None:
    """An operator's clear, as the clear a probe would send for the alarm; None when the alarm is
    already cleared."""
    row = await store.alarm(conn, request.alarm_id)
    if row is None:
        raise Rejected(f"no alarm {request.alarm_id}")
    if row["state"] == "cleared":
        log.info("operator clear of a cleared alarm ignored", alarm_id=request.alarm_id)
        return None
    clear = ProbeAlarmCleared(
        notification_id=event.id,
        reduction_key=row["reduction_key"],
        alarmed_object_id=row["alarmed_object_id"],
        alarmed_object_type=ResourceType(row["alarmed_object_type"]),
        alarm_type=AlarmType(row["alarm_type"]),
        probable_cause=ProbableCause(row["probable_cause"]),
        specific_problem=row["specific_problem"],
        event_time=max(event.time, row["last_seen_at"]),
        source_system_id=f"operator:{request.clear_user_id}",
    )
    return dataclasses.replace(event, data=clear)


async def on_work_orders(conn: Connection, news: Sequence[Envelope[EventPayload]]) -> Out:
    """Follow the tickets' work orders (the latest news of each ticket in the batch counts);
    resolve a ticket when its technician has left and its alarm has cleared."""
    latest: dict[str, Envelope[EventPayload]] = {}
    for event in news:
        latest[event.data.ticket_id] = event  # type: ignore[attr-defined]
    if not latest:
        return []
    now = datetime.now(UTC)
    follows = [(t, e.data.work_order_id, e.data.state.value) for t, e in latest.items()]  # type: ignore[attr-defined]
    out: Out = []
    for ticket in await store.follow_work_orders(conn, follows, now):
        if not ticket["resolved"]:
            continue
        out.append(
            new_event(
                TroubleTicketResolved(
                    ticket_id=ticket["id"],
                    status=TroubleTicketStatus.RESOLVED,
                    resolution_date=now,
                    status_change_reason=(
                        f"work order {ticket['work_order_id']} {ticket['work_order_state']}; "
                        f"alarm {ticket['alarm_id']} cleared"
                    ),
                ),
                source=SOURCE,
                subject=ticket["id"],
                cause=latest[ticket["id"]],
            )
        )
    return out


def _threshold_alarm(event: Envelope[EventPayload], crossed: ThresholdCrossed) -> Envelope[EventPayload]:
    """A threshold crossing as the raise or clear of a quality-of-service alarm, one per resource
    and indicator, observed at the end of the window that crossed."""
    up = crossed.direction is CrossingDirection.UP
    notification: dict[str, Any] = {
        "notification_id": event.id,
        "reduction_key": reduction_key(
            AlarmType.QUALITY_OF_SERVICE.value,
            ProbableCause.THRESHOLD_CROSSED.value,
            f"{crossed.resource_id}/{crossed.indicator}",
        ),
        "alarmed_object_id": crossed.resource_id,
        "alarmed_object_type": crossed.resource_type,
        "alarm_type": AlarmType.QUALITY_OF_SERVICE,
        "probable_cause": ProbableCause.THRESHOLD_CROSSED,
        "specific_problem": (
            f"{crossed.indicator} {crossed.observed_value:g} {'above' if up else 'below'} "
            f"{crossed.threshold:g} over {crossed.granularity_seconds} s"
        ),
        "event_time": crossed.window_start + timedelta(seconds=crossed.granularity_seconds),
        "source_system_id": COMPONENT,
    }
    crossing = CrossedThresholdInformation(
        indicator_name=crossed.indicator,
        observed_value=crossed.observed_value,
        threshold=crossed.threshold,
        direction=crossed.direction.value,
        granularity=f"PT{crossed.granularity_seconds}S",
        threshold_crossing_description=notification["specific_problem"],
    )
    data: EventPayload = (
        ProbeAlarmRaised(
            **notification,
            perceived_severity=PerceivedSeverity.MINOR,
            service_affecting=False,
            alarm_details={CROSSED_THRESHOLD: crossing.model_dump()},
        )
        if up
        else ProbeAlarmCleared(**notification)
    )
    return dataclasses.replace(event, data=data)


def rounds(events: Sequence[Envelope[EventPayload]]) -> list[list[Envelope[EventPayload]]]:
    """Split probe notifications so that the n-th notification of each key is in round n."""
    result: list[list[Envelope[EventPayload]]] = []
    seen: dict[str, int] = {}
    for event in events:
        key = event.data.reduction_key  # type: ignore[attr-defined]
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(result):
            result.append([])
        result[n].append(event)
    return result


@dataclass
class _Round:
    """What one round decided, before it is written."""

    raised: Out = field(default_factory=list)
    new_alarms: list[store.NewAlarm] = field(default_factory=list)
    ticketing: list[tuple[Envelope[EventPayload], str, ProbeAlarmRaised]] = field(default_factory=list)
    repeats: list[tuple[Envelope[EventPayload], str, ProbeAlarmRaised]] = field(default_factory=list)
    clears: list[tuple[Envelope[EventPayload], str, ProbeAlarmCleared]] = field(default_factory=list)
    holds: dict[str, datetime] = field(default_factory=dict)
    drop_holds: list[str] = field(default_factory=list)
    # Correlation: the nodes of the links, ports and cells alarmed in this round, and the
    # root-cause alarm of each node that has one (from before the round, or raised earlier in it).
    attached: dict[str, tuple[str, ...]] = field(default_factory=dict)
    node_roots: dict[str, tuple[str, datetime]] = field(default_factory=dict)


async def _apply_round(conn: Connection, events: list[Envelope[EventPayload]]) -> Out:
    states = await store.key_states(conn, [e.data.reduction_key for e in events])  # type: ignore[attr-defined]
    r = _Round()
    dependent = [
        e.data.alarmed_object_id
        for e in events
        if isinstance(e.data, ProbeAlarmRaised) and e.data.alarmed_object_type in _ON_NODES
    ]
    if dependent:
        r.attached = await store.attached_nodes(conn, dependent)
        r.node_roots = await store.root_node_alarms(
            conn, sorted({n for nodes in r.attached.values() for n in nodes})
        )
    for event in events:
        data = event.data
        if isinstance(data, ProbeAlarmRaised):
            _decide_raise(r, event, data, states[data.reduction_key])
        elif isinstance(data, ProbeAlarmCleared):
            _decide_clear(r, event, data, states[data.reduction_key])
    await store.insert_alarms(conn, r.new_alarms)
    out = r.raised
    out.extend(await _repeats(conn, r.repeats))
    await store.hold_clears(conn, r.holds)
    await store.drop_held_clears(conn, r.drop_holds)
    out.extend(await _tickets_and_outages(conn, r.ticketing))
    out.extend(await _clears(conn, r.clears))
    out.extend(await _operational_states(conn, events, out))
    return out


async def _operational_states(conn: Connection, round_: Sequence[Envelope[EventPayload]], out: Out) -> Out:
    """Keep the TMF639 operational state of the resources whose alarms the round touched: raised,
    changed or cleared by a notification, or cleared with their root cause."""
    by_resource = {e.data.alarmed_object_id: e for e in round_}  # type: ignore[attr-defined]
    for e in out:
        if isinstance(e.data, AlarmCleared):
            by_resource.setdefault(e.data.alarmed_object_id, e)
    now = datetime.now(UTC)
    return [
        new_event(
            ResourceStateChanged(
                resource_id=r["id"],
                resource_type=ResourceType(r["resource_type"]),
                operational_state=OperationalState(r["operational_state"]),
                previous_state=OperationalState(r["previous"]),
                changed_at=now,
            ),
            source=SOURCE,
            subject=r["id"],
            cause=by_resource[r["id"]],
        )
        for r in await store.update_operational_states(conn, list(by_resource))
    ]


def _decide_raise(
    r: _Round, cause: Envelope[EventPayload], raised: ProbeAlarmRaised, state: KeyState
) -> None:
    outcome = lifecycle.decide_raise(state, raised)
    if outcome is RaiseOutcome.REPEAT:
        assert state.active_alarm_id is not None
        r.repeats.append((cause, state.active_alarm_id, raised))
        return
    if outcome is RaiseOutcome.STALE:
        with event_context(cause):
            log.info("stale raise dropped", reduction_key=raised.reduction_key)
        return
    alarm_id = _id("ALM")
    if state.held_clear_at is not None:
        r.drop_holds.append(raised.reduction_key)
    # A clear that overtook its raise: the condition is already over, nobody is impacted now.
    cleared_at = state.held_clear_at if outcome is RaiseOutcome.NEW_AND_CLEARED else None
    parent = _root_cause(r, raised) if cleared_at is None else None
    r.new_alarms.append(store.NewAlarm(alarm_id, raised, cleared_at, parent))
    r.raised.append(
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
                is_root_cause=parent is None,
                parent_alarm_id=parent,
                crossed_threshold_information=store.crossed_threshold(raised),
            ),
            source=SOURCE,
            subject=alarm_id,
            cause=cause,
        )
    )
    if cleared_at is not None:
        r.raised.append(_cleared(cause, alarm_id, raised.reduction_key, raised.alarmed_object_id, cleared_at))
    elif parent is not None:
        with event_context(cause):
            log.info("symptom of a node failure", alarm_id=alarm_id, parent_alarm_id=parent)
    elif lifecycle.opens_ticket(raised.perceived_severity, raised.service_affecting):
        r.ticketing.append((cause, alarm_id, raised))
        if raised.alarmed_object_type is ResourceType.NODE:
            r.node_roots.setdefault(raised.alarmed_object_id, (alarm_id, raised.event_time))


# Resources that fail with the node they hang off: a node's alarm explains theirs.
_ON_NODES = frozenset({ResourceType.LINK, ResourceType.PORT, ResourceType.CELL})


def _root_cause(r: _Round, raised: ProbeAlarmRaised) -> str | None:
    """The node alarm that explains a new link, port or cell alarm, if one does."""
    if raised.alarmed_object_type not in _ON_NODES:
        return None
    for node in r.attached.get(raised.alarmed_object_id, ()):
        root = r.node_roots.get(node)
        if root is not None and lifecycle.explains(root[1], raised.event_time):
            return root[0]
    return None


def _decide_clear(
    r: _Round, cause: Envelope[EventPayload], clear: ProbeAlarmCleared, state: KeyState
) -> None:
    outcome = lifecycle.decide_clear(state, clear)
    if outcome is ClearOutcome.CLEAR:
        assert state.active_alarm_id is not None
        r.clears.append((cause, state.active_alarm_id, clear))
    elif outcome is ClearOutcome.HOLD:
        r.holds[clear.reduction_key] = clear.event_time
        with event_context(cause):
            log.debug("clear held until its raise arrives", reduction_key=clear.reduction_key)


async def _repeats(
    conn: Connection, repeats: list[tuple[Envelope[EventPayload], str, ProbeAlarmRaised]]
) -> Out:
    counted = await store.record_repeats(conn, [(alarm_id, raised) for _, alarm_id, raised in repeats])
    out: Out = []
    for cause, alarm_id, raised in repeats:
        before = counted[alarm_id]
        if before["previous_severity"] == raised.perceived_severity.value:
            continue
        out.append(
            new_event(
                AlarmChanged(
                    alarm_id=alarm_id,
                    reduction_key=raised.reduction_key,
                    perceived_severity=raised.perceived_severity,
                    previous_severity=PerceivedSeverity(before["previous_severity"]),
                    alarm_changed_time=raised.event_time,
                    occurrences=before["occurrences"],
                ),
                source=SOURCE,
                subject=alarm_id,
                cause=cause,
            )
        )
    return out


async def _tickets_and_outages(
    conn: Connection, ticketing: list[tuple[Envelope[EventPayload], str, ProbeAlarmRaised]]
) -> Out:
    """Open a ticket per alarm, unless its resource is locked for maintenance; move each service
    on the failed resource to a detour around every failed resource, or, where there is none,
    start its outage."""
    if not ticketing:
        return []
    maintained = await states.locked(conn, sorted({raised.alarmed_object_id for _, _, raised in ticketing}))
    services = await store.services_on(conn, sorted({raised.alarmed_object_id for _, _, raised in ticketing}))
    affected = sorted({s for placed in services.values() for s, _ in placed})
    open_outages = await store.open_outages(conn, affected)
    paths = await store.service_paths(conn, [s for s in affected if s not in open_outages])
    links, failed = await store.network(conn) if paths else ([], set())
    now = datetime.now(UTC)
    tickets: list[store.NewTicket] = []
    outages: list[store.NewOutage] = []
    causes: list[tuple[str, str]] = []
    moves: dict[str, list[str]] = {}
    out: Out = []
    for cause, alarm_id, raised in ticketing:
        placed = services.get(raised.alarmed_object_id, [])
        ticket = store.NewTicket(
            ticket_id=_id("TT"),
            alarm_id=alarm_id,
            name=f"{raised.probable_cause.value} on {raised.alarmed_object_type.value} {raised.alarmed_object_id}",
            severity=raised.perceived_severity.value,
            priority=lifecycle.ticket_priority(raised.perceived_severity),
            status=TroubleTicketStatus.ACKNOWLEDGED.value,
            created_at=now,
            field_work=lifecycle.needs_field_work(raised.probable_cause),
        )
        if raised.alarmed_object_id not in maintained:
            tickets.append(ticket)
            out.append(_ticket_created(cause, ticket, raised, [s for s, _ in placed]))
        for service_id, customer_ids in placed:
            if service_id in moves:
                continue  # already moved around every failed resource, this one included
            outage_id = open_outages.get(service_id)
            if outage_id is None and service_id in paths:
                new_path = detour(paths[service_id], links, failed)
                if new_path is not None:
                    moves[service_id] = new_path
                    out.append(
                        new_event(
                            ServiceRerouted(
                                service_id=service_id,
                                alarm_id=alarm_id,
                                failed_resource_id=raised.alarmed_object_id,
                                previous_path=tuple(paths[service_id]),
                                new_path=tuple(new_path),
                                rerouted_at=now,
                                customer_ids=tuple(customer_ids),
                            ),
                            source=SOURCE,
                            subject=service_id,
                            cause=cause,
                        )
                    )
                    continue
            if outage_id is None:
                outage_id = open_outages[service_id] = _id("OUT")
                outages.append(
                    store.NewOutage(
                        outage_id,
                        service_id,
                        raised.alarmed_object_id,
                        alarm_id,
                        raised.event_time,
                        customer_ids,
                    )
                )
                out.append(
                    new_event(
                        ServiceOutageStarted(
                            outage_id=outage_id,
                            service_id=service_id,
                            resource_id=raised.alarmed_object_id,
                            alarm_id=alarm_id,
                            started_at=raised.event_time,
                            customer_ids=tuple(customer_ids),
                        ),
                        source=SOURCE,
                        subject=service_id,
                        cause=cause,
                    )
                )
            causes.append((outage_id, alarm_id))
    await store.open_tickets(conn, tickets)
    await store.move_services(conn, list(moves.items()))
    await store.start_outages(conn, outages)
    await store.add_causes(conn, causes)
    return out


def _ticket_created(
    cause: Envelope[EventPayload], ticket: store.NewTicket, raised: ProbeAlarmRaised, service_ids: list[str]
) -> Envelope[EventPayload]:
    related = [
        RelatedEntity(id=ticket.alarm_id, role="rootCauseAlarm", referred_type="Alarm"),
        RelatedEntity(id=raised.alarmed_object_id, role="affectedResource", referred_type="Resource"),
        *(RelatedEntity(id=s, role="affectedService", referred_type="Service") for s in service_ids),
    ]
    return new_event(
        TroubleTicketCreated(
            ticket_id=ticket.ticket_id,
            name=ticket.name,
            description=(
                f"{raised.alarm_type.value} {raised.probable_cause.value} "
                f"({raised.specific_problem or 'no detail'}) reported by {raised.source_system_id}; "
                f"{len(service_ids)} service(s) affected"
            ),
            severity=raised.perceived_severity,
            priority=ticket.priority,
            status=TroubleTicketStatus(ticket.status),
            creation_date=ticket.created_at,
            related_entity=tuple(related),
            field_work_required=ticket.field_work,
        ),
        source=SOURCE,
        subject=ticket.ticket_id,
        cause=cause,
    )


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


async def _clears(
    conn: Connection, clears: list[tuple[Envelope[EventPayload], str, ProbeAlarmCleared]]
) -> Out:
    if not clears:
        return []
    cleared = [(alarm_id, clear.event_time) for _, alarm_id, clear in clears]
    causes = {alarm_id: cause for cause, alarm_id, _ in clears}
    await store.clear_alarms(conn, cleared)
    out: Out = [
        _cleared(cause, alarm_id, clear.reduction_key, clear.alarmed_object_id, clear.event_time)
        for cause, alarm_id, clear in clears
    ]
    # What a root cause explained clears with it (unless the probe still reports it).
    for symptom in await store.clear_symptoms(conn, cleared):
        out.append(
            _cleared(
                causes[symptom["parent_alarm_id"]],
                symptom["id"],
                symptom["reduction_key"],
                symptom["alarmed_object_id"],
                symptom["cleared_at"],
            )
        )
    now = datetime.now(UTC)
    for ticket in await store.resolve_tickets(conn, [alarm_id for alarm_id, _ in cleared], now):
        out.append(
            new_event(
                TroubleTicketResolved(
                    ticket_id=ticket["id"],
                    status=TroubleTicketStatus.RESOLVED,
                    resolution_date=now,
                    status_change_reason=_resolution_reason(ticket),
                ),
                source=SOURCE,
                subject=ticket["id"],
                cause=causes[ticket["alarm_id"]],
            )
        )
    latest = max(cleared, key=lambda c: c[1])[0]
    for outage in await store.remove_causes_and_restore(conn, cleared):
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
                cause=causes.get(outage["alarm_id"], causes[latest]),
            )
        )
    return out


def _resolution_reason(ticket: Any) -> str:
    """Why a ticket was resolved by its alarm's clear."""
    reason = f"alarm {ticket['alarm_id']} cleared"
    if ticket["work_order_state"] == WorkOrderState.COMPLETED.value:
        return f"{reason}; work order {ticket['work_order_id']} completed"
    if ticket["work_order_state"] == WorkOrderState.ACKNOWLEDGED.value:
        return f"{reason} before work started on {ticket['work_order_id']}"
    if ticket["work_order_id"] is not None:
        return f"{reason} while work order {ticket['work_order_id']} was {ticket['work_order_state']}"
    return reason


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


async def escalate_overdue_tickets(conn: Connection, now: datetime) -> list[Envelope[EventPayload]]:
    """TroubleTicketEscalated for every open ticket past its severity's time limit, once."""
    limits = {
        severity.value: limit.total_seconds() for severity, limit in lifecycle.ESCALATION_LIMITS.items()
    }
    return [
        new_event(
            TroubleTicketEscalated(
                ticket_id=r["id"],
                severity=PerceivedSeverity(r["severity"]),
                priority=r["priority"],
                open_seconds=float(r["open_seconds"]),
                limit_seconds=r["limit_seconds"],
                escalated_at=now,
            ),
            source=SOURCE,
            subject=r["id"],
        )
        for r in await store.escalate_tickets(conn, limits, now)
    ]
