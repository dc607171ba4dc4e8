"""Workforce tables: regions, technicians, work orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from events.oss import WorkOrderCreated
from oss_consumers.workforce.dispatch import Technician, parse_shift
from runtime.db import Connection

OPEN_STATES = ("acknowledged", "pending", "inProgress")


def load_workforce(path: Path) -> dict[str, Any]:
    """Read a workforce file (regions and technicians), checking each technician's shift."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    for tech in data.get("technicians", []):
        parse_shift(tech["shift"])
    return data


async def seed_workforce(pool: asyncpg.Pool, data: dict[str, Any]) -> int:
    """Load the regions and the technicians; the file is the roster, so a technician already
    known takes the file's region, skills, shift and limit. Returns how many were new."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            """
            INSERT INTO site_regions (site_id, region) VALUES ($1, $2)
            ON CONFLICT (site_id) DO UPDATE SET region = excluded.region
            """,
            [(site, region) for region, sites in data.get("regions", {}).items() for site in sites],
        )
        added = 0
        for tech in data.get("technicians", []):
            start, end = parse_shift(tech["shift"])
            inserted = await conn.fetchval(
                """
                INSERT INTO technicians (id, name, region, skills, shift_start, shift_end, max_open)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, region = excluded.region,
                    skills = excluded.skills, shift_start = excluded.shift_start,
                    shift_end = excluded.shift_end, max_open = excluded.max_open
                RETURNING xmax = 0
                """,
                tech["id"],
                tech["name"],
                tech["region"],
                list(tech["skills"]),
                start,
                end,
                int(tech.get("max_open", 2)),
            )
            added += bool(inserted)
        return added


async def technicians(conn: Connection) -> list[Technician]:
    return [
        Technician(
            r["id"], r["region"], frozenset(r["skills"]), r["shift_start"], r["shift_end"], r["max_open"]
        )
        for r in await conn.fetch("SELECT * FROM technicians ORDER BY id")
    ]


async def loads(conn: Connection) -> dict[str, int]:
    """Open work orders per technician."""
    rows = await conn.fetch(
        """
        SELECT technician_id, count(*) AS n FROM work_orders
        WHERE technician_id IS NOT NULL AND state = ANY($1::text[]) GROUP BY technician_id
        """,
        list(OPEN_STATES),
    )
    return {r["technician_id"]: r["n"] for r in rows}


@dataclass(frozen=True)
class Job:
    """Where a ticket's fault is and what it is, from the inventory and the alarm."""

    resource_type: str
    alarm_type: str
    probable_cause: str
    site_id: str | None
    region: str | None


async def jobs_of(conn: Connection, places: Sequence[tuple[str, str]]) -> dict[str, Job]:
    """By alarm id: the alarm and the site (a link's A end) of each ``(alarm id, resource id)`` of
    the tickets; an unknown alarm is missing."""
    rows = await conn.fetch(
        """
        SELECT a.id, a.alarmed_object_type, a.alarm_type, a.probable_cause,
               coalesce(r.site_id, n.site_id) AS site_id, sr.region
        FROM unnest($1::text[], $2::text[]) AS p(alarm_id, resource_id)
        JOIN alarms a ON a.id = p.alarm_id
        LEFT JOIN resources r ON r.id = p.resource_id
        LEFT JOIN resources n ON n.id = r.a_end
        LEFT JOIN site_regions sr ON sr.site_id = coalesce(r.site_id, n.site_id)
        """,
        [alarm for alarm, _ in places],
        [resource for _, resource in places],
    )
    return {
        r["id"]: Job(
            r["alarmed_object_type"], r["alarm_type"], r["probable_cause"], r["site_id"], r["region"]
        )
        for r in rows
    }


