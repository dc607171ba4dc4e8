"""Fault management's tables (schema ``oss``), through the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from events.network import ProbeAlarmRaised
from oss_consumers.fault.lifecycle import KeyState
from runtime.db import Connection


async def key_state(conn: Connection, reduction_key: str) -> KeyState:
    """Lock and read what is known of a reduction key."""
    row = await conn.fetchrow(
        """
        SELECT
          (SELECT id FROM alarms WHERE reduction_key = $1 AND state <> 'cleared' FOR UPDATE) AS active,
          (SELECT max(cleared_at) FROM alarms WHERE reduction_key = $1) AS last_cleared,
          (SELECT cleared_at FROM held_clears WHERE reduction_key = $1) AS held
        """,
        reduction_key,
    )
    assert row is not None
    return KeyState(row["active"], row["last_cleared"], row["held"])


async def insert_alarm(conn: Connection, alarm_id: str, raised: ProbeAlarmRaised) -> None:
    await conn.execute(
        """
        INSERT INTO alarms (id, reduction_key, alarmed_object_id, alarmed_object_type, alarm_type,
            probable_cause, specific_problem, perceived_severity, state, service_affecting,
            source_system_id, raised_at, last_seen_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'raised', $9, $10, $11, $11)
        """,
        alarm_id,
        raised.reduction_key,
        raised.alarmed_object_id,
        raised.alarmed_object_type.value,
        raised.alarm_type.value,
        raised.probable_cause.value,
        raised.specific_problem,
        raised.perceived_severity.value,
        raised.service_affecting,
        raised.source_system_id,
        raised.event_time,
    )


async def record_repeat(conn: Connection, alarm_id: str, raised: ProbeAlarmRaised) -> asyncpg.Record:
    """Count a repeat of an active alarm; returns its occurrences and its severity before."""
    row = await conn.fetchrow(
        """
        UPDATE alarms a SET occurrences = a.occurrences + 1,
            last_seen_at = greatest(a.last_seen_at, $2),
            perceived_severity = $3,
            state = CASE WHEN a.perceived_severity <> $3 THEN 'updated' ELSE a.state END
        FROM alarms before WHERE a.id = $1 AND before.id = a.id
        RETURNING a.occurrences, before.perceived_severity AS previous_severity
        """,
        alarm_id,
        raised.event_time,
        raised.perceived_severity.value,
    )
    assert row is not None
    return row


async def clear_alarm(conn: Connection, alarm_id: str, cleared_at: datetime) -> None:
    await conn.execute(
        "UPDATE alarms SET state = 'cleared', cleared_at = $2 WHERE id = $1", alarm_id, cleared_at
    )


async def hold_clear(conn: Connection, reduction_key: str, cleared_at: datetime) -> None:
    await conn.execute(
        """
        INSERT INTO held_clears (reduction_key, cleared_at) VALUES ($1, $2)
        ON CONFLICT (reduction_key) DO UPDATE
            SET cleared_at = greatest(held_clears.cleared_at, excluded.cleared_at)
        """,
        reduction_key,
        cleared_at,
    )


async def drop_held_clear(conn: Connection, reduction_key: str) -> None:
    await conn.execute("DELETE FROM held_clears WHERE reduction_key = $1", reduction_key)


async def purge_held_clears(conn: Connection, older_than_seconds: float) -> int:
    """Forget clears whose raise never came."""
    result = await conn.execute(
        "DELETE FROM held_clears WHERE held_since < now() - make_interval(secs => $1)",
        older_than_seconds,
    )
    return int(result.split()[-1])


async def alarm(conn: Connection, alarm_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM alarms WHERE id = $1 FOR UPDATE", alarm_id)


async def set_ack(conn: Connection, alarm_id: str, ack_state: str, user: str) -> None:
    await conn.execute(
        "UPDATE alarms SET ack_state = $2, ack_user_id = $3 WHERE id = $1", alarm_id, ack_state, user
    )


async def open_ticket(
    conn: Connection,
    ticket_id: str,
    alarm_id: str,
    name: str,
    severity: str,
    priority: int,
    status: str,
    created_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO trouble_tickets (id, alarm_id, name, severity, priority, status, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        ticket_id,
        alarm_id,
        name,
        severity,
        priority,
        status,
        created_at,
    )


async def resolve_ticket(conn: Connection, alarm_id: str, at: datetime) -> str | None:
    """Resolve the open ticket of an alarm; return its id, or None when it has none."""
    ticket_id: str | None = await conn.fetchval(
        """
        UPDATE trouble_tickets SET status = 'resolved', resolved_at = $2
        WHERE alarm_id = $1 AND resolved_at IS NULL RETURNING id
        """,
        alarm_id,
        at,
    )
    return ticket_id


async def services_on(conn: Connection, resource_id: str) -> list[asyncpg.Record]:
    """Services placed on a resource, each with the customers holding it."""
    return await conn.fetch(
        """
        SELECT s.id AS service_id,
               coalesce(array_agg(cs.customer_id ORDER BY cs.customer_id)
                        FILTER (WHERE cs.customer_id IS NOT NULL), '{}') AS customer_ids
        FROM service_resources sr
        JOIN services s ON s.id = sr.service_id
        LEFT JOIN customer_services cs ON cs.service_id = s.id
        WHERE sr.resource_id = $1 AND s.state = 'active'
        GROUP BY s.id ORDER BY s.id
        """,
        resource_id,
    )


async def open_outage(conn: Connection, service_id: str) -> str | None:
    outage_id: str | None = await conn.fetchval(
        "SELECT id FROM service_outages WHERE service_id = $1 AND restored_at IS NULL FOR UPDATE",
        service_id,
    )
    return outage_id


async def start_outage(
    conn: Connection,
    outage_id: str,
    service_id: str,
    resource_id: str,
    alarm_id: str,
    started_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO service_outages (id, service_id, resource_id, alarm_id, started_at)
        VALUES ($1, $2, $3, $4, $5)
        """,
        outage_id,
        service_id,
        resource_id,
        alarm_id,
        started_at,
    )
    await add_cause(conn, outage_id, alarm_id)


