"""OSS resources: TMF642 alarms and TMF621 trouble tickets, read from the OSS schema only.

Changes an operator asks for (acknowledge, clear) are not written here: they are published as
requests through the alarm console, and fault management applies them as it applies every other
alarm event. So a PATCH answers 202 with the alarm as it is now.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import ConfigDict, Field, model_validator

from dashboard.api.errors import ERROR_RESPONSES, ApiError, not_found, published
from dashboard.api.tmf import (
    EdgeDep,
    EntityRef,
    Page,
    QueryTime,
    ResourceId,
    TmfModel,
    TmfRequest,
    Where,
    fetch_page,
    href,
)
from events.oss import AckState, TroubleTicketStatus
from events.x733 import AlarmType, PerceivedSeverity, ResourceType
from oss_consumers.fault import console

ALARMS = "/tmf-api/alarmManagement/v5/alarm"
CLEAR_ALARMS = "/tmf-api/alarmManagement/v5/clearAlarms"
TICKETS = "/tmf-api/troubleTicket/v5/troubleTicket"

router = APIRouter(responses=ERROR_RESPONSES)


async def oss_pool(edge: EdgeDep) -> asyncpg.Pool:
    """The OSS schema's pool: the only data this API reads."""
    return edge.oss_pool


OssPool = Annotated[asyncpg.Pool, Depends(oss_pool)]


# TMF642 alarms --------------------------------------------------------------------------------


class AlarmState(StrEnum):
    """TMF642 ``state`` of an alarm."""

    RAISED = "raised"
    UPDATED = "updated"
    CLEARED = "cleared"


class AlarmRef(TmfModel):
    """TMF642 ``AlarmRef``: another alarm."""

    id: str = Field(description="Alarm id.")
    href: str = Field(description="Where to read it.")
    referred_type: str = Field(default="Alarm", alias="@referredType", description="Always Alarm.")


class Alarm(TmfModel):
    """TMF642 ``Alarm``: an alarm of a network resource, with its lifecycle and correlation."""

    id: str = Field(description="Alarm id.")
    href: str = Field(description="Where to read it.")
    type_: str = Field(default="Alarm", alias="@type", description="TMF class name: Alarm.")
    alarm_type: AlarmType = Field(description="X.733 event type.")
    perceived_severity: PerceivedSeverity = Field(description="X.733 perceived severity.")
    probable_cause: str = Field(description="X.733 probable cause.")
    specific_problem: str | None = Field(default=None, description="Vendor refinement of the cause.")
    state: AlarmState = Field(description="raised, updated (severity changed) or cleared.")
    ack_state: AckState = Field(description="acknowledged or unacknowledged.")
    ack_user_id: str | None = Field(default=None, description="Operator who last changed the ackState.")
    alarmed_object: EntityRef = Field(description="The network resource the alarm is on.")
    alarmed_object_type: ResourceType = Field(description="Kind of resource: site, node, link, ...")
    source_system_id: str = Field(description="Probe that reported the alarm.")
    alarm_raised_time: datetime = Field(description="When the probe first observed it.")
    alarm_changed_time: datetime = Field(description="When the probe last reported it.")
    alarm_cleared_time: datetime | None = Field(default=None, description="When it cleared.")
    is_root_cause: bool = Field(description="False for a symptom explained by another alarm.")
    service_affecting: bool = Field(description="Whether services depend on the failed function.")
    parent_alarm: list[AlarmRef] | None = Field(
        default=None, description="For a symptom: the root-cause alarm that explains it."
    )
    correlated_alarm: list[AlarmRef] | None = Field(
        default=None, description="For a root cause: the symptom alarms it explains."
    )


class AlarmFilter(Page):
    """Filters of ``GET /alarm``; all given filters must hold."""

    state: AlarmState | None = Field(default=None, description="raised, updated or cleared.")
    perceived_severity: PerceivedSeverity | None = Field(default=None, alias="perceivedSeverity")
    ack_state: AckState | None = Field(default=None, alias="ackState")
    alarmed_object_id: str | None = Field(
        default=None, alias="alarmedObjectId", description="Id of the alarmed resource."
    )
    alarm_type: AlarmType | None = Field(default=None, alias="alarmType")
    is_root_cause: bool | None = Field(default=None, alias="isRootCause")
    raised_after: QueryTime | None = Field(
        default=None, alias="raisedTime.gt", description="Raised after this time (RFC 3339, with offset)."
    )
    raised_before: QueryTime | None = Field(
        default=None, alias="raisedTime.lt", description="Raised before this time (RFC 3339, with offset)."
    )


