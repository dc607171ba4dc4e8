"""Read models of the live dashboard's panes: what the page shows, queried from the domains' own
tables. The OSS panes take a connection of the OSS pool, the BSS panes one of the BSS pool; no
query here joins the two. Customers appear by id only: personal data stays in the BSS tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.db import Connection

SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate")
"""X.733 severities of an active alarm, worst first: the console's order."""

RECENT = "1 hour"
"""How long resolved tickets, restored outages and finished orders stay on the page."""

_SEVERITY_RANK = "coalesce(array_position($1::text[], {column}), 99)"


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


# OSS ------------------------------------------------------------------------------------------


class AlarmView(_View):
    """An open alarm (TMF642), with the symptoms it explains nested under it."""

    id: str
    alarmed_object_id: str
    alarmed_object_type: str
    alarm_type: str
    probable_cause: str
    specific_problem: str
    perceived_severity: str
    state: str
    ack_state: str
    ack_user_id: str | None
    service_affecting: bool
    is_root_cause: bool
    parent_alarm_id: str | None
    raised_at: datetime
    last_seen_at: datetime
    occurrences: int
    ticket_id: str | None = Field(description="The trouble ticket opened for it, if any.")
    symptoms: list[AlarmView] = Field(
        default_factory=list, description="Open alarms whose parentAlarm is this one."
    )


class AlarmConsole(_View):
    """Open alarms, root causes first by severity, symptoms nested under their root cause; the
    counts cover every open alarm, the list the worst few hundred."""

    alarms: list[AlarmView]
    open: int = Field(description="Open alarms, symptoms included.")
    unacknowledged: int
    by_severity: dict[str, int] = Field(description="Open alarms per perceived severity.")


class TicketView(_View):
    """A trouble ticket (TMF621), open or recently resolved."""

    id: str
    alarm_id: str
    alarmed_object_id: str
    name: str
    severity: str
    priority: int
    status: str
    created_at: datetime
    resolved_at: datetime | None
    escalated_at: datetime | None


class WorkOrderView(_View):
    """A work order (TMF697) for field work on a ticket."""

    id: str
    ticket_id: str
    resource_id: str
    state: str
    priority: int
    technician_id: str | None
    region: str | None
    required_skill: str
    created_at: datetime
    due_at: datetime
    sla_breached: bool


class TicketsPane(_View):
    """Open and recently resolved tickets, and the open work orders."""

    tickets: list[TicketView]
    open: int
    work_orders: list[WorkOrderView] | None = Field(
        description="Open and recently finished work orders; null where workforce is not installed."
    )


class OutageView(_View):
    """A service outage, active or recently restored."""

    id: str
    service_id: str
    service_name: str
    resource_id: str
    alarm_id: str
    started_at: datetime
    restored_at: datetime | None
    customer_ids: list[str]


class RerouteView(_View):
    """A service that runs on another path than the one it was planned on."""

    service_id: str
    service_name: str
    planned_path: list[str]
    current_path: list[str]
    avoided: list[str] = Field(description="Resources of the planned path the service no longer uses.")
    still_failed: list[str] = Field(description="Avoided resources that still have an open alarm.")


class ServicesPane(_View):
    """Service health: outages and services moved to a backup path."""

    outages: list[OutageView]
    reroutes: list[RerouteView]
    services: int = Field(description="Services in the inventory, terminated ones left out.")
    down: int


class ResourceState(_View):
    """The state of one node or link: its worst open alarm and the services on it."""

    id: str
    severity: str | None = Field(description="Worst perceived severity of its open alarms.")
    open_alarms: int
    operational_state: str
    administrative_state: str = Field(default="unlocked", description="locked for maintenance, or not.")
    services: int = Field(description="Services placed on it: TMF639 usage active when above 0, else idle.")
    services_down: int = Field(description="Services down because of this resource's open alarms.")


class AttachmentView(_View):
    """A port or radio cell hanging off a node."""

    id: str
    name: str
    kind: str = Field(description="port or cell")
    state: ResourceState


class NodeView(_View):
    id: str
    name: str
    state: ResourceState
    attachments: list[AttachmentView] = Field(description="Its ports and radio cells.")


class SiteView(_View):
    id: str
    name: str
    nodes: list[NodeView]


class LinkView(_View):
    id: str
    name: str
    a_end: str
    z_end: str
    state: ResourceState


