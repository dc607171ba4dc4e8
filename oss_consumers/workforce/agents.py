"""Workforce's consumer: a work order for each ticket that needs field work, dispatched to a
technician by skill, region, shift and load; technicians' reports move it on; SLA timers.

Rules:
- A work order is cancelled when its ticket is resolved before anyone started (the fault went
  away by itself); once a technician is on site, the work order runs to its end.
- A work order nobody can take (no technician with the skill in the region on shift, or all at
  their limit) waits in state pending and is dispatched as soon as someone is free.
- A failed visit sends the work order back to pending, for another visit; its ticket stays open
  until the alarm clears and nobody is on site.
- An escalated ticket raises its open work order's priority, and shortens its due date to the
  new priority's SLA counted from the work order's creation.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence, Set
from datetime import UTC, datetime

import asyncpg
import structlog

from events import Envelope, EventPayload, new_event
from events.oss import (
    TroubleTicketCreated,
    TroubleTicketEscalated,
    TroubleTicketResolved,
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderEscalated,
    WorkOrderProgressReported,
    WorkOrderSlaBreached,
    WorkOrderState,
    WorkOrderStateChanged,
)
from events.x733 import AlarmType, ProbableCause, ResourceType
from oss_consumers.workforce import dispatch, store
from runtime.consumer import Rejected, event_context
from runtime.db import Connection

COMPONENT = "oss-workforce"
SOURCE = "/oss/workforce"
HANDLES = (TroubleTicketCreated, TroubleTicketEscalated, TroubleTicketResolved, WorkOrderProgressReported)
PUBLISHES = (
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderStateChanged,
    WorkOrderEscalated,
    WorkOrderSlaBreached,
)
log = structlog.get_logger(__name__)

Out = list[Envelope[EventPayload]]

# What a technician may report, from which state.
_REPORTABLE = {
    WorkOrderState.IN_PROGRESS: {WorkOrderState.ACKNOWLEDGED},
    # A failed visit sends the job back to pending, for another visit.
    WorkOrderState.COMPLETED: {WorkOrderState.ACKNOWLEDGED, WorkOrderState.IN_PROGRESS},
    WorkOrderState.FAILED: {WorkOrderState.ACKNOWLEDGED, WorkOrderState.IN_PROGRESS},
}


# Every workforce transaction takes this first, before any row lock: the consumer and the
# periodic dispatch never wait for each other in opposite orders.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ossbss-workforce-dispatch'))"


async def handle_batch(
    conn: Connection, events: Sequence[Envelope[EventPayload]]
) -> Sequence[Envelope[EventPayload]]:
    """Apply a batch in the caller's transaction. The tickets of a run of openings are read and
    written together, and dispatch runs once, at the end of the batch: a flood of tickets costs a
    few statements per batch, not per ticket."""
    await conn.execute(_LOCK)
    now = datetime.now(UTC)
    out: Out = []
    opening: list[tuple[Envelope[EventPayload], TroubleTicketCreated]] = []
    causes: dict[str, Envelope[EventPayload]] = {}
    for event in events:
        data = event.data
        if isinstance(data, TroubleTicketCreated):
            if data.field_work_required:
                opening.append((event, data))
                causes[data.ticket_id] = event
            continue
        out.extend(await _open(conn, opening, now))
        opening = []
        with event_context(event):
            if isinstance(data, TroubleTicketResolved):
                out.extend(await _ticket_resolved(conn, event, data, now))
            elif isinstance(data, WorkOrderProgressReported):
                out.extend(await _report(conn, event, data, now))
                causes[data.work_order_id] = event
            elif isinstance(data, TroubleTicketEscalated):
                out.extend(await _escalate(conn, event, data, now))
            else:
                raise Rejected(f"{COMPONENT} does not handle {event.type}")
    out.extend(await _open(conn, opening, now))
    fresh = {e.data.work_order_id for e in out if isinstance(e.data, WorkOrderCreated)}
    dispatched, parked = await dispatch_waiting(conn, now, causes, fresh)
    # A work order nobody could take from the start is announced as created pending, with why.
    for n, event in enumerate(out):
        if isinstance(event.data, WorkOrderCreated) and event.data.work_order_id in parked:
            waiting = event.data.model_copy(
                update={"state": WorkOrderState.PENDING, "state_reason": parked[event.data.work_order_id]}
            )
            out[n] = dataclasses.replace(event, data=waiting)
    return [*out, *dispatched]


def _related(ticket: TroubleTicketCreated, role: str) -> str | None:
    return next((e.id for e in ticket.related_entity if e.role == role), None)


async def _open(
    conn: Connection, opening: Sequence[tuple[Envelope[EventPayload], TroubleTicketCreated]], now: datetime
) -> Out:
    """A work order for each ticket (none for a ticket that has one already: a redelivery)."""
    if not opening:
        return []
    places: list[tuple[str, str]] = []
    for _, ticket in opening:
        alarm_id, resource_id = _related(ticket, "rootCauseAlarm"), _related(ticket, "affectedResource")
        if alarm_id is None or resource_id is None:
            raise Rejected(f"ticket {ticket.ticket_id} names no alarm or no resource")
        places.append((alarm_id, resource_id))
    jobs = await store.jobs_of(conn, places)
    orders: list[tuple[Envelope[EventPayload], WorkOrderCreated]] = []
    for (cause, ticket), (alarm_id, resource_id) in zip(opening, places, strict=True):
        job = jobs.get(alarm_id)
        if job is None:
            raise Rejected(f"ticket {ticket.ticket_id}: alarm {alarm_id} is unknown")
        created = WorkOrderCreated(
            work_order_id=f"WO-{uuid.uuid4().hex[:12]}",
            ticket_id=ticket.ticket_id,
            alarm_id=alarm_id,
            resource_id=resource_id,
            site_id=job.site_id,
            region=job.region,
            required_skill=dispatch.required_skill(
                ResourceType(job.resource_type), AlarmType(job.alarm_type), ProbableCause(job.probable_cause)
            ),
            priority=ticket.priority,
            state=WorkOrderState.ACKNOWLEDGED,
            creation_date=now,
            due_date=dispatch.due_date(now, ticket.priority),
        )
        orders.append((cause, created))
    inserted = await store.insert_work_orders(conn, [created for _, created in orders])
    return [
        new_event(created, source=SOURCE, subject=created.work_order_id, cause=cause)
        for cause, created in orders
        if created.work_order_id in inserted
    ]


async def dispatch_waiting(
    conn: Connection,
    now: datetime,
    causes: Mapping[str, Envelope[EventPayload]] | None = None,
    fresh: Set[str] = frozenset(),
) -> tuple[Out, dict[str, str]]:
    """Give unassigned work orders to the technicians who can take one now, most urgent first;
    move new work orders nobody can take to pending, saying why. Returns the events, and the
    ``fresh`` work orders (opened in this batch, not announced yet) that went to pending, with
    why: their creation is announced as pending instead of a change.

    Only work orders some free technician could do are read, so a backlog of thousands waiting
    for a busy crew costs nothing when nobody is free. The caller holds ``_LOCK``."""
    loads = await store.loads(conn)
    free = [t for t in await store.technicians(conn) if t.on_shift(now) and loads.get(t.id, 0) < t.max_open]
    out: Out = []
    if free:
        for wo in await store.unassigned(conn, free, sum(t.max_open - loads.get(t.id, 0) for t in free)):
            tech = dispatch.pick(free, loads, wo["required_skill"], wo["region"], now)
            if tech is None:
                continue
            cause = _cause_of(wo, causes)
            loads[tech.id] = loads.get(tech.id, 0) + 1
            await store.assign(conn, wo["id"], tech.id, now)
            if wo["state"] == WorkOrderState.PENDING.value:
                out.append(
                    _changed(wo, WorkOrderState.ACKNOWLEDGED, tech.id, now, f"dispatched to {tech.id}", cause)
                )
            out.append(
                new_event(
                    WorkOrderDispatched(
                        work_order_id=wo["id"],
                        ticket_id=wo["ticket_id"],
                        technician_id=tech.id,
                        dispatched_at=now,
                        due_date=wo["due_at"],
                        load=loads[tech.id],
                    ),
                    source=SOURCE,
                    subject=wo["id"],
                    cause=cause,
                )
            )
    parked: dict[str, str] = {}
    for wo in await store.park_unassigned(conn):
        reason = f"no technician with skill {wo['required_skill']} free and on shift in region {wo['region'] or 'any'}"
        if wo["id"] in fresh:
            parked[wo["id"]] = reason
            continue
        out.append(
            _changed(
                wo,
                WorkOrderState.PENDING,
                None,
                now,
                reason,
                _cause_of(wo, causes),
                WorkOrderState.ACKNOWLEDGED,
            )
        )
    return out, parked


def _cause_of(
    wo: asyncpg.Record, causes: Mapping[str, Envelope[EventPayload]] | None
) -> Envelope[EventPayload] | None:
    """The event of this batch that led to a dispatch decision: the ticket's opening, or else one
    that freed a technician; None for the periodic dispatch."""
    if not causes:
        return None
    return causes.get(wo["ticket_id"]) or next(iter(causes.values()))


def _changed(
    wo: asyncpg.Record,
    state: WorkOrderState,
    technician_id: str | None,
    at: datetime,
    reason: str,
    cause: Envelope[EventPayload] | None,
    previous: WorkOrderState | None = None,
) -> Envelope[EventPayload]:
    """The state change of a work order; ``previous`` defaults to the row's state."""
    return new_event(
        WorkOrderStateChanged(
            work_order_id=wo["id"],
            ticket_id=wo["ticket_id"],
            state=state,
            previous_state=previous or WorkOrderState(wo["state"]),
            technician_id=technician_id,
            changed_at=at,
            reason=reason,
        ),
        source=SOURCE,
        subject=wo["id"],
        cause=cause,
    )