_ALARM_COLUMNS = """
    a.id, a.alarm_type, a.perceived_severity, a.probable_cause, a.specific_problem, a.state,
    a.ack_state, a.ack_user_id, a.alarmed_object_id, a.alarmed_object_type, a.source_system_id,
    a.raised_at, a.last_seen_at, a.cleared_at, a.is_root_cause, a.service_affecting,
    a.parent_alarm_id,
    ARRAY(SELECT s.id FROM alarms s WHERE s.parent_alarm_id = a.id ORDER BY s.raised_at, s.id) AS symptoms
"""


def _alarm_ref(request: Request, alarm_id: str) -> AlarmRef:
    return AlarmRef(id=alarm_id, href=href(request, ALARMS, alarm_id))


def _alarm(request: Request, row: asyncpg.Record) -> Alarm:
    parent = row["parent_alarm_id"]
    symptoms: list[str] = row["symptoms"]
    return Alarm(
        id=row["id"],
        href=href(request, ALARMS, row["id"]),
        alarm_type=row["alarm_type"],
        perceived_severity=row["perceived_severity"],
        probable_cause=row["probable_cause"],
        specific_problem=row["specific_problem"] or None,
        state=row["state"],
        ack_state=row["ack_state"],
        ack_user_id=row["ack_user_id"],
        alarmed_object=EntityRef(id=row["alarmed_object_id"], referred_type="Resource"),
        alarmed_object_type=row["alarmed_object_type"],
        source_system_id=row["source_system_id"],
        alarm_raised_time=row["raised_at"],
        alarm_changed_time=row["last_seen_at"],
        alarm_cleared_time=row["cleared_at"],
        is_root_cause=row["is_root_cause"],
        service_affecting=row["service_affecting"],
        parent_alarm=[_alarm_ref(request, parent)] if parent else None,
        correlated_alarm=[_alarm_ref(request, s) for s in symptoms] or None,
    )


async def _alarm_row(pool: asyncpg.Pool, alarm_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(f"SELECT {_ALARM_COLUMNS} FROM alarms a WHERE a.id = $1", alarm_id)
    if row is None:
        raise not_found("alarm", alarm_id)
    return row


@router.get(
    ALARMS,
    response_model=list[Alarm],
    response_model_exclude_none=True,
    tags=["TMF642 Alarm Management"],
    summary="List alarms",
)
async def list_alarms(
    request: Request, response: Response, pool: OssPool, query: Annotated[AlarmFilter, Query()]
) -> list[Alarm]:
    """Alarms, newest raise first, filtered and paginated (``X-Total-Count``, ``X-Result-Count``)."""
    where = (
        Where()
        .add("a.state = {}", query.state)
        .add("a.perceived_severity = {}", query.perceived_severity)
        .add("a.ack_state = {}", query.ack_state)
        .add("a.alarmed_object_id = {}", query.alarmed_object_id)
        .add("a.alarm_type = {}", query.alarm_type)
        .add("a.is_root_cause = {}", query.is_root_cause)
        .add("a.raised_at > {}", query.raised_after)
        .add("a.raised_at < {}", query.raised_before)
    )
    rows = await fetch_page(
        pool, "alarms a", _ALARM_COLUMNS, where, "a.raised_at DESC, a.id", query, response
    )
    return [_alarm(request, r) for r in rows]


@router.get(
    ALARMS + "/{alarm_id}",
    response_model=Alarm,
    response_model_exclude_none=True,
    tags=["TMF642 Alarm Management"],
    summary="Read one alarm",
)
async def get_alarm(request: Request, alarm_id: ResourceId, pool: OssPool) -> Alarm:
    """One alarm, with its root cause (``parentAlarm``) or its symptoms (``correlatedAlarm``)."""
    return _alarm(request, await _alarm_row(pool, alarm_id))


class AlarmUpdate(TmfRequest):
    """TMF642 alarm PATCH (JSON merge patch): acknowledge, un-acknowledge, or clear."""

    model_config = ConfigDict(extra="forbid")

    ack_state: AckState | None = Field(default=None, description="acknowledged or unacknowledged.")
    ack_user_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Operator changing the acknowledgement."
    )
    state: Literal["cleared"] | None = Field(default=None, description="cleared: clear the alarm by hand.")
    clear_user_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Operator clearing (else ackUserId)."
    )

    @model_validator(mode="before")
    @classmethod
    def _patchable(cls, value: object) -> object:
        """TMF metadata (``@type``, ``id``, ``href``) may come along; other attributes cannot be
        changed by a client."""
        if not isinstance(value, dict):
            return value
        kept = {k: v for k, v in value.items() if not (k.startswith("@") or k in ("id", "href"))}
        other = sorted(set(kept) - {"ackState", "ackUserId", "state", "clearUserId"})
        if other:
            raise ValueError(
                f"{', '.join(other)} cannot be patched: only ackState, ackUserId, state and clearUserId can"
            )
        return kept

    @model_validator(mode="after")
    def _says_who(self) -> AlarmUpdate:
        if self.ack_state is None and self.state is None:
            raise ValueError("give ackState (acknowledged or unacknowledged) or state (cleared)")
        if self.ack_state is not None and self.ack_user_id is None:
            raise ValueError("ackUserId is required with ackState")
        if self.state is not None and self.clear_user_id is None and self.ack_user_id is None:
            raise ValueError("clearUserId (or ackUserId) is required to clear an alarm")
        return self


