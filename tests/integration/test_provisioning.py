"""Provisioning against the real PostgreSQL: admission checks the capacity forecast."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from events import new_event
from events.bss import ServiceProvisioningRequested
from oss_consumers.inventory.provisioning import provision
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool


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