async def _ticket_resolved(
    conn: Connection, cause: Envelope[EventPayload], resolved: TroubleTicketResolved, now: datetime
) -> Out:
    wo = await store.open_work_order_of_ticket(conn, resolved.ticket_id)
    if wo is None or wo["state"] == WorkOrderState.IN_PROGRESS.value:
        return []  # none, or the technician is on site and finishes the job
    await store.set_state(conn, wo["id"], WorkOrderState.CANCELLED.value, now)
    return [
        _changed(
            wo,
            WorkOrderState.CANCELLED,
            wo["technician_id"],
            now,
            f"ticket resolved: {resolved.status_change_reason}",
            cause,
        )
    ]


async def _escalate(
    conn: Connection, cause: Envelope[EventPayload], escalated: TroubleTicketEscalated, now: datetime
) -> Out:
    """The ticket's open work order takes the ticket's new priority and its shorter SLA."""
    wo = await store.open_work_order_of_ticket(conn, escalated.ticket_id)
    if wo is None or wo["priority"] <= escalated.priority:
        return []
    due = min(wo["due_at"], dispatch.due_date(wo["created_at"], escalated.priority))
    await store.reprioritize(conn, wo["id"], escalated.priority, due)
    return [
        new_event(
            WorkOrderEscalated(
                work_order_id=wo["id"],
                ticket_id=wo["ticket_id"],
                priority=escalated.priority,
                due_date=due,
                escalated_at=now,
            ),
            source=SOURCE,
            subject=wo["id"],
            cause=cause,
        )
    ]


