"""Provisioning: place a requested service on a path through the network, or say why not.

The path is the shortest (fewest hops) from a node of the A site to a node of the Z site over
usable links (:func:`~oss_consumers.inventory.states.usable_links`) that have capacity left (their
utilization trend below the planning threshold); it holds the nodes and links in order. With a
path only through full links, the request fails for capacity; with none at all, for the path.

A provided service passes the TMF638 states designed (its path is chosen), reserved (the path's
resources are held for it) and active, all in the one transaction, so that its state is always
where it really is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from events import Envelope, EventPayload, new_event
from events.bss import ServiceProvisioningRequested
from events.oss import ActivationFailure, ServiceActivated, ServiceActivationFailed
from oss_consumers.inventory.lifecycle import PROVISIONING, ServiceState, preceding
from oss_consumers.inventory.paths import shortest_path
from oss_consumers.inventory.states import usable_links
from oss_consumers.performance.forecast import PLANNING_THRESHOLD
from runtime.db import Connection

SOURCE = "/oss/inventory"


async def provision(
    conn: Connection, cause: Envelope[EventPayload], request: ServiceProvisioningRequested
) -> list[Envelope[EventPayload]]:
    """Activate the requested service on a path, or report why it cannot be."""
    existing = await conn.fetchrow("SELECT state FROM services WHERE id = $1", request.service_id)
    if existing is not None:
        return []  # provided already: a repeated request changes nothing
    sites = {
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM resources WHERE resource_type = 'site' AND id = ANY($1::text[])",
            [request.a_site_id, request.z_site_id],
        )
    }
    unknown = [s for s in (request.a_site_id, request.z_site_id) if s not in sites]
    if unknown:
        return [_failed(cause, request, ActivationFailure.INVALID_REQUEST, f"unknown site {unknown[0]}")]
    nodes = await conn.fetch(
        """
        SELECT id, site_id FROM resources
        WHERE resource_type = 'node' AND operational_state = 'enable' AND administrative_state = 'unlocked'
        """
    )
    links = await usable_links(conn)
    a_nodes = [n["id"] for n in nodes if n["site_id"] == request.a_site_id]
    z_nodes = [n["id"] for n in nodes if n["site_id"] == request.z_site_id]
    # Admission: a link whose utilization trend is at the planning threshold takes no new service.
    full = {
        link["id"]: link["utilization"] for link in links if (link["utilization"] or 0) >= PLANNING_THRESHOLD
    }
    path = shortest_path(
        a_nodes,
        z_nodes,
        [(link["id"], link["a_end"], link["z_end"]) for link in links if link["id"] not in full],
    )
    if path is None and full:
        through_full = shortest_path(
            a_nodes, z_nodes, [(link["id"], link["a_end"], link["z_end"]) for link in links]
        )
        if through_full is not None:
            blocking = sorted(r for r in through_full if r in full)
            return [
                _failed(
                    cause,
                    request,
                    ActivationFailure.NO_CAPACITY,
                    f"no capacity between {request.a_site_id} and {request.z_site_id}: "
                    + ", ".join(f"{link} is at {full[link]:.0f} % utilization" for link in blocking),
                )
            ]
    if path is None:
        return [
            _failed(
                cause,
                request,
                ActivationFailure.NO_PATH,
                f"no working path between {request.a_site_id} and {request.z_site_id}",
            )
        ]
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO services (id, name, state, order_id, a_site_id, z_site_id) VALUES ($1, $2, $3, $4, $5, $6)",
        request.service_id,
        request.service_name,
        PROVISIONING[0].value,
        request.order_id,
        request.a_site_id,
        request.z_site_id,
    )
    await conn.executemany(
        "INSERT INTO service_resources (service_id, resource_id, position) VALUES ($1, $2, $3)",
        [(request.service_id, r, n) for n, r in enumerate(path)],
    )
    for state in PROVISIONING[1:]:
        await move_service(conn, request.service_id, state, now)
    return [
        new_event(
            ServiceActivated(
                service_id=request.service_id,
                order_id=request.order_id,
                resource_ids=tuple(path),
                activated_at=now,
            ),
            source=SOURCE,
            subject=request.service_id,
            cause=cause,
        )
    ]


async def move_service(
    conn: Connection, service_id: str, target: ServiceState, at: datetime | None = None
) -> None:
    """Move a service to ``target`` (TMF638), stamping ``at`` as its activation or termination
    time. A move the lifecycle does not allow is a bug, not a request to refuse: it raises."""
    moved = await conn.fetchval(
        """
        UPDATE services SET state = $2,
            activated_at = CASE WHEN $2 = 'active' THEN coalesce($4, now()) ELSE activated_at END,
            terminated_at = CASE WHEN $2 = 'terminated' THEN coalesce($4, now()) ELSE terminated_at END
        WHERE id = $1 AND state = ANY($3::text[]) RETURNING 1
        """,
        service_id,
        target.value,
        preceding(target),
        at,
    )
    if not moved:
        raise RuntimeError(f"service {service_id} cannot move to {target.value}")


def _failed(
    cause: Envelope[EventPayload],
    request: ServiceProvisioningRequested,
    failure: ActivationFailure,
    reason: str,
) -> Envelope[EventPayload]:
    return new_event(
        ServiceActivationFailed(
            service_id=request.service_id, order_id=request.order_id, failure=failure, reason=reason
        ),
        source=SOURCE,
        subject=request.service_id,
        cause=cause,
    )
