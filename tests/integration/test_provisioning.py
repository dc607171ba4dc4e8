"""Provisioning against the real PostgreSQL: admission checks the capacity forecast."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest_asyncio

from events import Envelope, EventPayload, new_event
from events.bss import ServiceProvisioningRequested, ServiceTerminationRequested
from oss_consumers.inventory.provisioning import provision
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def oss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with domain_pool(endpoints, settings, "oss") as pool:
        yield pool


async def test_a_full_link_admits_no_new_service(oss: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    a, z, link = f"SITE-{tag}-A", f"SITE-{tag}-Z", f"LINK-{tag}"
    async with oss.acquire() as conn:
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name, site_id) VALUES ($1, $2, $1, $3)",
            [(a, "site", a), (z, "site", z), (f"NODE-{tag}-A", "node", a), (f"NODE-{tag}-Z", "node", z)],
        )
        await conn.execute(
            "INSERT INTO resources (id, resource_type, name, a_end, z_end) VALUES ($1, 'link', $1, $2, $3)",
            link,
            f"NODE-{tag}-A",
            f"NODE-{tag}-Z",
        )
        await conn.execute(
            "INSERT INTO capacity_forecasts (resource_id, indicator, computed_at, windows, level, slope_per_day) "
            "VALUES ($1, 'utilization', now(), 10, 93.4, 1.0)",
            link,
        )

    async def request(n: int) -> list[str]:
        order = f"PO-{tag}-{n}"
        event = new_event(
            ServiceProvisioningRequested(
                service_id=f"SVC-{order}", order_id=order, service_name="test", a_site_id=a, z_site_id=z
            ),
            source="/bss/ordering",
        )
        async with oss.acquire() as conn, conn.transaction():
            out = await provision(conn, event, event.data)  # type: ignore[arg-type]
        return [f"{e.type}: {getattr(e.data, 'reason', '')}" for e in out]

    assert await request(1) == [
        f"ServiceActivationFailed: no capacity between {a} and {z}: {link} is at 93 % utilization"
    ]
    async with oss.acquire() as conn:
        await conn.execute("UPDATE capacity_forecasts SET level = 60 WHERE resource_id = $1", link)
    assert await request(2) == ["ServiceActivated: "]


async def test_a_locked_link_takes_no_service_and_its_alarms_open_no_ticket(oss: asyncpg.Pool) -> None:
    from events.oss import AdministrativeState, ResourceAdministrationRequested
    from events.x733 import ResourceType
    from oss_consumers.fault.agents import handle_batch
    from oss_consumers.inventory.agents import handle
    from oss_consumers.inventory.states import usage_state
    from producers.probes import CONDITIONS, Resource, clear_event, raise_event

    tag = uuid.uuid4().hex[:6].upper()
    a, z, link = f"SITE-{tag}-A", f"SITE-{tag}-Z", f"LINK-{tag}"
    async with oss.acquire() as conn:
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name, site_id) VALUES ($1, $2, $1, $3)",
            [(a, "site", a), (z, "site", z), (f"NODE-{tag}-A", "node", a), (f"NODE-{tag}-Z", "node", z)],
        )
        await conn.execute(
            "INSERT INTO resources (id, resource_type, name, a_end, z_end) VALUES ($1, 'link', $1, $2, $3)",
            link,
            f"NODE-{tag}-A",
            f"NODE-{tag}-Z",
        )

    async def inventory(data: EventPayload) -> list[Envelope[EventPayload]]:
        async with oss.acquire() as conn, conn.transaction():
            return list(await handle(conn, new_event(data, source="/t")))

    def administer(state: AdministrativeState) -> ResourceAdministrationRequested:
        return ResourceAdministrationRequested(
            resource_id=link, administrative_state=state, requested_by="noc", reason="fibre works"
        )

    async def usage() -> str:
        async with oss.acquire() as conn:
            return await usage_state(conn, link)

    [locked] = await inventory(administer(AdministrativeState.LOCKED))
    assert locked.type == "ResourceAdministrativeStateChanged"
    assert await inventory(administer(AdministrativeState.LOCKED)) == []  # already locked
    request = ServiceProvisioningRequested(
        service_id=f"SVC-{tag}", order_id=f"PO-{tag}", service_name="test", a_site_id=a, z_site_id=z
    )
    [failed] = await inventory(request)
    assert failed.type == "ServiceActivationFailed" and failed.data.failure.value == "noPath"  # type: ignore[attr-defined]
    # Maintenance on the link: its alarm is recorded, but opens no ticket.
    async with oss.acquire() as conn, conn.transaction():
        out = await handle_batch(
            conn, [raise_event(Resource(link, ResourceType.LINK), CONDITIONS[ResourceType.LINK][0], T0, "p")]
        )
    assert "AlarmRaised" in [e.type for e in out] and "TroubleTicketCreated" not in [e.type for e in out]

    await inventory(administer(AdministrativeState.UNLOCKED))
    async with oss.acquire() as conn, conn.transaction():
        await handle_batch(
            conn, [clear_event(Resource(link, ResourceType.LINK), CONDITIONS[ResourceType.LINK][0], T0, "p")]
        )
    assert await usage() == "idle"
    request2 = request.model_copy(update={"service_id": f"SVC-{tag}-2", "order_id": f"PO-{tag}-2"})
    [activated] = await inventory(request2)
    assert activated.type == "ServiceActivated"
    assert await usage() == "active"
    # Its only service ends: the link is idle again.
    [ended] = await inventory(
        ServiceTerminationRequested(service_id=f"SVC-{tag}-2", order_id=f"PO-{tag}-3", requested_at=T0)
    )
    assert ended.type == "ServiceTerminated"
    assert await usage() == "idle"