@router.patch(
    ALARMS + "/{alarm_id}",
    response_model=Alarm,
    response_model_exclude_none=True,
    status_code=202,
    tags=["TMF642 Alarm Management"],
    summary="Acknowledge, un-acknowledge or clear an alarm",
)
async def patch_alarm(
    request: Request,
    alarm_id: ResourceId,
    update: Annotated[AlarmUpdate, Body()],
    pool: OssPool,
    edge: EdgeDep,
) -> Alarm:
    """Publish the operator's request to fault management, which applies it shortly; answers 202
    with the alarm as it is before that."""
    row = await _alarm_row(pool, alarm_id)
    publisher = edge.bus.publisher(console.COMPONENT)
    if update.ack_state is not None:
        assert update.ack_user_id is not None
        undo = update.ack_state is AckState.UNACKNOWLEDGED
        await published(console.request_acknowledgement(publisher, alarm_id, update.ack_user_id, undo=undo))
    if update.state is not None:
        operator = update.clear_user_id or update.ack_user_id
        assert operator is not None
        await published(console.request_clearance(publisher, alarm_id, operator))
    return _alarm(request, row)


class AlarmPattern(TmfRequest):
    """An alarm to clear, selected by its id."""

    id: str = Field(min_length=1, description="Id of an alarm to clear.")

    @model_validator(mode="before")
    @classmethod
    def _by_id(cls, value: object) -> object:
        if isinstance(value, dict) and "id" not in value:
            raise ValueError("alarmPattern entries select alarms by id only: give each one an id")
        return value


class ClearAlarmsRequest(TmfRequest):
    """TMF642 ``ClearAlarms`` task as a client creates it."""

    alarm_pattern: list[AlarmPattern] = Field(min_length=1, max_length=1000, description="Alarms to clear.")
    clear_user_id: str = Field(min_length=1, max_length=128, description="Operator clearing.")
    clear_system_id: str | None = Field(default=None, description="Console the operator uses.")


class ClearAlarms(TmfModel):
    """TMF642 ``ClearAlarms`` task: the clears it asked fault management for."""

    id: str = Field(description="Id of the task.")
    type_: str = Field(default="ClearAlarms", alias="@type", description="TMF class name: ClearAlarms.")
    state: str = Field(description="acknowledged: the clear requests are published.")
    alarm_pattern: list[AlarmPattern] = Field(description="The alarms asked for.")
    clear_user_id: str = Field(description="Operator clearing.")
    clear_system_id: str | None = Field(default=None, description="Console the operator used.")
    cleared_alarm: list[AlarmRef] = Field(
        description="Alarms whose clear was requested (the ones not already cleared)."
    )