class NetworkPane(_View):
    """The network as declared (sites, nodes, links), each resource with its state now."""

    sites: list[SiteView]
    links: list[LinkView]


# BSS ------------------------------------------------------------------------------------------


class OrderView(_View):
    """A product order (TMF622), in flight or recently finished."""

    id: str
    customer_id: str
    offering_id: str
    a_site_id: str
    z_site_id: str
    state: str
    service_id: str | None
    reason: str | None = Field(
        description="Why it failed or was rejected; none for a cancelled order, whose reason is the customer's words."
    )
    requested_at: datetime
    updated_at: datetime


class OrdersPane(_View):
    orders: list[OrderView]
    in_flight: int


class InvoiceView(_View):
    """An issued invoice (TMF678), amounts in minor units."""

    id: str
    bill_number: int
    account_id: str
    period_start: date
    period_end: date
    bill_date: datetime
    payment_due_date: date
    currency: str
    tax_included_minor: int
    paid_minor: int
    state: str
    dunned: bool


class InvoicesPane(_View):
    invoices: list[InvoiceView]


# Queries --------------------------------------------------------------------------------------


async def alarm_console(conn: Connection, limit: int = 500) -> AlarmConsole:
    """Open alarms (OSS), worst severity first, each symptom under its open root cause; a symptom
    whose root cause has cleared stands on its own."""
    rows = await conn.fetch(
        f"""
        SELECT a.id, a.alarmed_object_id, a.alarmed_object_type, a.alarm_type, a.probable_cause,
               a.specific_problem, a.perceived_severity, a.state, a.ack_state, a.ack_user_id,
               a.service_affecting, a.is_root_cause, a.parent_alarm_id, a.raised_at, a.last_seen_at,
               a.occurrences, t.id AS ticket_id
        FROM alarms a LEFT JOIN trouble_tickets t ON t.alarm_id = a.id
        WHERE a.state <> 'cleared'
        ORDER BY {_SEVERITY_RANK.format(column="a.perceived_severity")}, a.raised_at DESC, a.id
        LIMIT $2
        """,
        list(SEVERITIES),
        limit,
    )
    counts = await conn.fetch(
        """
        SELECT perceived_severity, count(*) AS n,
               count(*) FILTER (WHERE ack_state <> 'acknowledged') AS unacknowledged
        FROM alarms WHERE state <> 'cleared' GROUP BY perceived_severity
        """
    )
    return AlarmConsole(
        alarms=_nest([dict(r) for r in rows]),
        open=sum(int(c["n"]) for c in counts),
        unacknowledged=sum(int(c["unacknowledged"]) for c in counts),
        by_severity={c["perceived_severity"]: int(c["n"]) for c in counts},
    )


def _nest(alarms: list[dict[str, Any]]) -> list[AlarmView]:
    """Root causes (in the given order) with their open symptoms (in the given order)."""
    ids = {a["id"] for a in alarms}
    symptoms: dict[str, list[dict[str, Any]]] = {}
    roots: list[dict[str, Any]] = []
    for alarm in alarms:
        parent = alarm["parent_alarm_id"]
        if parent is not None and parent in ids and parent != alarm["id"]:
            symptoms.setdefault(parent, []).append(alarm)
        else:
            roots.append(alarm)
    return [
        AlarmView.model_validate(
            {**root, "symptoms": [AlarmView.model_validate(s) for s in symptoms.get(root["id"], [])]}
        )
        for root in roots
    ]


async def tickets_pane(conn: Connection, limit: int = 50) -> TicketsPane:
    """Open tickets by priority, then the ones resolved within the last hour (OSS)."""
    rows = await conn.fetch(
        f"""
        SELECT t.id, t.alarm_id, a.alarmed_object_id, t.name, t.severity, t.priority, t.status,
               t.created_at, t.resolved_at, t.escalated_at
        FROM trouble_tickets t JOIN alarms a ON a.id = t.alarm_id
        WHERE t.resolved_at IS NULL OR t.resolved_at > now() - interval '{RECENT}'
        ORDER BY t.resolved_at IS NOT NULL, t.priority, t.created_at DESC
        LIMIT $1
        """,
        limit,
    )
    open_count = await conn.fetchval("SELECT count(*) FROM trouble_tickets WHERE resolved_at IS NULL")
    return TicketsPane(
        tickets=[TicketView.model_validate(dict(r)) for r in rows],
        open=int(open_count),
        work_orders=await work_orders(conn),
    )


