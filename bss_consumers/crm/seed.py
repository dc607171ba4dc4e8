"""CRM start-up: load demo customers once, and republish every customer-service assignment.

The assignments topic is compacted and the embedded broker keeps topics in memory only, so the
owner republishes its current state at every start; consumers apply it idempotently.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from bss_consumers.crm.assignments import assignments
from events import new_event
from events.bss import CustomerServiceAssigned
from runtime.bus import Outbox

COMPONENT = "bss-crm"
SOURCE = "/bss/crm"
HANDLES = ()
PUBLISHES = (CustomerServiceAssigned,)


def load_customers(path: Path) -> list[dict[str, Any]]:
    """Read a customers file."""
    customers: list[dict[str, Any]] = yaml.safe_load(path.read_text())["customers"]
    return customers


async def seed_customers(pool: asyncpg.Pool, customers: list[dict[str, Any]]) -> int:
    """Insert the customers CRM does not know yet. Returns how many were added."""
    async with pool.acquire() as conn, conn.transaction():
        added = 0
        for c in customers:
            inserted = await conn.fetchval(
                """
                INSERT INTO customers (id, name, email, phone, sla_tier, preferred_channel)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING 1
                """,
                c["id"],
                c["name"],
                c.get("email"),
                c.get("phone"),
                c["sla_tier"],
                c.get("preferred_channel", "email"),
            )
            if inserted:
                added += 1
                since = _since(c.get("customer_since"))
                await conn.executemany(
                    """
                    INSERT INTO customer_services (service_id, customer_id, product_name, assigned_at)
                    VALUES ($1, $2, $3, coalesce($4, now())) ON CONFLICT (service_id) DO NOTHING
                    """,
                    [(s["service_id"], c["id"], s["product_name"], since) for s in c["services"]],
                )
    return added


async def republish_assignments(pool: asyncpg.Pool, outbox: Outbox) -> int:
    """Queue the current assignment of every service for publication, ended ones included (so
    that OSS forgets their holders). Returns the count."""
    async with pool.acquire() as conn, conn.transaction():
        current = await assignments(conn)
        await outbox.add(conn, [new_event(a, source=SOURCE, subject=a.service_id) for a in current])
    return len(current)


async def seed_accounts(
    pool: asyncpg.Pool, customers: list[dict[str, Any]], currencies: dict[str, str]
) -> int:
    """Open the billing account of each customer that has none. ``currencies`` maps tariff plan
    ids to their currency. Returns how many accounts were opened."""
    rows = []
    for c in customers:
        account = c.get("account")
        if account is None:
            continue
        plan = account["tariff_plan"]
        if plan not in currencies:
            raise ValueError(f"customer {c['id']}: unknown tariff plan {plan!r}")
        rows.append((account["id"], c["id"], currencies[plan], plan, account.get("bill_cycle_day", 1)))
    async with pool.acquire() as conn, conn.transaction():
        opened = (
            await conn.fetch(
                """
            INSERT INTO accounts (id, customer_id, currency, tariff_plan, bill_cycle_day)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[])
            ON CONFLICT DO NOTHING RETURNING id
            """,
                *(list(column) for column in zip(*rows, strict=True)),
            )
            if rows
            else []
        )
    return len(opened)


def _since(value: object) -> datetime | None:
    """Midnight UTC of a ``customer_since`` date from the customers file, if any."""
    if value is None:
        return None
    day = value if isinstance(value, date) else date.fromisoformat(str(value))
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