@router.post(
    CLEAR_ALARMS,
    response_model=ClearAlarms,
    response_model_exclude_none=True,
    status_code=201,
    tags=["TMF642 Alarm Management"],
    summary="Clear alarms by hand",
)
async def clear_alarms(
    request: Request,
    task: Annotated[ClearAlarmsRequest, Body()],
    pool: OssPool,
    edge: EdgeDep,
) -> ClearAlarms:
    """Ask fault management to clear each alarm of the pattern that is not cleared yet. Every id
    must be known (404 otherwise, and nothing is requested)."""
    ids = list(dict.fromkeys(p.id for p in task.alarm_pattern))
    rows = await pool.fetch("SELECT id, state FROM alarms WHERE id = ANY($1::text[])", ids)
    states = {r["id"]: r["state"] for r in rows}
    unknown = [i for i in ids if i not in states]
    if unknown:
        raise ApiError(404, f"no alarm with id {', '.join(repr(i) for i in unknown)}")
    to_clear = [i for i in ids if states[i] != AlarmState.CLEARED]
    publisher = edge.bus.publisher(console.COMPONENT)
    for alarm_id in to_clear:
        await published(console.request_clearance(publisher, alarm_id, task.clear_user_id))
    return ClearAlarms(
        id=str(uuid.uuid4()),
        state="acknowledged",
        alarm_pattern=task.alarm_pattern,
        clear_user_id=task.clear_user_id,
        clear_system_id=task.clear_system_id,
        cleared_alarm=[_alarm_ref(request, i) for i in to_clear],
    )


# TMF621 trouble tickets -------------------------------------------------------------------------


class RelatedEntity(TmfModel):
    """TMF621 ``RelatedEntity``: what the ticket is about, and in which role."""

    role: str = Field(description="rootCauseAlarm, affectedResource, affectedService or workOrder.")
    entity: EntityRef = Field(description="The related resource.")
    type_: str = Field(default="RelatedEntity", alias="@type", description="TMF class name.")


class StatusChange(TmfModel):
    """TMF621 ``StatusChange``: one recorded change of the ticket's status."""

    status: TroubleTicketStatus = Field(description="Status after the change.")
    change_date: datetime = Field(description="When it changed.")
    change_reason: str = Field(description="Why.")


class Note(TmfModel):
    """TMF621 ``Note``: something that happened to the ticket."""

    date: datetime | None = Field(default=None, description="When.")
    author: str = Field(default="oss-fault", description="Who wrote it.")
    text: str = Field(description="What happened.")


class TroubleTicket(TmfModel):
    """TMF621 ``TroubleTicket`` that fault management opened for a service-affecting alarm."""

    id: str = Field(description="Ticket id.")
    href: str = Field(description="Where to read it.")
    type_: str = Field(default="TroubleTicket", alias="@type", description="TMF class name.")
    name: str = Field(description="Short title.")
    description: str = Field(description="What the ticket is for.")
    severity: PerceivedSeverity = Field(description="Severity of the alarm behind the ticket.")
    priority: str = Field(description="1 (highest) to 4.")
    status: TroubleTicketStatus = Field(description="TMF621 status.")
    ticket_type: str = Field(default="networkIncident", description="Kind of ticket.")
    creation_date: datetime = Field(description="When it was opened.")
    last_update: datetime = Field(description="When it last changed, as far as recorded.")
    resolution_date: datetime | None = Field(default=None, description="When it was resolved.")
    related_entity: list[RelatedEntity] = Field(description="The alarm, the resource, services, work order.")
    status_change: list[StatusChange] | None = Field(
        default=None, description="Recorded status changes, oldest first (single reads only)."
    )
    note: list[Note] | None = Field(
        default=None, description="Escalation and field work (single reads only)."
    )


class TicketFilter(Page):
    """Filters of ``GET /troubleTicket``; all given filters must hold."""

    status: TroubleTicketStatus | None = Field(default=None, description="TMF621 status.")
    severity: PerceivedSeverity | None = Field(default=None, description="critical, major, minor, ...")
    created_after: QueryTime | None = Field(
        default=None, alias="creationDate.gt", description="Opened after this time (RFC 3339, with offset)."
    )
    created_before: QueryTime | None = Field(
        default=None, alias="creationDate.lt", description="Opened before this time (RFC 3339, with offset)."
    )


_TICKET_SOURCE = "trouble_tickets t JOIN alarms a ON a.id = t.alarm_id"
_TICKET_COLUMNS = """
    t.id, t.alarm_id, t.name, t.severity, t.priority, t.status, t.created_at, t.resolved_at,
    t.escalated_at, t.field_work, t.work_order_id, t.work_order_state,
    a.alarmed_object_id, a.alarmed_object_type
"""


