"""Product orders against the real PostgreSQL: cancellation before activation, and what OSS's
answer does to a cancelled or repeated order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio

from bss_consumers.catalog.offerings import seed_offerings
from bss_consumers.ordering import agents as ordering
from events import Envelope, EventPayload, new_event
from events.bss import ProductOrderCancellationRequested, ProductOrderRequested
from events.oss import ServiceActivated
from runtime.consumer import Rejected
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool


@pytest_asyncio.fixture(loop_scope="session")
async def bss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with domain_pool(endpoints, settings, "bss") as pool:
        await seed_offerings(pool)
        tag = uuid.uuid4().hex[:6].upper()
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO customers (id, name, sla_tier) VALUES ($1, 'Orders Ltd', 'silver')",
                f"CUST-{tag}",
            )
        yield pool, tag


async def apply(pool: asyncpg.Pool, event: Envelope[EventPayload]) -> list[str]:
    async with pool.acquire() as conn, conn.transaction():
        out = await ordering.handle(conn, event)
    return [f"{e.type}:{getattr(e.data, 'state', '')}" for e in out]


def order(tag: str) -> Envelope[EventPayload]:
    return new_event(
        ProductOrderRequested(
            order_id=f"PO-{uuid.uuid4().hex[:8]}",
            customer_id=f"CUST-{tag}",
            offering_id="PO-SIP-30",
            a_site_id="SITE-LON",
            z_site_id="SITE-MAN",
            requested_at=datetime.now(UTC),
        ),
        source="/bss/order-portal",
    )


async def test_an_order_cancelled_before_activation_stays_cancelled(bss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = bss
    placed = order(tag)
    order_id = placed.data.order_id  # type: ignore[attr-defined]
    assert await apply(pool, placed) == [
        "ProductOrderStateChanged:acknowledged",
        "ServiceProvisioningRequested:",
        "ProductOrderStateChanged:inProgress",
    ]
    assert await apply(pool, placed) == []  # placed twice: handled once
    cancel = new_event(ProductOrderCancellationRequested(order_id=order_id), source="/bss/order-portal")
    assert await apply(pool, cancel) == ["ProductOrderStateChanged:cancelled"]
    assert await apply(pool, cancel) == []
    late = new_event(
        ServiceActivated(
            service_id=f"SVC-{order_id}",
            order_id=order_id,
            resource_ids=("NODE-LON-AG1",),
            activated_at=datetime.now(UTC),
        ),
        source="/oss/inventory",
    )
    assert await apply(pool, late) == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT state FROM product_orders WHERE id = $1", order_id) == "cancelled"
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM customer_services WHERE service_id = $1", f"SVC-{order_id}"
            )
            == 0
        )


async def test_a_completed_order_cannot_be_cancelled(bss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = bss
    placed = order(tag)
    order_id = placed.data.order_id  # type: ignore[attr-defined]
    await apply(pool, placed)
    activated = new_event(
        ServiceActivated(
            service_id=f"SVC-{order_id}",
            order_id=order_id,
            resource_ids=("NODE-LON-AG1",),
            activated_at=datetime.now(UTC),
        ),
        source="/oss/inventory",
    )
    assert await apply(pool, activated) == [
        "ProductOrderStateChanged:completed",
        "CustomerServiceAssigned:",
    ]
    with pytest.raises(Rejected, match="is completed: it can no longer be cancelled"):
        await apply(
            pool, new_event(ProductOrderCancellationRequested(order_id=order_id), source="/bss/order-portal")
        )
