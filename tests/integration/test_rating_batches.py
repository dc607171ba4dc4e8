"""Usage rating against the real PostgreSQL: each usage record ends in one state, once; the
allowance of the bill period is drawn first; money is exact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest_asyncio

from bss_consumers.rating.agents import UsageRating
from bss_consumers.rating.tariff import demo_plans
from events import Envelope, EventPayload
from events.network import UsageKind
from producers.mediation import usage_event
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool

# A Monday at 10:00 London time: peak.
PEAK = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def bss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with domain_pool(endpoints, settings, "bss") as pool:
        tag = uuid.uuid4().hex[:6].upper()
        async with pool.acquire() as conn:
            for plan in ("UK-BIZ-300", "UK-PAYG"):
                customer = f"CUST-{tag}-{plan}"
                await conn.execute(
                    "INSERT INTO customers (id, name, sla_tier) VALUES ($1, 'Test Ltd', 'gold')", customer
                )
                await conn.execute(
                    "INSERT INTO accounts (id, customer_id, currency, tariff_plan, bill_cycle_day) "
                    "VALUES ($1, $2, 'GBP', $3, 1)",
                    f"ACC-{tag}-{plan}",
                    customer,
                    plan,
                )
                await conn.execute(
                    "INSERT INTO customer_services (service_id, customer_id, product_name) VALUES ($1, $2, 'x')",
                    f"SVC-{tag}-{plan}",
                    customer,
                )
        yield pool, tag


async def rate_batch(pool: asyncpg.Pool, events: list[Envelope[EventPayload]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await UsageRating(demo_plans()).handle_batch(conn, events)


async def test_every_record_ends_in_one_state_once(bss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = bss
    payg = f"SVC-{tag}-UK-PAYG"
    call = usage_event(payg, UsageKind.VOICE, 61, PEAK)
    batch = [
        call,
        call,  # sent twice in one batch
        usage_event(payg, UsageKind.SMS, 1, PEAK),
        usage_event(f"SVC-{tag}-NOBODY", UsageKind.DATA, 10, PEAK),
    ]
    await rate_batch(pool, batch)
    await rate_batch(pool, [call])  # and again in a later batch
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT usage_id, state, reason, amount_minor, charged_quantity FROM rated_usage "
            "WHERE service_id LIKE $1 ORDER BY usage_kind",
            f"SVC-{tag}-%",
        )
    assert len(rows) == 3
    by_kind = {r["usage_id"]: r for r in rows}
    voice = by_kind[call.data.usage_id]  # type: ignore[attr-defined]
    assert voice["state"] == "rated"
    assert voice["charged_quantity"] == 120  # 60/60: a 61 s call is two minutes
    assert isinstance(voice["amount_minor"], int) and voice["amount_minor"] > 0
    [stray] = [r for r in rows if r["state"] == "rejected"]
    assert stray["reason"] == f"no account holds service SVC-{tag}-NOBODY"


async def test_allowance_is_drawn_first_and_carried_across_batches(bss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = bss
    biz = f"SVC-{tag}-UK-BIZ-300"
    allowance = demo_plans()["UK-BIZ-300"].allowances[UsageKind.VOICE]  # type: ignore[index]
    minutes = allowance // 60
    # All but one minute of the allowance in one batch, then two one-minute calls.
    await rate_batch(pool, [usage_event(biz, UsageKind.VOICE, (minutes - 1) * 60, PEAK)])
    await rate_batch(
        pool, [usage_event(biz, UsageKind.VOICE, 60, PEAK), usage_event(biz, UsageKind.VOICE, 60, PEAK)]
    )
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT allowance_used, amount_minor FROM rated_usage WHERE service_id = $1 ORDER BY received_at, amount_minor",
            biz,
        )
        remaining = await conn.fetchval(
            "SELECT remaining FROM allowance_balances WHERE account_id = $1 AND usage_kind = 'voice'",
            f"ACC-{tag}-UK-BIZ-300",
        )
    assert [r["allowance_used"] for r in rows] == [(minutes - 1) * 60, 60, 0]
    assert [r["amount_minor"] for r in rows][:2] == [0, 0]
    assert rows[2]["amount_minor"] > 0  # the allowance ran out: charged
    assert remaining == 0
