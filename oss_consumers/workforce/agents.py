"""Workforce's consumer: a work order for each ticket that needs field work, dispatched to a
technician by skill, region, shift and load; technicians' reports move it on; SLA timers.

Rules:
- A work order is cancelled when its ticket is resolved before anyone started (the fault went
  away by itself); once a technician is on site, the work order runs to its end.
- A work order nobody can take (no technician with the skill in the region on shift, or all at
  their limit) waits in state pending and is dispatched as soon as someone is free.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
    WorkOrderProgressReported,
    WorkOrderSlaBreached,
    WorkOrderState,
    WorkOrderStateChanged,
)
from events.x733 import AlarmType, ProbableCause, ResourceType
from oss_consumers.workforce import dispatch, store
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "oss-workforce"
SOURCE = "/oss/workforce"
HANDLES = (TroubleTicketCreated, TroubleTicketEscalated, TroubleTicketResolved, WorkOrderProgressReported)
PUBLISHES = (WorkOrderCreated, WorkOrderDispatched, WorkOrderStateChanged, WorkOrderSlaBreached)
log = structlog.get_logger(__name__)

Out = list[Envelope[EventPayload]]

# What a technician may report, from which state.
_REPORTABLE = {
    WorkOrderState.IN_PROGRESS: {WorkOrderState.ACKNOWLEDGED},
    WorkOrderState.COMPLETED: {WorkOrderState.ACKNOWLEDGED, WorkOrderState.IN_PROGRESS},
    WorkOrderState.FAILED: {WorkOrderState.ACKNOWLEDGED, WorkOrderState.IN_PROGRESS},
}


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    data = event.data
    now = datetime.now(UTC)
    if isinstance(data, TroubleTicketCreated):
        return await _open(conn, event, data, now)
    if isinstance(data, TroubleTicketResolved):
        return await _ticket_resolved(conn, event, data, now)
    if isinstance(data, WorkOrderProgressReported):
        return await _report(conn, event, data, now)
    if isinstance(data, TroubleTicketEscalated):
        return []
    raise Rejected(f"{COMPONENT} does not handle {event.type}")


def _related(ticket: TroubleTicketCreated, role: str) -> str | None:
    return next((e.id for e in ticket.related_entity if e.role == role), None)


async def _open(
    conn: Connection, cause: Envelope[EventPayload], ticket: TroubleTicketCreated, now: datetime
) -> Out:
    if not ticket.field_work_required:
        return []
    alarm_id, resource_id = _related(ticket, "rootCauseAlarm"), _related(ticket, "affectedResource")
    if alarm_id is None or resource_id is None:
        raise Rejected(f"ticket {ticket.ticket_id} names no alarm or no resource")
    job = await store.job_of(conn, alarm_id, resource_id)
    if job is None:
        raise Rejected(f"ticket {ticket.ticket_id}: alarm {alarm_id} is unknown")
    skill = dispatch.required_skill(
        ResourceType(job.resource_type), AlarmType(job.alarm_type), ProbableCause(job.probable_cause)
    )
    created = WorkOrderCreated(
        work_order_id=f"WO-{uuid.uuid4().hex[:12]}",
        ticket_id=ticket.ticket_id,
        alarm_id=alarm_id,
        resource_id=resource_id,
        site_id=job.site_id,
        region=job.region,
        required_skill=skill,
        priority=ticket.priority,
        state=WorkOrderState.ACKNOWLEDGED,
        creation_date=now,
        due_date=dispatch.due_date(now, ticket.priority),
    )
    inserted = await store.insert_work_order(
        conn,
        {
            "id": created.work_order_id,
            "ticket_id": created.ticket_id,
            "alarm_id": alarm_id,
            "resource_id": resource_id,
            "site_id": job.site_id,
            "region": job.region,
            "required_skill": skill,
            "priority": created.priority,
            "state": created.state.value,
            "created_at": now,
            "due_at": created.due_date,
        },
    )
    if not inserted:
        return []
    out: Out = [new_event(created, source=SOURCE, subject=created.work_order_id, cause=cause)]
    out.extend(await dispatch_waiting(conn, now, cause))
    return out


async def dispatch_waiting(
    conn: Connection, now: datetime, cause: Envelope[EventPayload] | None = None
) -> Out:
    """Give every unassigned work order to a technician if one can take it, most urgent first;
    move those nobody can take to pending, saying why."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ossbss-workforce-dispatch'))")
    waiting = await store.unassigned(conn)
    if not waiting:
        return []
    crew = await store.technicians(conn)
    loads = await store.loads(conn)
    out: Out = []
    for wo in waiting:
        tech = dispatch.pick(crew, loads, wo["required_skill"], wo["region"], now)
        if tech is None:
            if wo["state"] != WorkOrderState.PENDING.value:
                await store.set_state(conn, wo["id"], WorkOrderState.PENDING.value, now)
                out.append(
                    _changed(
                        wo,
                        WorkOrderState.PENDING,
                        None,
                        now,
                        f"no technician with skill {wo['required_skill']} free and on shift in region "
                        f"{wo['region'] or 'any'}",
                        cause,
                    )
                )
            continue
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
    return out


def _changed(
    wo: asyncpg.Record,
    state: WorkOrderState,
    technician_id: str | None,
    at: datetime,
    reason: str,
    cause: Envelope[EventPayload] | None,
) -> Envelope[EventPayload]:
    return new_event(
        WorkOrderStateChanged(
            work_order_id=wo["id"],
            ticket_id=wo["ticket_id"],
            state=state,
            previous_state=WorkOrderState(wo["state"]),
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
    out = [
        _changed(
            wo,
            WorkOrderState.CANCELLED,
            wo["technician_id"],
            now,
            f"ticket resolved: {resolved.status_change_reason}",
            cause,
        )
    ]
    out.extend(await dispatch_waiting(conn, now, cause))
    return out


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
    if report.state is not WorkOrderState.IN_PROGRESS:
        out.extend(await dispatch_waiting(conn, now, cause))  # the technician is free again
    return out


async def check_timers(conn: Connection, now: datetime) -> list[Envelope[EventPayload]]:
    """Periodic: dispatch what waits (shifts change, technicians free up) and publish each SLA
    breach once."""
    out = await dispatch_waiting(conn, now)
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
