"""Fault management's tables (schema ``oss``), set-based: each function handles every alarm of a
round of a batch in one statement, through the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from events.network import ProbeAlarmRaised
from events.oss import CrossedThresholdInformation
from oss_consumers.fault.lifecycle import KeyState
from oss_consumers.inventory.states import usable_links
from runtime.db import Connection


async def key_states(conn: Connection, keys: Sequence[str]) -> dict[str, KeyState]:
    """Lock the active alarms of ``keys`` and read what is known of each key."""
    active = {
        r["reduction_key"]: r["id"]
        for r in await conn.fetch(
            "SELECT reduction_key, id FROM alarms WHERE reduction_key = ANY($1::text[]) "
            "AND state <> 'cleared' FOR UPDATE",
            keys,
        )
    }
    rows = await conn.fetch(
        """
        SELECT k.key,
               (SELECT max(a.cleared_at) FROM alarms a WHERE a.reduction_key = k.key) AS last_cleared,
               h.cleared_at AS held
        FROM unnest($1::text[]) AS k(key) LEFT JOIN held_clears h ON h.reduction_key = k.key
        """,
        keys,
    )
    return {r["key"]: KeyState(active.get(r["key"]), r["last_cleared"], r["held"]) for r in rows}


@dataclass(frozen=True)
class NewAlarm:
    alarm_id: str
    raised: ProbeAlarmRaised
    cleared_at: datetime | None  # already cleared: its clear overtook it
    parent_alarm_id: str | None = None  # a symptom of this root-cause alarm


CROSSED_THRESHOLD = "crossedThresholdInformation"
"""Where a threshold-crossing notification carries its TMF642 crossedThresholdInformation."""


def crossed_threshold(raised: ProbeAlarmRaised) -> CrossedThresholdInformation | None:
    """The crossed-threshold information a notification carries, if it is a threshold crossing."""
    found = raised.alarm_details.get(CROSSED_THRESHOLD)
    return CrossedThresholdInformation.model_validate(found) if isinstance(found, dict) else None


async def insert_alarms(conn: Connection, alarms: Sequence[NewAlarm]) -> None:
    if not alarms:
        return
    r = [a.raised for a in alarms]
    await conn.execute(
        """
        INSERT INTO alarms (id, reduction_key, alarmed_object_id, alarmed_object_type, alarm_type,
            probable_cause, specific_problem, perceived_severity, state, service_affecting,
            source_system_id, raised_at, last_seen_at, cleared_at, is_root_cause, parent_alarm_id,
            crossed_threshold)
        SELECT id, key, object_id, object_type, alarm_type, cause, problem, severity,
               CASE WHEN cleared_at IS NULL THEN 'raised' ELSE 'cleared' END,
               affecting, source, raised_at, raised_at, cleared_at, parent IS NULL, parent, crossing::jsonb
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                    $7::text[], $8::text[], $9::bool[], $10::text[], $11::timestamptz[],
                    $12::timestamptz[], $13::text[], $14::text[])
             AS u(id, key, object_id, object_type, alarm_type, cause, problem, severity, affecting,
                  source, raised_at, cleared_at, parent, crossing)
        """,
        [a.alarm_id for a in alarms],
        [x.reduction_key for x in r],
        [x.alarmed_object_id for x in r],
        [x.alarmed_object_type.value for x in r],
        [x.alarm_type.value for x in r],
        [x.probable_cause.value for x in r],
        [x.specific_problem for x in r],
        [x.perceived_severity.value for x in r],
        [x.service_affecting for x in r],
        [x.source_system_id for x in r],
        [x.event_time for x in r],
        [a.cleared_at for a in alarms],
        [a.parent_alarm_id for a in alarms],
        [_json_or_none(crossed_threshold(x)) for x in r],
    )


def _json_or_none(model: CrossedThresholdInformation | None) -> str | None:
    return None if model is None else model.model_dump_json()


async def record_repeats(
    conn: Connection, repeats: Sequence[tuple[str, ProbeAlarmRaised]]
) -> dict[str, asyncpg.Record]:
    """Count repeats of active alarms. Returns, per alarm id, its occurrences and its severity
    before this repeat."""
    if not repeats:
        return {}
    rows = await conn.fetch(
        """
        UPDATE alarms a SET occurrences = a.occurrences + 1,
            last_seen_at = greatest(a.last_seen_at, u.seen),
            perceived_severity = u.severity,
            state = CASE WHEN a.perceived_severity <> u.severity THEN 'updated' ELSE a.state END
        FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(id, seen, severity),
             alarms before
        WHERE a.id = u.id AND before.id = a.id
        RETURNING a.id, a.occurrences, before.perceived_severity AS previous_severity
        """,
        [alarm_id for alarm_id, _ in repeats],
        [r.event_time for _, r in repeats],
        [r.perceived_severity.value for _, r in repeats],
    )
    return {r["id"]: r for r in rows}


async def hold_clears(conn: Connection, held: dict[str, datetime]) -> None:
    if not held:
        return
    await conn.execute(
        """
        INSERT INTO held_clears (reduction_key, cleared_at)
        SELECT * FROM unnest($1::text[], $2::timestamptz[])
        ON CONFLICT (reduction_key) DO UPDATE
            SET cleared_at = greatest(held_clears.cleared_at, excluded.cleared_at)
        """,
        list(held),
        list(held.values()),
    )


async def drop_held_clears(conn: Connection, keys: Sequence[str]) -> None:
    if keys:
        await conn.execute("DELETE FROM held_clears WHERE reduction_key = ANY($1::text[])", keys)


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


@dataclass(frozen=True)
class NewTicket:
    ticket_id: str
    alarm_id: str
    name: str
    severity: str
    priority: int
    status: str
    created_at: datetime
    field_work: bool


async def open_tickets(conn: Connection, tickets: Sequence[NewTicket]) -> None:
    if not tickets:
        return
    await conn.execute(
        """
        INSERT INTO trouble_tickets (id, alarm_id, name, severity, priority, status, created_at, field_work)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],
                             $6::text[], $7::timestamptz[], $8::boolean[])
        """,
        [t.ticket_id for t in tickets],
        [t.alarm_id for t in tickets],
        [t.name for t in tickets],
        [t.severity for t in tickets],
        [t.priority for t in tickets],
        [t.status for t in tickets],
        [t.created_at for t in tickets],
        [t.field_work for t in tickets],
    )


async def services_on(
    conn: Connection, resource_ids: Sequence[str]
) -> dict[str, list[tuple[str, list[str]]]]:
    """Per resource, the active services placed on it, each with the customers holding it."""
    rows = await conn.fetch(
        """
        SELECT sr.resource_id, s.id AS service_id,
               coalesce(array_agg(cs.customer_id ORDER BY cs.customer_id)
                        FILTER (WHERE cs.customer_id IS NOT NULL), '{}') AS customer_ids
        FROM service_resources sr
        JOIN services s ON s.id = sr.service_id
        LEFT JOIN customer_services cs ON cs.service_id = s.id
        WHERE sr.resource_id = ANY($1::text[]) AND s.state = 'active'
        GROUP BY sr.resource_id, s.id ORDER BY sr.resource_id, s.id
        """,
        list(resource_ids),
    )
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for r in rows:
        found.setdefault(r["resource_id"], []).append((r["service_id"], list(r["customer_ids"])))
    return found


async def open_outages(conn: Connection, service_ids: Sequence[str]) -> dict[str, str]:
    """Lock and return the open outage of each service that has one."""
    if not service_ids:
        return {}
    rows = await conn.fetch(
        "SELECT service_id, id FROM service_outages WHERE service_id = ANY($1::text[]) "
        "AND restored_at IS NULL FOR UPDATE",
        list(service_ids),
    )
    return {r["service_id"]: r["id"] for r in rows}


@dataclass(frozen=True)
class NewOutage:
    outage_id: str
    service_id: str
    resource_id: str
    alarm_id: str
    started_at: datetime
    customer_ids: Sequence[str]


async def start_outages(conn: Connection, outages: Sequence[NewOutage]) -> None:
    if not outages:
        return
    await conn.execute(
        """
        INSERT INTO service_outages (id, service_id, resource_id, alarm_id, started_at, customer_ids)
        SELECT i, s, r, a, t, c::jsonb
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
            AS u(i, s, r, a, t, c)
        """,
        [o.outage_id for o in outages],
        [o.service_id for o in outages],
        [o.resource_id for o in outages],
        [o.alarm_id for o in outages],
        [o.started_at for o in outages],
        [json.dumps(list(o.customer_ids)) for o in outages],
    )


async def add_causes(conn: Connection, causes: Sequence[tuple[str, str]]) -> None:
    """Record ``(outage_id, alarm_id)`` pairs: the alarm keeps the outage going."""
    if not causes:
        return
    await conn.execute(
        """
        INSERT INTO outage_causes (outage_id, alarm_id)
        SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING
        """,
        [o for o, _ in causes],
        [a for _, a in causes],
    )


async def clear_alarms(conn: Connection, cleared: Sequence[tuple[str, datetime]]) -> None:
    if not cleared:
        return
    await conn.execute(
        """
        UPDATE alarms a SET state = 'cleared', cleared_at = u.at
        FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE a.id = u.id
        """,
        [alarm_id for alarm_id, _ in cleared],
        [at for _, at in cleared],
    )


async def resolve_tickets(conn: Connection, alarm_ids: Sequence[str], at: datetime) -> list[asyncpg.Record]:
    """Resolve the open tickets of the cleared alarms, except those whose technician is on site:
    those wait (status pending) for the work order to end. Returns each resolved ticket's id,
    alarm id and work order."""
    if not alarm_ids:
        return []
    await conn.execute(
        """
        UPDATE trouble_tickets SET status = 'pending'
        WHERE alarm_id = ANY($1::text[]) AND resolved_at IS NULL AND work_order_state = 'inProgress'
        """,
        list(alarm_ids),
    )
    return await conn.fetch(
        """
        UPDATE trouble_tickets SET status = 'resolved', resolved_at = $2
        WHERE alarm_id = ANY($1::text[]) AND resolved_at IS NULL
          AND work_order_state IS DISTINCT FROM 'inProgress'
        RETURNING id, alarm_id, work_order_id, work_order_state
        """,
        list(alarm_ids),
        at,
    )


async def follow_work_orders(
    conn: Connection, follows: Sequence[tuple[str, str, str]], at: datetime
) -> list[asyncpg.Record]:
    """Record each ticket's work order and its state (``(ticket id, work order id, state)``). Once
    the technician has left (the work order is no longer in progress) and the alarm has cleared,
    the ticket is resolved: returns those tickets."""
    if not follows:
        return []
    return await conn.fetch(
        """
        UPDATE trouble_tickets t SET work_order_id = f.work_order_id, work_order_state = f.state,
            status = CASE
                WHEN f.state <> 'inProgress' AND a.state = 'cleared' THEN 'resolved'
                WHEN f.state = 'inProgress' THEN 'inProgress'
                ELSE t.status END,
            resolved_at = CASE WHEN f.state <> 'inProgress' AND a.state = 'cleared' THEN $4::timestamptz END
        FROM unnest($1::text[], $2::text[], $3::text[]) AS f(ticket_id, work_order_id, state), alarms a
        WHERE t.id = f.ticket_id AND a.id = t.alarm_id AND t.resolved_at IS NULL
        RETURNING t.id, t.alarm_id, t.resolved_at IS NOT NULL AS resolved, t.work_order_id, t.work_order_state
        """,
        [ticket for ticket, _, _ in follows],
        [work_order for _, work_order, _ in follows],
        [state for _, _, state in follows],
        at,
    )


async def remove_causes_and_restore(
    conn: Connection, cleared: Sequence[tuple[str, datetime]]
) -> list[asyncpg.Record]:
    """Drop cleared alarms from the outages they kept going; restore the outages left with no
    cause, as of the latest of those clears. Returns the restored outages with the customers
    holding each service."""
    if not cleared:
        return []
    return await conn.fetch(
        """
        WITH removed AS (
            DELETE FROM outage_causes c
            USING unnest($1::text[], $2::timestamptz[]) AS u(alarm_id, cleared_at)
            WHERE c.alarm_id = u.alarm_id
            RETURNING c.outage_id, u.cleared_at
        ), candidates AS (
            SELECT outage_id, max(cleared_at) AS cleared_at FROM removed GROUP BY outage_id
        ), ended AS (
            UPDATE service_outages o SET restored_at = greatest(c.cleared_at, o.started_at)
            FROM candidates c
            WHERE o.id = c.outage_id AND o.restored_at IS NULL
              -- the statement sees the causes as they were before the DELETE above
              AND NOT EXISTS (SELECT 1 FROM outage_causes x
                              WHERE x.outage_id = o.id AND x.alarm_id <> ALL($1::text[]))
            RETURNING o.id, o.service_id, o.alarm_id, o.started_at, o.restored_at, o.customer_ids AS started_with
        )
        -- The customers the outage started with; those holding the service now for an outage
        -- recorded before they were kept.
        SELECT e.id, e.service_id, e.alarm_id, e.started_at, e.restored_at,
               CASE WHEN e.started_with IS NOT NULL
                    THEN array(SELECT jsonb_array_elements_text(e.started_with) ORDER BY 1)
                    ELSE coalesce(array_agg(cs.customer_id ORDER BY cs.customer_id)
                                  FILTER (WHERE cs.customer_id IS NOT NULL), '{}') END AS customer_ids
        FROM ended e LEFT JOIN customer_services cs ON cs.service_id = e.service_id
        GROUP BY e.id, e.service_id, e.alarm_id, e.started_at, e.restored_at, e.started_with
        ORDER BY e.service_id
        """,
        [alarm_id for alarm_id, _ in cleared],
        [at for _, at in cleared],
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


async def network(conn: Connection) -> tuple[list[tuple[str, str, str]], set[str]]:
    """The usable links ``(id, a_end, z_end)``, and the resources down: those with an active
    service-affecting major or critical alarm (this round's new ones included, which the
    operational state does not show yet)."""
    links = await usable_links(conn)
    failed = await conn.fetch(
        """
        SELECT DISTINCT alarmed_object_id FROM alarms
        WHERE state <> 'cleared' AND service_affecting AND perceived_severity IN ('critical', 'major')
        """
    )
    return (
        [(r["id"], r["a_end"], r["z_end"]) for r in links],
        {r["alarmed_object_id"] for r in failed},
    )


async def update_operational_states(conn: Connection, resource_ids: Sequence[str]) -> list[asyncpg.Record]:
    """TMF639 operational state of the resources: disable while an active service-affecting major
    or critical alarm is on them, enable otherwise. Returns the resources whose state changed."""
    if not resource_ids:
        return []
    return await conn.fetch(
        """
        WITH wanted AS (
            SELECT r.id, r.operational_state AS previous,
                   CASE WHEN EXISTS (
                       SELECT 1 FROM alarms a
                       WHERE a.alarmed_object_id = r.id AND a.state <> 'cleared' AND a.service_affecting
                         AND a.perceived_severity IN ('critical', 'major'))
                   THEN 'disable' ELSE 'enable' END AS state
            FROM resources r WHERE r.id = ANY($1::text[])
        )
        UPDATE resources r SET operational_state = w.state
        FROM wanted w WHERE r.id = w.id AND w.previous <> w.state
        RETURNING r.id, r.resource_type, w.previous, r.operational_state
        """,
        sorted(set(resource_ids)),
    )


async def service_paths(conn: Connection, service_ids: Sequence[str]) -> dict[str, list[str]]:
    """The path of each service whose resources are in a known order."""
    if not service_ids:
        return {}
    rows = await conn.fetch(
        """
        SELECT service_id, array_agg(resource_id ORDER BY position) AS path
        FROM service_resources WHERE service_id = ANY($1::text[])
        GROUP BY service_id HAVING bool_and(position IS NOT NULL)
        """,
        list(service_ids),
    )
    return {r["service_id"]: list(r["path"]) for r in rows}


async def move_services(conn: Connection, moves: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Put each service on its new path."""
    if not moves:
        return
    await conn.execute(
        "DELETE FROM service_resources WHERE service_id = ANY($1::text[])", [s for s, _ in moves]
    )
    await conn.executemany(
        "INSERT INTO service_resources (service_id, resource_id, position) VALUES ($1, $2, $3)",
        [(service_id, r, n) for service_id, path in moves for n, r in enumerate(path)],
    )


