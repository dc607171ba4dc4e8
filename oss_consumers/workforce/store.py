"""Workforce tables: regions, technicians, work orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml

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


async def job_of(conn: Connection, alarm_id: str, resource_id: str) -> Job | None:
    """The alarm and the site (a link's A end) of a ticket's resource; None if the alarm is unknown."""
    row = await conn.fetchrow(
        """
        SELECT a.alarmed_object_type, a.alarm_type, a.probable_cause,
               coalesce(r.site_id, n.site_id) AS site_id, sr.region
        FROM alarms a
        LEFT JOIN resources r ON r.id = $2
        LEFT JOIN resources n ON n.id = r.a_end
        LEFT JOIN site_regions sr ON sr.site_id = coalesce(r.site_id, n.site_id)
        WHERE a.id = $1
        """,
        alarm_id,
        resource_id,
    )
    if row is None:
        return None
    return Job(
        row["alarmed_object_type"], row["alarm_type"], row["probable_cause"], row["site_id"], row["region"]
    )


async def insert_work_order(conn: Connection, values: dict[str, Any]) -> bool:
    """Open a work order; False when the ticket already has one (a redelivery)."""
    status = await conn.execute(
        """
        INSERT INTO work_orders (id, ticket_id, alarm_id, resource_id, site_id, region, required_skill,
                                 priority, state, created_at, due_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (ticket_id) DO NOTHING
        """,
        values["id"],
        values["ticket_id"],
        values["alarm_id"],
        values["resource_id"],
        values["site_id"],
        values["region"],
        values["required_skill"],
        values["priority"],
        values["state"],
        values["created_at"],
        values["due_at"],
    )
    return status.endswith(" 1")


async def unassigned(conn: Connection) -> list[asyncpg.Record]:
    """Open work orders without a technician, most urgent first, locked for dispatch."""
    return await conn.fetch(
        """
        SELECT * FROM work_orders
        WHERE technician_id IS NULL AND state IN ('acknowledged', 'pending')
        ORDER BY priority, created_at FOR UPDATE
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