def _ticket(request: Request, row: asyncpg.Record, services: Sequence[str] = ()) -> TroubleTicket:
    related = [
        RelatedEntity(
            role="rootCauseAlarm",
            entity=EntityRef(
                id=row["alarm_id"], href=href(request, ALARMS, row["alarm_id"]), referred_type="Alarm"
            ),
        ),
        RelatedEntity(
            role="affectedResource", entity=EntityRef(id=row["alarmed_object_id"], referred_type="Resource")
        ),
        *(
            RelatedEntity(role="affectedService", entity=EntityRef(id=s, referred_type="Service"))
            for s in services
        ),
    ]
    if row["work_order_id"]:
        related.append(
            RelatedEntity(
                role="workOrder", entity=EntityRef(id=row["work_order_id"], referred_type="WorkOrder")
            )
        )
    changed = [t for t in (row["created_at"], row["escalated_at"], row["resolved_at"]) if t is not None]
    return TroubleTicket(
        id=row["id"],
        href=href(request, TICKETS, row["id"]),
        name=row["name"],
        description=(
            f"Alarm {row['alarm_id']} on {row['alarmed_object_type']} {row['alarmed_object_id']}: {row['name']}"
        ),
        severity=row["severity"],
        priority=str(row["priority"]),
        status=row["status"],
        creation_date=row["created_at"],
        last_update=max(changed),
        resolution_date=row["resolved_at"],
        related_entity=related,
    )


def _history(row: asyncpg.Record) -> tuple[list[StatusChange], list[Note]]:
    """What the ticket's columns record of its life: opened, escalated, field work, resolved."""
    changes = [
        StatusChange(
            status=TroubleTicketStatus.ACKNOWLEDGED,
            change_date=row["created_at"],
            change_reason=f"opened for alarm {row['alarm_id']}",
        )
    ]
    if row["resolved_at"] is not None:
        changes.append(
            StatusChange(
                status=TroubleTicketStatus.RESOLVED,
                change_date=row["resolved_at"],
                change_reason="the alarm behind it cleared",
            )
        )
    notes = []
    if row["escalated_at"] is not None:
        notes.append(
            Note(
                date=row["escalated_at"],
                text=f"escalated: still open past its severity's time limit; priority now {row['priority']}",
            )
        )
    if row["field_work"]:
        work = (
            f"work order {row['work_order_id']} is {row['work_order_state']}"
            if row["work_order_id"]
            else None
        )
        notes.append(Note(text=f"needs field work; {work or 'no work order yet'}"))
    return changes, notes


@router.get(
    TICKETS,
    response_model=list[TroubleTicket],
    response_model_exclude_none=True,
    tags=["TMF621 Trouble Ticket"],
    summary="List trouble tickets",
)
async def list_tickets(
    request: Request, response: Response, pool: OssPool, query: Annotated[TicketFilter, Query()]
) -> list[TroubleTicket]:
    """Trouble tickets, newest first, filtered and paginated (``X-Total-Count``, ``X-Result-Count``)."""
    where = (
        Where()
        .add("t.status = {}", query.status)
        .add("t.severity = {}", query.severity)
        .add("t.created_at > {}", query.created_after)
        .add("t.created_at < {}", query.created_before)
    )
    rows = await fetch_page(
        pool, _TICKET_SOURCE, _TICKET_COLUMNS, where, "t.created_at DESC, t.id", query, response
    )
    return [_ticket(request, r) for r in rows]


@router.get(
    TICKETS + "/{ticket_id}",
    response_model=TroubleTicket,
    response_model_exclude_none=True,
    tags=["TMF621 Trouble Ticket"],
    summary="Read one trouble ticket",
)
async def get_ticket(request: Request, ticket_id: ResourceId, pool: OssPool) -> TroubleTicket:
    """One ticket, with the alarm, resource and services it concerns and its recorded history."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {_TICKET_COLUMNS} FROM {_TICKET_SOURCE} WHERE t.id = $1", ticket_id
        )
        if row is None:
            raise not_found("trouble ticket", ticket_id)
        services = await conn.fetch(
            """
            SELECT DISTINCT o.service_id FROM service_outages o
            LEFT JOIN outage_causes c ON c.outage_id = o.id
            WHERE o.alarm_id = $1 OR c.alarm_id = $1 ORDER BY o.service_id
            """,
            row["alarm_id"],
        )
    ticket = _ticket(request, row, [s["service_id"] for s in services])
    ticket.status_change, ticket.note = _history(row)
    return ticket