async def _report(
    conn: Connection, cause: Envelope[EventPayload], report: WorkOrderProgressReported, now: datetime
) -> Out:
    wo = await store.work_order(conn, report.work_order_id)
    if wo is None:
        raise Rejected(f"no work order {report.work_order_id}")
    if wo["technician_id"] != report.technician_id:
        raise Rejected(
            f"work order {report.work_order_id} is assigned to {wo['technician_id'] or 'nobody'}, "
            f"not {report.technician_id}"
        )
    allowed = _REPORTABLE.get(report.state)
    current = WorkOrderState(wo["state"])
    if allowed is None:
        raise Rejected(f"a technician cannot report {report.state.value}")
    if current not in allowed:
        raise Rejected(
            f"work order {report.work_order_id} is {current.value}: cannot go to {report.state.value}"
        )
    await store.set_state(conn, wo["id"], report.state.value, report.reported_at, report.note)
    reason = report.note or f"reported by {report.technician_id}"
    out = [_changed(wo, report.state, report.technician_id, report.reported_at, reason, cause)]
    if report.state is WorkOrderState.FAILED:
        # The fault is still there: the job waits for the next technician who can take it.
        await store.unassign(conn, wo["id"])
        out.append(
            _changed(
                wo,
                WorkOrderState.PENDING,
                None,
                now,
                f"visit by {report.technician_id} failed: another visit needed",
                cause,
                WorkOrderState.FAILED,
            )
        )
    return out


async def check_timers(conn: Connection, now: datetime) -> list[Envelope[EventPayload]]:
    """Periodic: dispatch what waits (shifts change, technicians free up) and publish each SLA
    breach once."""
    await conn.execute(_LOCK)
    out, _ = await dispatch_waiting(conn, now)
    for r in await store.breach_overdue(conn, now):
        out.append(
            new_event(
                WorkOrderSlaBreached(
                    work_order_id=r["id"],
                    ticket_id=r["ticket_id"],
                    priority=r["priority"],
                    due_date=r["due_at"],
                    technician_id=r["technician_id"],
                    breached_at=now,
                ),
                source=SOURCE,
                subject=r["id"],
            )
        )
    return out
