"""Offering-level tariff plans and SLA tiers against the real PostgreSQL: a service ordered with an
offering is rated by the offering's plan and credited by its tier; a seeded service keeps the
account's plan and the customer's tier; usage after a service's termination is rejected."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio

from bss_consumers.billing import agents as billing
from bss_consumers.catalog.offerings import seed_offerings
from bss_consumers.rating.agents import UsageRating
from bss_consumers.rating.tariff import demo_plans
from events import Envelope, EventPayload, new_event
from events.bss import SlaCreditGranted, SlaTier
from events.network import UsageKind
from events.oss import ServiceRestored
from producers.mediation import usage_event
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool

PEAK = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 10:00 London time


@pytest_asyncio.fixture(loop_scope="session")
async def bss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A platinum customer on the pay-as-you-go plan with a seeded service, one ordered with
    PO-FIBRE-1G (Business 300, gold), one ordered with an offering whose plan is in EUR, and one
    ordered with PO-FIBRE-1G and terminated before the usage."""
    async with domain_pool(endpoints, settings, "bss") as pool:
        await seed_offerings(pool)
        tag = uuid.uuid4().hex[:6].upper()
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO product_offerings (id, name, recurring_price_minor, currency, tariff_plan) "
                "VALUES ($1, $1, 1000, 'GBP', 'DE-BIZ-FLEX')",
                f"PO-{tag}-DE",
            )
            await conn.execute(
                "INSERT INTO customers (id, name, sla_tier) VALUES ($1, 'Offered Ltd', 'platinum')",
                f"CUST-{tag}",
            )
            await conn.execute(
                "INSERT INTO accounts (id, customer_id, currency, tariff_plan, bill_cycle_day) "
                "VALUES ($1, $2, 'GBP', 'UK-PAYG', 1)",
                f"ACC-{tag}",
                f"CUST-{tag}",
            )
            await conn.executemany(
                "INSERT INTO customer_services (service_id, customer_id, product_name, offering_id, ended_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                [
                    (f"SVC-{tag}-SEEDED", f"CUST-{tag}", "Business Fibre 1G", None, None),
                    (f"SVC-{tag}-ORDERED", f"CUST-{tag}", "Business Fibre 1G", "PO-FIBRE-1G", None),
                    (f"SVC-{tag}-EUR", f"CUST-{tag}", f"PO-{tag}-DE", f"PO-{tag}-DE", None),
                    (
                        f"SVC-{tag}-ENDED",
                        f"CUST-{tag}",
                        "Business Fibre 1G",
                        "PO-FIBRE-1G",
                        PEAK - timedelta(hours=1),
                    ),
                ],
            )
        yield pool, tag


async def test_usage_is_rated_by_the_offering_plan_or_the_account_plan(bss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = bss
    calls = {
        name: usage_event(f"SVC-{tag}-{name}", UsageKind.VOICE, 61, PEAK) for name in ("SEEDED", "ORDERED")
    }
    others = [usage_event(f"SVC-{tag}-{name}", UsageKind.VOICE, 61, PEAK) for name in ("EUR", "ENDED")]
    async with pool.acquire() as conn, conn.transaction():
        await UsageRating(demo_plans()).handle_batch(conn, [*calls.values(), *others])
    async with pool.acquire() as conn:
        rows = {
            r["service_id"].rsplit("-", 1)[1]: r
            for r in await conn.fetch("SELECT * FROM rated_usage WHERE service_id LIKE $1", f"SVC-{tag}-%")
        }
        balances = await conn.fetch(
            "SELECT tariff_plan, usage_kind, remaining FROM allowance_balances WHERE account_id = $1",
            f"ACC-{tag}",
        )
    # Pay as you go (the account's plan): no allowance, a charge; Business 300 (the offering's):
    # the call is drawn from its allowance.
    seeded, ordered = rows["SEEDED"], rows["ORDERED"]
    assert (seeded["state"], seeded["allowance_used"]) == ("rated", 0) and seeded["amount_minor"] > 0
    assert (ordered["state"], ordered["allowance_used"]) == ("rated", ordered["charged_quantity"])
    assert [(b["tariff_plan"], b["usage_kind"]) for b in balances] == [("UK-BIZ-300", "voice")]
    assert balances[0]["remaining"] == 300 * 60 - ordered["allowance_used"]
    assert rows["EUR"]["reason"] == (
        f"tariff plan DE-BIZ-FLEX of offering PO-{tag}-DE is in EUR, the account is billed in GBP"
    )
    assert rows["ENDED"]["state"] == "rejected"
    assert rows["ENDED"]["reason"].startswith(f"service SVC-{tag}-ENDED was terminated at 2026-11-23T09:00")


async def test_sla_credits_use_the_offering_tier_when_the_service_has_one(
    bss: tuple[asyncpg.Pool, str],
) -> None:
    pool, tag = bss
    credits: dict[str, SlaCreditGranted] = {}
    for name in ("SEEDED", "ORDERED"):
        restored: Envelope[EventPayload] = new_event(
            ServiceRestored(
                outage_id=f"OUT-{tag}-{name}",
                service_id=f"SVC-{tag}-{name}",
                alarm_id="ALM-1",
                started_at=PEAK,
                restored_at=PEAK + timedelta(minutes=20),
                duration_seconds=1200.0,
                customer_ids=(f"CUST-{tag}",),
            ),
            source="/oss/fault",
        )
        async with pool.acquire() as conn, conn.transaction():
            [granted] = await billing.handle(conn, restored)
        assert isinstance(granted.data, SlaCreditGranted)
        credits[name] = granted.data
    # The customer is platinum (10 % per started hour); PO-FIBRE-1G carries gold (5 %).
    assert (credits["SEEDED"].sla_tier, credits["SEEDED"].amount_minor) == (SlaTier.PLATINUM, 4_500)
    assert (credits["ORDERED"].sla_tier, credits["ORDERED"].amount_minor) == (SlaTier.GOLD, 2_250)