async def insert_work_orders(conn: Connection, orders: Sequence[WorkOrderCreated]) -> set[str]:
    """Open the work orders; a ticket that has one already keeps it (a redelivery). Returns the
    ids of those opened."""
    if not orders:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO work_orders (id, ticket_id, alarm_id, resource_id, site_id, region, required_skill,
                                 priority, state, created_at, due_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::int[], $9::text[], $10::timestamptz[], $11::timestamptz[])
        ON CONFLICT (ticket_id) DO NOTHING RETURNING id
        """,
        [o.work_order_id for o in orders],
        [o.ticket_id for o in orders],
        [o.alarm_id for o in orders],
        [o.resource_id for o in orders],
        [o.site_id for o in orders],
        [o.region for o in orders],
        [o.required_skill for o in orders],
        [o.priority for o in orders],
        [o.state.value for o in orders],
        [o.creation_date for o in orders],
        [o.due_date for o in orders],
    )
    return {r["id"] for r in rows}


async def unassigned(conn: Connection, free: Sequence[Technician], capacity: int) -> list[asyncpg.Record]:
    """Open work orders without a technician that one of the ``free`` technicians could do (their
    skill, their region or none), most urgent first, locked for dispatch; a few times the free
    ``capacity`` of them at most."""
    pairs = [(skill, t.region) for t in free for skill in sorted(t.skills)]
    return await conn.fetch(
        """
        SELECT * FROM work_orders w
        WHERE technician_id IS NULL AND state IN ('acknowledged', 'pending')
          AND EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS f(skill, region)
                      WHERE f.skill = w.required_skill AND (w.region IS NULL OR w.region = f.region))
        ORDER BY priority, created_at LIMIT $3 FOR UPDATE
        """,
        [skill for skill, _ in pairs],
        [region for _, region in pairs],
        max(1, capacity) * 10,
    )


async def park_unassigned(conn: Connection) -> list[asyncpg.Record]:
    """New work orders still without a technician wait: state pending. Returns them."""
    return await conn.fetch(
        """
        UPDATE work_orders SET state = 'pending'
        WHERE technician_id IS NULL AND state = 'acknowledged' RETURNING *
        """
    )


async def assign(conn: Connection, work_order_id: str, technician_id: str, at: datetime) -> None:
    await conn.execute(
        """
        UPDATE work_orders SET technician_id = $2, dispatched_at = $3, state = 'acknowledged'
        WHERE id = $1
        """,
        work_order_id,
        technician_id,
        at,
    )


async def reprioritize(conn: Connection, work_order_id: str, priority: int, due: datetime) -> None:
    await conn.execute(
        "UPDATE work_orders SET priority = $2, due_at = $3 WHERE id = $1", work_order_id, priority, due
    )


async def unassign(conn: Connection, work_order_id: str) -> None:
    """Send a work order back to wait for a technician (after a failed visit)."""
    await conn.execute(
        """
        UPDATE work_orders SET state = 'pending', technician_id = NULL, dispatched_at = NULL,
            started_at = NULL, finished_at = NULL
        WHERE id = $1
        """,
        work_order_id,
    )


async def work_order(conn: Connection, work_order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM work_orders WHERE id = $1 FOR UPDATE", work_order_id)


async def open_work_order_of_ticket(conn: Connection, ticket_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM work_orders WHERE ticket_id = $1 AND state = ANY($2::text[]) FOR UPDATE",
        ticket_id,
        list(OPEN_STATES),
    )


async def set_state(conn: Connection, work_order_id: str, state: str, at: datetime, note: str = "") -> None:
    await conn.execute(
        """
        UPDATE work_orders SET state = $2,
            started_at = CASE WHEN $2 = 'inProgress' THEN $3 ELSE started_at END,
            finished_at = CASE WHEN $2 IN ('completed', 'failed', 'cancelled') THEN $3 ELSE finished_at END,
            note = CASE WHEN $4 = '' THEN note ELSE $4 END
        WHERE id = $1
        """,
        work_order_id,
        state,
        at,
        note,
    )


async def breach_overdue(conn: Connection, now: datetime) -> list[asyncpg.Record]:
    """Mark open work orders past their due date as breached, once; returns them."""
    return await conn.fetch(
        """
        UPDATE work_orders SET sla_breached_at = $1
        WHERE due_at < $1 AND sla_breached_at IS NULL AND state = ANY($2::text[])
        RETURNING id, ticket_id, priority, due_at, technician_id
        """,
        now,
        list(OPEN_STATES),
    )


async def open_count(conn: Connection) -> int:
    """Work orders not finished yet."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM work_orders WHERE state = ANY($1::text[])", list(OPEN_STATES)
        )
    )
