"""Workforce against the real PostgreSQL, driven by the events fault management publishes: a
ticket that needs field work gets a work order and a technician; the ticket waits for a
technician on site, resolves when the work is done and the alarm has cleared, and a work order
nobody started is cancelled when its fault goes away."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, time, timedelta

import asyncpg
import pytest
import pytest_asyncio

from events import Envelope, EventPayload, new_event
from events.oss import (
    AlarmClearanceRequested,
    ResourceStateChanged,
    TroubleTicketCreated,
    TroubleTicketEscalated,
    TroubleTicketResolved,
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderEscalated,
    WorkOrderSlaBreached,
    WorkOrderState,
)
from events.x733 import PerceivedSeverity, ResourceType
from oss_consumers.fault.agents import handle_batch
from oss_consumers.workforce import agents as workforce
from oss_consumers.workforce.technicians import progress
from producers.probes import CONDITIONS, Resource, clear_event, raise_event
from runtime.consumer import Rejected
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool

LOS = CONDITIONS[ResourceType.LINK][0]  # critical, service-affecting: needs field work


@pytest_asyncio.fixture(loop_scope="session")
async def oss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with domain_pool(endpoints, settings, "oss") as pool:
        tag = uuid.uuid4().hex[:6].upper()
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO resources (id, resource_type, name, site_id) VALUES ($1, 'site', $1, $1)",
                f"SITE-{tag}",
            )
            await conn.execute(
                "INSERT INTO resources (id, resource_type, name, site_id) VALUES ($1, 'node', $1, $2)",
                f"NODE-{tag}",
                f"SITE-{tag}",
            )
            await conn.executemany(
                "INSERT INTO resources (id, resource_type, name, a_end, z_end) VALUES ($1, 'link', $1, $2, $2)",
                [(f"LINK-{tag}-{n}", f"NODE-{tag}") for n in (1, 2)],
            )
            await conn.execute("INSERT INTO site_regions VALUES ($1, $2)", f"SITE-{tag}", f"R-{tag}")
            # One technician, always on shift, who takes one job at a time.
            await conn.execute(
                "INSERT INTO technicians VALUES ($1, 'crew', $2, '{fibre}', $3, $4, 1)",
                f"T-{tag}",
                f"R-{tag}",
                time(0, 0),
                time(23, 59, 59, 999999),
            )
        yield pool, tag


async def fault(pool: asyncpg.Pool, events: Sequence[Envelope[EventPayload]]) -> list[Envelope[EventPayload]]:
    async with pool.acquire() as conn, conn.transaction():
        return list(await handle_batch(conn, events))


async def crew(pool: asyncpg.Pool, event: Envelope[EventPayload]) -> list[Envelope[EventPayload]]:
    async with pool.acquire() as conn, conn.transaction():
        return list(await workforce.handle_batch(conn, [event]))


def only(out: list[Envelope[EventPayload]], kind: type[EventPayload]) -> list[Envelope[EventPayload]]:
    return [e for e in out if isinstance(e.data, kind)]


async def test_a_work_order_from_raise_to_resolved_ticket(oss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = oss
    tech = f"T-{tag}"
    now = datetime.now(UTC)
    link1, link2 = (Resource(f"LINK-{tag}-{n}", ResourceType.LINK) for n in (1, 2))

    # Two link failures: two tickets that need field work, so two work orders.
    raised = await fault(pool, [raise_event(link1, LOS, now, "p"), raise_event(link2, LOS, now, "p")])
    tickets = only(raised, TroubleTicketCreated)
    disabled = only(raised, ResourceStateChanged)
    assert sorted((e.data.resource_id, e.data.operational_state.value) for e in disabled) == [  # type: ignore[attr-defined]
        (link1.id, "disable"),
        (link2.id, "disable"),
    ]
    assert [t.data.field_work_required for t in tickets] == [True, True]  # type: ignore[attr-defined]
    first = await crew(pool, tickets[0])
    assert await fault(pool, first) == []
    assert [e.type for e in first] == ["WorkOrderCreated", "WorkOrderDispatched"]
    wo1 = first[1].data
    assert isinstance(wo1, WorkOrderDispatched) and wo1.technician_id == tech and wo1.load == 1
    assert first[0].data.region == f"R-{tag}" and first[0].data.required_skill == "fibre"  # type: ignore[attr-defined]
    # The only technician is at their limit: the second waits, saying why.
    second = await crew(pool, tickets[1])
    assert [e.type for e in second] == ["WorkOrderCreated"]  # created pending: no change to announce
    waiting = second[0].data
    assert isinstance(waiting, WorkOrderCreated) and waiting.state is WorkOrderState.PENDING
    assert "no technician with skill fibre" in waiting.state_reason
    assert await fault(pool, second) == []
    assert await crew(pool, tickets[0]) == []  # a redelivered ticket opens nothing new

    # Reports: only the assigned technician, only in order.
    with pytest.raises(Rejected, match="assigned to"):
        await crew(pool, progress(wo1.work_order_id, "SOMEONE-ELSE", WorkOrderState.IN_PROGRESS))
    on_site = await crew(pool, progress(wo1.work_order_id, tech, WorkOrderState.IN_PROGRESS, "on site"))
    assert [e.data.state for e in on_site] == [WorkOrderState.IN_PROGRESS]  # type: ignore[attr-defined]
    assert await fault(pool, on_site) == []

    # The alarm clears while the technician is on site: the ticket waits for the work order.
    cleared = await fault(pool, [clear_event(link1, LOS, now + timedelta(seconds=5), "p")])
    assert only(cleared, TroubleTicketResolved) == []
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT status FROM trouble_tickets WHERE alarm_id = $1", tickets[0].data.related_entity[0].id
            )
            == "pending"
        )  # type: ignore[attr-defined]

    # Work done: the ticket resolves, and the technician takes the waiting job.
    done = await crew(pool, progress(wo1.work_order_id, tech, WorkOrderState.COMPLETED, "spliced"))
    assert [e.type for e in done] == ["WorkOrderStateChanged", "WorkOrderStateChanged", "WorkOrderDispatched"]
    resolved = only(await fault(pool, done), TroubleTicketResolved)
    assert len(resolved) == 1
    assert f"work order {wo1.work_order_id} completed" in resolved[0].data.status_change_reason  # type: ignore[attr-defined]
    wo2 = done[2].data
    assert isinstance(wo2, WorkOrderDispatched) and wo2.ticket_id == tickets[1].data.ticket_id  # type: ignore[attr-defined]
    with pytest.raises(Rejected, match="completed: cannot go"):
        await crew(pool, progress(wo1.work_order_id, tech, WorkOrderState.IN_PROGRESS))

    # SLA timers: a priority-1 job not done in 4 hours is breached, once.
    later = datetime.now(UTC) + timedelta(hours=5)
    async with pool.acquire() as conn, conn.transaction():
        breaches = only(await workforce.check_timers(conn, later), WorkOrderSlaBreached)
        again = only(await workforce.check_timers(conn, later), WorkOrderSlaBreached)
    assert wo2.work_order_id in [b.data.work_order_id for b in breaches]  # type: ignore[attr-defined]
    assert wo2.work_order_id not in [b.data.work_order_id for b in again]  # type: ignore[attr-defined]

    # An operator clears the second alarm before anyone started: ticket resolved, work cancelled.
    alarm2 = tickets[1].data.related_entity[0].id  # type: ignore[attr-defined]
    request = new_event(
        AlarmClearanceRequested(alarm_id=alarm2, clear_user_id="noc"), source="/t", subject=alarm2
    )
    out = await fault(pool, [request])
    assert [e.type for e in out] == ["AlarmCleared", "TroubleTicketResolved", "ResourceStateChanged"]
    assert out[2].data.operational_state.value == "enable"  # type: ignore[attr-defined]
    assert "before work started" in out[1].data.status_change_reason  # type: ignore[attr-defined]
    cancelled = await crew(pool, out[1])
    assert [e.data.state for e in cancelled] == [WorkOrderState.CANCELLED]  # type: ignore[attr-defined]
    assert await fault(pool, [request]) == []  # clearing a cleared alarm does nothing

    # The alarm's history keeps every state it went through.
    async with pool.acquire() as conn:
        history = await conn.fetch(
            "SELECT state FROM alarm_history WHERE alarm_id = $1 ORDER BY id",
            tickets[0].data.related_entity[0].id,  # type: ignore[attr-defined]
        )
    assert [h["state"] for h in history] == ["raised", "cleared"]


async def test_a_clear_request_for_an_unknown_alarm_is_rejected(oss: tuple[asyncpg.Pool, str]) -> None:
    pool, _ = oss
    request = new_event(
        AlarmClearanceRequested(alarm_id="ALM-NONE", clear_user_id="noc"), source="/t", subject="x"
    )
    with pytest.raises(Rejected, match="no alarm ALM-NONE"):
        await fault(pool, [request])


async def test_a_failed_visit_sends_the_job_back_and_news_applies_in_arrival_order(
    oss: tuple[asyncpg.Pool, str],
) -> None:
    pool, tag = oss
    tech = f"T-{tag}"
    link = Resource(f"LINK-{tag}-1", ResourceType.LINK)
    now = datetime.now(UTC)
    [ticket] = only(await fault(pool, [raise_event(link, LOS, now, "p")]), TroubleTicketCreated)
    opened = await crew(pool, ticket)
    [dispatched] = only(opened, WorkOrderDispatched)
    wo = dispatched.data.work_order_id  # type: ignore[attr-defined]
    assert dispatched.data.technician_id == tech  # type: ignore[attr-defined]
    await fault(pool, opened)

    # A failed visit: the job goes back to pending and is dispatched again.
    failed = await crew(pool, progress(wo, tech, WorkOrderState.FAILED, "needs a new card"))
    assert [(e.type, getattr(e.data, "state", None)) for e in failed] == [
        ("WorkOrderStateChanged", WorkOrderState.FAILED),
        ("WorkOrderStateChanged", WorkOrderState.PENDING),
        ("WorkOrderStateChanged", WorkOrderState.ACKNOWLEDGED),
        ("WorkOrderDispatched", None),
    ]
    assert await fault(pool, failed) == []  # the alarm is still active: the ticket stays open

    # On site again, then the clear, in one batch and in that order: the ticket waits.
    on_site = await crew(pool, progress(wo, tech, WorkOrderState.IN_PROGRESS))
    out = await fault(pool, [*on_site, clear_event(link, LOS, now + timedelta(seconds=5), "p")])
    assert only(out, TroubleTicketResolved) == []
    done = await crew(pool, progress(wo, tech, WorkOrderState.COMPLETED))
    [resolved] = only(await fault(pool, done), TroubleTicketResolved)
    assert f"work order {wo} completed" in resolved.data.status_change_reason  # type: ignore[attr-defined]


async def test_an_escalated_ticket_raises_its_work_order_priority(oss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = oss
    link = Resource(f"LINK-{tag}-2", ResourceType.LINK)
    major = dataclasses.replace(LOS, severity=PerceivedSeverity.MAJOR)
    [ticket] = only(
        await fault(pool, [raise_event(link, major, datetime.now(UTC), "p")]), TroubleTicketCreated
    )
    [created] = only(await crew(pool, ticket), WorkOrderCreated)
    assert created.data.priority == 2  # type: ignore[attr-defined]
    escalated = new_event(
        TroubleTicketEscalated(
            ticket_id=ticket.data.ticket_id,  # type: ignore[attr-defined]
            severity=PerceivedSeverity.MAJOR,
            priority=1,
            open_seconds=3600.0,
            limit_seconds=3600.0,
            escalated_at=datetime.now(UTC),
        ),
        source="/t",
        subject="t",
    )
    [raised] = await crew(pool, escalated)
    assert isinstance(raised.data, WorkOrderEscalated) and raised.data.priority == 1
    assert raised.data.due_date == created.data.creation_date + timedelta(hours=4)  # type: ignore[attr-defined]
    assert await crew(pool, escalated) == []  # already at that priority
