"""Fault management applied a whole batch at a time, against the real PostgreSQL: several
notifications of one key, and several alarms on the same services, in one transaction give what
one-by-one processing gives."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio

from events import Envelope, EventPayload
from events.x733 import PerceivedSeverity, ResourceType
from oss_consumers.fault.agents import handle_batch, rounds
from producers.probes import CONDITIONS, Resource, clear_event, raise_event
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool

LINK_CONDITION = CONDITIONS[ResourceType.LINK][0]  # critical, service-affecting
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def oss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with domain_pool(endpoints, settings, "oss") as pool:
        tag = uuid.uuid4().hex[:6].upper()
        # Two links of their own, both carrying the same two services.
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO resources (id, resource_type, name) VALUES ($1, 'link', $1)",
                [(f"LINK-{tag}-A",), (f"LINK-{tag}-B",)],
            )
            await conn.executemany(
                "INSERT INTO services (id, name) VALUES ($1, $1)", [(f"SVC-{tag}-1",), (f"SVC-{tag}-2",)]
            )
            await conn.executemany(
                "INSERT INTO service_resources (service_id, resource_id) VALUES ($1, $2)",
                [(f"SVC-{tag}-{s}", f"LINK-{tag}-{link}") for s in (1, 2) for link in ("A", "B")],
            )
        yield pool, tag


def link(tag: str, name: str) -> Resource:
    return Resource(f"LINK-{tag}-{name}", ResourceType.LINK)


def types(out: list[Envelope[EventPayload]]) -> list[str]:
    return [e.type for e in out]


async def apply(pool: asyncpg.Pool, events: list[Envelope[EventPayload]]) -> list[Envelope[EventPayload]]:
    async with pool.acquire() as conn, conn.transaction():
        return list(await handle_batch(conn, events))


def test_rounds_hold_one_notification_per_key_in_arrival_order() -> None:
    a, b = Resource("LINK-X", ResourceType.LINK), Resource("LINK-Y", ResourceType.LINK)
    events = [
        raise_event(a, LINK_CONDITION, T0, "p"),
        raise_event(b, LINK_CONDITION, T0, "p"),
        clear_event(a, LINK_CONDITION, T0 + timedelta(seconds=1), "p"),
        raise_event(a, LINK_CONDITION, T0 + timedelta(seconds=2), "p"),
    ]
    assert [[e.id for e in r] for r in rounds(events)] == [
        [events[0].id, events[1].id],
        [events[2].id],
        [events[3].id],
    ]


async def test_raise_clear_raise_of_one_key_in_one_batch(oss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = oss
    a = link(tag, "A")
    out = await apply(
        pool,
        [
            raise_event(a, LINK_CONDITION, T0, "p"),
            raise_event(a, LINK_CONDITION, T0 + timedelta(seconds=1), "p"),  # repeat
            clear_event(a, LINK_CONDITION, T0 + timedelta(seconds=2), "p"),
            raise_event(a, LINK_CONDITION, T0 + timedelta(seconds=3), "p"),  # a new alarm
        ],
    )
    assert types(out).count("AlarmRaised") == 2
    assert types(out).count("AlarmCleared") == 1
    assert types(out).count("TroubleTicketCreated") == 2
    assert types(out).count("TroubleTicketResolved") == 1
    started = [e.data for e in out if e.type == "ServiceOutageStarted"]
    restored = [e.data for e in out if e.type == "ServiceRestored"]
    assert len(started) == 4 and len(restored) == 2  # down, up, down again: two services
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT state, occurrences FROM alarms WHERE alarmed_object_id = $1 ORDER BY raised_at", a.id
        )
        open_outages = await conn.fetchval(
            "SELECT count(*) FROM service_outages WHERE service_id LIKE $1 AND restored_at IS NULL",
            f"SVC-{tag}-%",
        )
    assert [(r["state"], r["occurrences"]) for r in rows] == [("cleared", 2), ("raised", 1)]
    assert open_outages == 2


async def test_services_stay_down_until_every_failed_link_clears(oss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = oss
    a, b = link(tag, "A"), link(tag, "B")
    out = await apply(
        pool, [raise_event(a, LINK_CONDITION, T0, "p"), raise_event(b, LINK_CONDITION, T0, "p")]
    )
    assert types(out).count("ServiceOutageStarted") == 2  # one outage per service, two causes each
    out = await apply(pool, [clear_event(a, LINK_CONDITION, T0 + timedelta(seconds=5), "p")])
    assert "ServiceRestored" not in types(out)
    out = await apply(
        pool,
        [
            clear_event(b, LINK_CONDITION, T0 + timedelta(seconds=9), "p"),
            clear_event(b, LINK_CONDITION, T0 + timedelta(seconds=9), "p"),  # repeated clear
        ],
    )
    restored = [e.data for e in out if e.type == "ServiceRestored"]
    assert sorted(r.service_id for r in restored) == [f"SVC-{tag}-1", f"SVC-{tag}-2"]
    assert all(r.duration_seconds == 9.0 for r in restored)
    assert types(out).count("AlarmCleared") == 1


async def test_services_are_moved_around_a_failure_while_a_path_remains(
    oss: tuple[asyncpg.Pool, str],
) -> None:
    pool, tag = oss
    n1, n2, n3 = (f"NODE-{tag}-{n}" for n in (1, 2, 3))
    a, b, c = (f"LINK-{tag}-{x}" for x in ("X", "Y", "Z"))
    service = f"SVC-{tag}-R"
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name) VALUES ($1, 'node', $1)",
            [(n,) for n in (n1, n2, n3)],
        )
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name, a_end, z_end) VALUES ($1, 'link', $1, $2, $3)",
            [(a, n1, n2), (b, n2, n3), (c, n1, n3)],
        )
        await conn.execute("INSERT INTO services (id, name) VALUES ($1, $1)", service)
        await conn.executemany(
            "INSERT INTO service_resources (service_id, resource_id, position) VALUES ($1, $2, $3)",
            [(service, r, n) for n, r in enumerate([n1, a, n2, b, n3])],
        )
    # X fails: the service moves to Z and stays up.
    out = await apply(pool, [raise_event(Resource(a, ResourceType.LINK), LINK_CONDITION, T0, "p")])
    [moved] = [e.data for e in out if e.type == "ServiceRerouted"]
    assert moved.previous_path == (n1, a, n2, b, n3) and moved.new_path == (n1, c, n3)
    assert "ServiceOutageStarted" not in types(out) and "TroubleTicketCreated" in types(out)
    # Z fails too: no way round X and Z, so the service is down.
    out = await apply(pool, [raise_event(Resource(c, ResourceType.LINK), LINK_CONDITION, T0, "p")])
    assert [e.data.service_id for e in out if e.type == "ServiceOutageStarted"] == [service]
    # Repairs: the outage ends when Z clears; the service keeps the path it was moved to.
    out = await apply(
        pool, [clear_event(Resource(a, ResourceType.LINK), LINK_CONDITION, T0 + timedelta(seconds=5), "p")]
    )
    assert "ServiceRestored" not in types(out)
    out = await apply(
        pool, [clear_event(Resource(c, ResourceType.LINK), LINK_CONDITION, T0 + timedelta(seconds=9), "p")]
    )
    assert [e.data.service_id for e in out if e.type == "ServiceRestored"] == [service]
    async with pool.acquire() as conn:
        path = await conn.fetchval(
            "SELECT array_agg(resource_id ORDER BY position) FROM service_resources WHERE service_id = $1",
            service,
        )
    assert path == [n1, c, n3]


async def test_a_node_failure_explains_the_link_port_and_cell_alarms_that_follow(
    oss: tuple[asyncpg.Pool, str],
) -> None:
    pool, tag = oss
    node = Resource(f"NODE-{tag}-HUB", ResourceType.NODE)
    links = [Resource(f"LINK-{tag}-S{n}", ResourceType.LINK) for n in range(3)]
    port, cell = Resource(f"PORT-{tag}", ResourceType.PORT), Resource(f"CELL-{tag}", ResourceType.CELL)
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name) VALUES ($1, 'node', $1)",
            [(node.id,), *((f"NODE-{tag}-S{n}",) for n in range(3))],
        )
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name, a_end, z_end) VALUES ($1, 'link', $1, $2, $3)",
            [(link.id, node.id, f"NODE-{tag}-S{n}") for n, link in enumerate(links)],
        )
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name, a_end) VALUES ($1, $2, $1, $3)",
            [(port.id, "port", node.id), (cell.id, "cell", node.id)],
        )
    node_down = CONDITIONS[ResourceType.NODE][0]  # major, service-affecting
    out = await apply(pool, [raise_event(node, node_down, T0, "p")])
    [root] = [e.data for e in out if e.type == "AlarmRaised"]
    # The node's three links, a port and a cell report failures just after: symptoms, no tickets
    # of their own.
    out = await apply(
        pool,
        [
            *(raise_event(link, LINK_CONDITION, T0 + timedelta(seconds=2), "p") for link in links),
            raise_event(port, CONDITIONS[ResourceType.PORT][0], T0 + timedelta(seconds=3), "p"),
            raise_event(cell, CONDITIONS[ResourceType.CELL][0], T0 + timedelta(seconds=3), "p"),
        ],
    )
    symptoms = [e.data for e in out if e.type == "AlarmRaised"]
    assert [(s.is_root_cause, s.parent_alarm_id) for s in symptoms] == [(False, root.alarm_id)] * 5
    assert "TroubleTicketCreated" not in types(out)
    # A link failing long after the node is not explained by it.
    late = Resource(f"LINK-{tag}-LATE", ResourceType.LINK)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO resources (id, resource_type, name, a_end, z_end) VALUES ($1, 'link', $1, $2, $2)",
            late.id,
            node.id,
        )
    out = await apply(pool, [raise_event(late, LINK_CONDITION, T0 + timedelta(minutes=5), "p")])
    [independent] = [e.data for e in out if e.type == "AlarmRaised"]
    assert independent.is_root_cause and independent.parent_alarm_id is None

    # One link is still reported after the node is repaired: it persists on its own.
    await apply(pool, [raise_event(links[2], LINK_CONDITION, T0 + timedelta(seconds=15), "p")])
    out = await apply(pool, [clear_event(node, node_down, T0 + timedelta(seconds=10), "p")])
    cleared = {e.data.alarmed_object_id for e in out if e.type == "AlarmCleared"}
    assert cleared == {node.id, links[0].id, links[1].id, port.id, cell.id}
    async with pool.acquire() as conn:
        still = await conn.fetchrow(
            "SELECT state, is_root_cause, parent_alarm_id FROM alarms WHERE alarmed_object_id = $1",
            links[2].id,
        )
    assert still["state"] != "cleared" and still["is_root_cause"] and still["parent_alarm_id"] is None


async def test_tickets_open_past_their_severity_limit_are_escalated_once(
    oss: tuple[asyncpg.Pool, str],
) -> None:
    from oss_consumers.fault.agents import escalate_overdue_tickets

    pool, tag = oss
    out = await apply(pool, [raise_event(link(tag, "A"), LINK_CONDITION, T0, "p")])  # critical: 15 min
    [ticket] = [e.data for e in out if e.type == "TroubleTicketCreated"]
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            "SELECT created_at FROM trouble_tickets WHERE id = $1", ticket.ticket_id
        )

        def mine(events: list[Envelope[EventPayload]]) -> list[EventPayload]:
            return [e.data for e in events if e.data.ticket_id == ticket.ticket_id]  # type: ignore[attr-defined]

        assert mine(await escalate_overdue_tickets(conn, created + timedelta(minutes=14))) == []
        [escalated] = mine(await escalate_overdue_tickets(conn, created + timedelta(minutes=16)))
        assert mine(await escalate_overdue_tickets(conn, created + timedelta(minutes=30))) == []
    assert escalated.priority == 1 and escalated.limit_seconds == 900  # type: ignore[attr-defined]
    assert escalated.open_seconds == 960  # type: ignore[attr-defined]
    # A major ticket (priority 2, 1 h) is raised a step: to priority 1.
    major = dataclasses.replace(LINK_CONDITION, severity=PerceivedSeverity.MAJOR)
    out = await apply(pool, [raise_event(link(tag, "B"), major, T0, "p")])
    [second] = [e.data for e in out if e.type == "TroubleTicketCreated"]
    assert second.priority == 2  # type: ignore[attr-defined]
    async with pool.acquire() as conn, conn.transaction():
        made = await conn.fetchval("SELECT created_at FROM trouble_tickets WHERE id = $1", second.ticket_id)  # type: ignore[attr-defined]
        stepped = [
            e.data
            for e in await escalate_overdue_tickets(conn, made + timedelta(minutes=61))
            if e.data.ticket_id == second.ticket_id  # type: ignore[attr-defined]
        ]
    assert [(s.priority, s.limit_seconds) for s in stepped] == [(1, 3600)]  # type: ignore[attr-defined]


async def test_a_severity_change_moves_the_operational_state(oss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = oss
    a = link(tag, "A")
    minor = dataclasses.replace(LINK_CONDITION, severity=PerceivedSeverity.MINOR)
    out = await apply(pool, [raise_event(a, minor, T0, "p")])
    assert "ResourceStateChanged" not in types(out)  # a minor alarm leaves the link working
    out = await apply(pool, [raise_event(a, LINK_CONDITION, T0 + timedelta(seconds=1), "p")])
    assert types(out).count("AlarmChanged") == 1
    [state] = [e.data for e in out if e.type == "ResourceStateChanged"]
    assert (state.resource_id, state.operational_state.value) == (a.id, "disable")  # type: ignore[attr-defined]
    out = await apply(pool, [raise_event(a, minor, T0 + timedelta(seconds=2), "p")])
    [state] = [e.data for e in out if e.type == "ResourceStateChanged"]
    assert state.operational_state.value == "enable"  # type: ignore[attr-defined]