async def attached_nodes(conn: Connection, resource_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The nodes each link (its two ends), port or cell (its node) hangs off."""
    rows = await conn.fetch(
        """
        SELECT id, a_end, z_end FROM resources
        WHERE resource_type IN ('link', 'port', 'cell') AND id = ANY($1::text[])
        """,
        list(resource_ids),
    )
    return {r["id"]: tuple(n for n in (r["a_end"], r["z_end"]) if n is not None) for r in rows}


async def root_node_alarms(conn: Connection, node_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
    """The active service-affecting root-cause alarm of each node that has one, with when it was
    raised."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (alarmed_object_id) alarmed_object_id, id, raised_at FROM alarms
        WHERE alarmed_object_id = ANY($1::text[]) AND alarmed_object_type = 'node'
          AND state <> 'cleared' AND service_affecting AND is_root_cause
        ORDER BY alarmed_object_id, raised_at
        """,
        list(node_ids),
    )
    return {r["alarmed_object_id"]: (r["id"], r["raised_at"]) for r in rows}


async def clear_symptoms(conn: Connection, roots: Sequence[tuple[str, datetime]]) -> list[asyncpg.Record]:
    """Clear the symptoms of cleared root causes, as of the root's clear, unless the probe has
    reported the symptom again since: that one persists on its own and becomes a root cause."""
    if not roots:
        return []
    ids = [root for root, _ in roots]
    at = [when for _, when in roots]
    cleared = await conn.fetch(
        """
        UPDATE alarms a SET state = 'cleared', cleared_at = u.at
        FROM unnest($1::text[], $2::timestamptz[]) AS u(root, at)
        WHERE a.parent_alarm_id = u.root AND a.state <> 'cleared' AND a.last_seen_at <= u.at
        RETURNING a.id, a.reduction_key, a.alarmed_object_id, a.cleared_at, a.parent_alarm_id
        """,
        ids,
        at,
    )
    await conn.execute(
        "UPDATE alarms SET is_root_cause = true, parent_alarm_id = NULL "
        "WHERE parent_alarm_id = ANY($1::text[]) AND state <> 'cleared'",
        ids,
    )
    return cleared


async def escalate_tickets(conn: Connection, limits: dict[str, float], now: datetime) -> list[asyncpg.Record]:
    """Mark the open tickets past their severity's limit (seconds) as escalated, once each, one
    priority step up; return them."""
    return await conn.fetch(
        """
        UPDATE trouble_tickets t SET escalated_at = $3::timestamptz, priority = greatest(1, t.priority - 1)
        FROM unnest($1::text[], $2::float8[]) AS l(severity, seconds)
        WHERE t.severity = l.severity AND t.resolved_at IS NULL AND t.escalated_at IS NULL
          AND t.created_at <= $3::timestamptz - make_interval(secs => l.seconds)
        RETURNING t.id, t.severity, t.priority, extract(epoch FROM $3::timestamptz - t.created_at) AS open_seconds,
                  l.seconds AS limit_seconds
        """,
        list(limits),
        list(limits.values()),
        now,
    )