async def work_orders(conn: Connection, limit: int = 50) -> list[WorkOrderView] | None:
    """Open work orders and those finished within the last hour (OSS); None when the schema has
    no work orders (workforce not installed)."""
    if await conn.fetchval("SELECT to_regclass('work_orders')") is None:
        return None
    rows = await conn.fetch(
        f"""
        SELECT id, ticket_id, resource_id, state, priority, technician_id, region, required_skill,
               created_at, due_at, sla_breached_at IS NOT NULL AS sla_breached
        FROM work_orders
        WHERE state NOT IN ('completed', 'failed', 'cancelled')
           OR coalesce(finished_at, created_at) > now() - interval '{RECENT}'
        ORDER BY state IN ('completed', 'failed', 'cancelled'), priority, due_at
        LIMIT $1
        """,
        limit,
    )
    return [WorkOrderView.model_validate(dict(r)) for r in rows]


async def services_pane(conn: Connection, network: dict[str, Any], limit: int = 50) -> ServicesPane:
    """Active and recently restored outages, and the declared services now on another path than
    their planned one (OSS)."""
    rows = await conn.fetch(
        f"""
        SELECT o.id, o.service_id, s.name AS service_name, o.resource_id, o.alarm_id, o.started_at,
               o.restored_at,
               coalesce(array_agg(cs.customer_id ORDER BY cs.customer_id)
                        FILTER (WHERE cs.customer_id IS NOT NULL), '{{}}') AS customer_ids
        FROM service_outages o
        JOIN services s ON s.id = o.service_id
        LEFT JOIN customer_services cs ON cs.service_id = o.service_id
        WHERE o.restored_at IS NULL OR o.restored_at > now() - interval '{RECENT}'
        GROUP BY o.id, s.name
        ORDER BY o.restored_at IS NOT NULL, o.started_at DESC
        LIMIT $1
        """,
        limit,
    )
    counts = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM services WHERE state <> 'terminated') AS services,
               (SELECT count(*) FROM service_outages WHERE restored_at IS NULL) AS down
        """
    )
    assert counts is not None
    return ServicesPane(
        outages=[OutageView.model_validate(dict(r)) for r in rows],
        reroutes=await reroutes(conn, network),
        services=int(counts["services"]),
        down=int(counts["down"]),
    )


async def reroutes(conn: Connection, network: dict[str, Any]) -> list[RerouteView]:
    """Declared services whose path in the inventory differs from the planned one: they were moved
    around a failure, and keep the new path after the repair."""
    planned = {s["id"]: (s.get("name") or s["id"], list(s["path"])) for s in network.get("services", [])}
    if not planned:
        return []
    rows = await conn.fetch(
        """
        SELECT service_id, array_agg(resource_id ORDER BY position) AS path
        FROM service_resources WHERE service_id = ANY($1::text[])
        GROUP BY service_id HAVING bool_and(position IS NOT NULL)
        """,
        list(planned),
    )
    moved = {r["service_id"]: list(r["path"]) for r in rows if list(r["path"]) != planned[r["service_id"]][1]}
    failed = await _alarmed(conn, sorted({r for sid in moved for r in planned[sid][1]}))
    found = []
    for service_id, current in sorted(moved.items()):
        name, path = planned[service_id]
        avoided = [r for r in path if r not in current]
        found.append(
            RerouteView(
                service_id=service_id,
                service_name=name,
                planned_path=path,
                current_path=current,
                avoided=avoided,
                still_failed=[r for r in avoided if r in failed],
            )
        )
    return found


async def _alarmed(conn: Connection, resource_ids: list[str]) -> set[str]:
    """Which of these resources have an open service-affecting alarm."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT alarmed_object_id FROM alarms
        WHERE state <> 'cleared' AND service_affecting AND alarmed_object_id = ANY($1::text[])
        """,
        resource_ids,
    )
    return {r["alarmed_object_id"] for r in rows}


async def network_pane(conn: Connection, network: dict[str, Any]) -> NetworkPane:
    """The declared sites, nodes (with their ports and cells) and links, each with its worst open
    alarm and the services its alarms keep down (OSS)."""
    states = await resource_states(conn)

    def state(resource_id: str) -> ResourceState:
        return states.get(resource_id) or _quiet(resource_id)

    attached = _attachments(network, state)
    sites = [
        SiteView(
            id=site["id"],
            name=site.get("name", site["id"]),
            nodes=[
                NodeView(
                    id=n["id"],
                    name=n.get("name", n["id"]),
                    state=state(n["id"]),
                    attachments=attached.get(n["id"], []),
                )
                for n in site.get("nodes", [])
            ],
        )
        for site in network.get("sites", [])
    ]
    links = [
        LinkView(
            id=link["id"],
            name=link.get("name", link["id"]),
            a_end=link["a_end"],
            z_end=link["z_end"],
            state=state(link["id"]),
        )
        for link in network.get("links", [])
    ]
    return NetworkPane(sites=sites, links=links)


def _quiet(resource_id: str) -> ResourceState:
    """The state of a resource the inventory does not hold (yet): no alarm, nothing on it."""
    return ResourceState(
        id=resource_id, severity=None, open_alarms=0, operational_state="enable", services=0, services_down=0
    )


def _attachments(
    network: dict[str, Any], state: Callable[[str], ResourceState]
) -> dict[str, list[AttachmentView]]:
    """The declared ports and cells of each node, with their state."""
    attached: dict[str, list[AttachmentView]] = {}
    for kind in ("port", "cell"):
        for item in network.get(f"{kind}s", []):
            view = AttachmentView(
                id=item["id"], name=item.get("name", item["id"]), kind=kind, state=state(item["id"])
            )
            attached.setdefault(item["node"], []).append(view)
    return attached


async def resource_states(conn: Connection) -> dict[str, ResourceState]:
    """Every inventoried resource's worst open alarm, its open alarm count, the services placed on
    it, and how many services its open alarms keep down (OSS)."""
    rows = await conn.fetch(
        f"""
        WITH open_alarms AS (
            SELECT alarmed_object_id AS id, count(*) AS n,
                   min({_SEVERITY_RANK.format(column="perceived_severity")}) AS worst
            FROM alarms WHERE state <> 'cleared' GROUP BY alarmed_object_id
        ), placed AS (
            SELECT resource_id AS id, count(*) AS n FROM service_resources GROUP BY resource_id
        ), taken_down AS (
            SELECT a.alarmed_object_id AS id, count(DISTINCT o.service_id) AS down
            FROM service_outages o
            JOIN outage_causes c ON c.outage_id = o.id
            JOIN alarms a ON a.id = c.alarm_id
            WHERE o.restored_at IS NULL AND a.state <> 'cleared'
            GROUP BY a.alarmed_object_id
        )
        SELECT r.id, r.operational_state, r.administrative_state, coalesce(a.n, 0) AS open_alarms,
               ($1::text[])[a.worst] AS severity,
               coalesce(p.n, 0) AS services, coalesce(d.down, 0) AS services_down
        FROM resources r
        LEFT JOIN open_alarms a ON a.id = r.id
        LEFT JOIN placed p ON p.id = r.id
        LEFT JOIN taken_down d ON d.id = r.id
        """,
        list(SEVERITIES),
    )
    return {r["id"]: ResourceState.model_validate(dict(r)) for r in rows}


async def orders_pane(conn: Connection, limit: int = 40) -> OrdersPane:
    """Orders in flight, then those finished within the last hour (BSS)."""
    finished = ["completed", "failed", "cancelled", "rejected"]
    rows = await conn.fetch(
        f"""
        SELECT id, customer_id, offering_id, a_site_id, z_site_id, state, service_id,
               CASE WHEN state <> 'cancelled' THEN reason END AS reason,
               requested_at, updated_at
        FROM product_orders
        WHERE state <> ALL($1::text[]) OR updated_at > now() - interval '{RECENT}'
        ORDER BY state = ANY($1::text[]), updated_at DESC
        LIMIT $2
        """,
        finished,
        limit,
    )
    in_flight = await conn.fetchval(
        "SELECT count(*) FROM product_orders WHERE state <> ALL($1::text[])", finished
    )
    return OrdersPane(orders=[OrderView.model_validate(dict(r)) for r in rows], in_flight=int(in_flight))


async def invoices_pane(conn: Connection, limit: int = 20) -> InvoicesPane:
    """The latest issued invoices (BSS)."""
    rows = await conn.fetch(
        """
        SELECT id, bill_number, account_id, period_start, period_end, bill_date, payment_due_date,
               currency, tax_included_minor, paid_minor, state, dunned_at IS NOT NULL AS dunned
        FROM invoices ORDER BY bill_number DESC LIMIT $1
        """,
        limit,
    )
    return InvoicesPane(invoices=[InvoiceView.model_validate(dict(r)) for r in rows])