async def add_cause(conn: Connection, outage_id: str, alarm_id: str) -> None:
    await conn.execute(
        "INSERT INTO outage_causes (outage_id, alarm_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        outage_id,
        alarm_id,
    )


async def remove_cause_and_restore(
    conn: Connection, alarm_id: str, restored_at: datetime
) -> Sequence[asyncpg.Record]:
    """Drop an alarm from the outages it caused; restore those left with no cause. Returns the
    restored outages with the customers holding each service."""
    return await conn.fetch(
        """
        WITH removed AS (
            DELETE FROM outage_causes WHERE alarm_id = $1 RETURNING outage_id
        ), ended AS (
            UPDATE service_outages o SET restored_at = greatest($2, o.started_at)
            FROM removed r
            WHERE o.id = r.outage_id AND o.restored_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM outage_causes c
                              WHERE c.outage_id = o.id AND c.alarm_id <> $1)
            RETURNING o.id, o.service_id, o.alarm_id, o.started_at, o.restored_at
        )
        SELECT e.*, coalesce(array_agg(cs.customer_id ORDER BY cs.customer_id)
                             FILTER (WHERE cs.customer_id IS NOT NULL), '{}') AS customer_ids
        FROM ended e LEFT JOIN customer_services cs ON cs.service_id = e.service_id
        GROUP BY e.id, e.service_id, e.alarm_id, e.started_at, e.restored_at
        ORDER BY e.service_id
        """,
        alarm_id,
        restored_at,
    )


async def summary(conn: Connection) -> dict[str, int]:
    """Counts for the operator's summary line."""
    row = await conn.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM alarms WHERE state <> 'cleared') AS open_alarms,
          (SELECT count(*) FROM trouble_tickets WHERE resolved_at IS NULL) AS open_tickets,
          (SELECT count(*) FROM service_outages WHERE restored_at IS NULL) AS active_outages
        """
    )
    assert row is not None
    return dict(row)
