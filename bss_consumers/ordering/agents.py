"""Ordering's consumer: validates product orders, asks OSS to provide the service, and completes
the order when OSS activates it (the customer then holds the service, and OSS is told) or fails
it with OSS's reason. An order can be cancelled until it is completed.

A termination order (TMF622 orderItem action delete) ends a service the customer holds: BSS
checks the holder (`termination.refusal`), asks OSS to terminate the service, and completes the
order when OSS has; the customer's assignment then ends (OSS is told, and billing charges the
service up to that day). A termination cannot be cancelled: the request is sent to OSS at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from bss_consumers.crm.assignments import assignments
from bss_consumers.ordering.termination import Holding, refusal
from events import Envelope, EventPayload, new_event
from events.bss import (
    CustomerServiceAssigned,
    OrderItemAction,
    ProductOrderCancellationRequested,
    ProductOrderRequested,
    ProductOrderState,
    ProductOrderStateChanged,
    ProductTerminationRequested,
    ServiceProvisioningRequested,
    ServiceTerminationRequested,
)
from events.oss import ServiceActivated, ServiceActivationFailed, ServiceTerminated, ServiceTerminationFailed
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-ordering"
SOURCE = "/bss/ordering"
HANDLES = (
    ProductOrderRequested,
    ProductOrderCancellationRequested,
    ProductTerminationRequested,
    ServiceActivated,
    ServiceActivationFailed,
    ServiceTerminated,
    ServiceTerminationFailed,
)
PUBLISHES = (
    ProductOrderStateChanged,
    ServiceProvisioningRequested,
    ServiceTerminationRequested,
    CustomerServiceAssigned,
)
CANCELLABLE = (ProductOrderState.ACKNOWLEDGED.value, ProductOrderState.IN_PROGRESS.value)
IN_FLIGHT = CANCELLABLE  # the states of an order that OSS may still answer
log = structlog.get_logger(__name__)

Out = list[Envelope[EventPayload]]


async def handle(conn: Connection, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    """Move an order along; return the events to publish."""
    data = event.data
    if isinstance(data, ProductOrderRequested):
        return await _requested(conn, event, data)
    if isinstance(data, ProductOrderCancellationRequested):
        return await _cancel(conn, event, data)
    if isinstance(data, ServiceActivated):
        return await _activated(conn, event, data)
    if isinstance(data, ServiceActivationFailed):
        return await _activation_failed(conn, event, data)
    if isinstance(data, ProductTerminationRequested):
        return await _termination_requested(conn, event, data)
    if isinstance(data, ServiceTerminated):
        return await _terminated(conn, event, data)
    if isinstance(data, ServiceTerminationFailed):
        return await _termination_failed(conn, event, data)
    raise Rejected(f"{COMPONENT} does not handle {event.type}")


def _state(
    cause: Envelope[EventPayload], order: dict[str, str | None], state: ProductOrderState
) -> Envelope[EventPayload]:
    return new_event(
        ProductOrderStateChanged(
            order_id=str(order["id"]),
            customer_id=str(order["customer_id"]),
            offering_id=str(order["offering_id"]),
            state=state,
            service_id=order.get("service_id"),
            reason=order.get("reason"),
            action=OrderItemAction(order.get("action") or OrderItemAction.ADD.value),
        ),
        source=SOURCE,
        subject=str(order["id"]),
        cause=cause,
    )


async def _requested(conn: Connection, cause: Envelope[EventPayload], request: ProductOrderRequested) -> Out:
    offering = await conn.fetchrow("SELECT name FROM product_offerings WHERE id = $1", request.offering_id)
    customer = await conn.fetchval("SELECT 1 FROM customers WHERE id = $1", request.customer_id)
    reason = None
    if customer is None:
        reason = f"unknown customer {request.customer_id}"
    elif offering is None:
        reason = f"unknown product offering {request.offering_id}"
    elif request.a_site_id == request.z_site_id:
        reason = "a service needs two different sites"
    service_id = f"SVC-{request.order_id}"
    state = ProductOrderState.REJECTED if reason else ProductOrderState.IN_PROGRESS
    inserted = await conn.fetchval(
        """
        INSERT INTO product_orders (id, customer_id, offering_id, a_site_id, z_site_id, state, service_id,
                                    reason, requested_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING RETURNING 1
        """,
        request.order_id,
        request.customer_id,
        request.offering_id,
        request.a_site_id,
        request.z_site_id,
        state.value,
        None if reason else service_id,
        reason,
        request.requested_at,
    )
    if not inserted:
        return []  # the same order placed again: it is already being handled
    order: dict[str, str | None] = {
        "id": request.order_id,
        "customer_id": request.customer_id,
        "offering_id": request.offering_id,
    }
    if reason:
        return [_state(cause, order | {"reason": reason}, ProductOrderState.REJECTED)]
    assert offering is not None
    return [
        _state(cause, order, ProductOrderState.ACKNOWLEDGED),
        new_event(
            ServiceProvisioningRequested(
                service_id=service_id,
                order_id=request.order_id,
                service_name=f"{offering['name']} {request.a_site_id}-{request.z_site_id}",
                a_site_id=request.a_site_id,
                z_site_id=request.z_site_id,
            ),
            source=SOURCE,
            subject=service_id,
            cause=cause,
        ),
        _state(cause, order | {"service_id": service_id}, ProductOrderState.IN_PROGRESS),
    ]


async def _order(conn: Connection, order_id: str) -> dict[str, str | None] | None:
    row = await conn.fetchrow("SELECT * FROM product_orders WHERE id = $1 FOR UPDATE", order_id)
    return (
        None
        if row is None
        else {
            k: row[k] for k in ("id", "customer_id", "offering_id", "service_id", "state", "reason", "action")
        }
    )


async def _cancel(
    conn: Connection, cause: Envelope[EventPayload], request: ProductOrderCancellationRequested
) -> Out:
    order = await _order(conn, request.order_id)
    if order is None:
        raise Rejected(f"no order {request.order_id}")
    if order["state"] == ProductOrderState.CANCELLED.value:
        return []
    if order["action"] == OrderItemAction.DELETE.value:
        raise Rejected(f"order {request.order_id} terminates a service: a termination cannot be cancelled")
    if order["state"] not in CANCELLABLE:
        raise Rejected(f"order {request.order_id} is {order['state']}: it can no longer be cancelled")
    reason = request.cancellation_reason or "cancelled by the customer"
    await conn.execute(
        "UPDATE product_orders SET state = 'cancelled', reason = $2, updated_at = now() WHERE id = $1",
        request.order_id,
        reason,
    )
    return [_state(cause, order | {"reason": reason}, ProductOrderState.CANCELLED)]


async def _activated(conn: Connection, cause: Envelope[EventPayload], activated: ServiceActivated) -> Out:
    order = await _order(conn, activated.order_id)
    if order is None or order["state"] != ProductOrderState.IN_PROGRESS.value:
        # Cancelled meanwhile, or already completed: nothing more to do here.
        log.warning(
            "service activated for an order not in progress",
            order_id=activated.order_id,
            state=None if order is None else order["state"],
        )
        return []
    await conn.execute(
        "UPDATE product_orders SET state = 'completed', updated_at = now() WHERE id = $1", activated.order_id
    )
    assigned = await conn.fetchval(
        """
        INSERT INTO customer_services (service_id, customer_id, product_name, assigned_at, offering_id)
        SELECT $1, c.id, o.name, $4, o.id FROM customers c, product_offerings o WHERE c.id = $2 AND o.id = $3
        ON CONFLICT (service_id) DO NOTHING
        RETURNING 1
        """,
        activated.service_id,
        order["customer_id"],
        order["offering_id"],
        activated.activated_at,
    )
    out: Out = [_state(cause, order, ProductOrderState.COMPLETED)]
    if assigned:
        # OSS learns whom the new service belongs to, as for every other service.
        out += await _assignment_events(conn, cause, activated.service_id)
    return out


async def _assignment_events(conn: Connection, cause: Envelope[EventPayload], service_id: str) -> Out:
    return [
        new_event(a, source=SOURCE, subject=service_id, cause=cause)
        for a in await assignments(conn, [service_id])
    ]


async def _activation_failed(
    conn: Connection, cause: Envelope[EventPayload], failed: ServiceActivationFailed
) -> Out:
    order = await _order(conn, failed.order_id)
    if order is None or order["state"] != ProductOrderState.IN_PROGRESS.value:
        return []
    reason = f"{failed.failure.value}: {failed.reason}"
    await conn.execute(
        "UPDATE product_orders SET state = 'failed', reason = $2, updated_at = now() WHERE id = $1",
        failed.order_id,
        reason,
    )
    return [_state(cause, order | {"reason": reason}, ProductOrderState.FAILED)]


async def _termination_requested(
    conn: Connection, cause: Envelope[EventPayload], request: ProductTerminationRequested
) -> Out:
    reason, offering_id = await _termination_check(conn, request)
    a_site_id, z_site_id = await _original_sites(conn, request.service_id)
    state = ProductOrderState.REJECTED if reason else ProductOrderState.IN_PROGRESS
    inserted = await conn.fetchval(
        """
        INSERT INTO product_orders (id, customer_id, offering_id, a_site_id, z_site_id, state, service_id,
                                    reason, requested_at, action)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'delete') ON CONFLICT (id) DO NOTHING RETURNING 1
        """,
        request.order_id,
        request.customer_id,
        offering_id,
        a_site_id,
        z_site_id,
        state.value,
        request.service_id,
        reason,
        request.requested_at,
    )
    if not inserted:
        return []  # the same order placed again: it is already being handled
    order: dict[str, str | None] = {
        "id": request.order_id,
        "customer_id": request.customer_id,
        "offering_id": offering_id,
        "service_id": request.service_id,
        "action": OrderItemAction.DELETE.value,
    }
    if reason:
        return [_state(cause, order | {"reason": reason}, ProductOrderState.REJECTED)]
    return [
        _state(cause, order, ProductOrderState.ACKNOWLEDGED),
        new_event(
            ServiceTerminationRequested(
                service_id=request.service_id, order_id=request.order_id, requested_at=request.requested_at
            ),
            source=SOURCE,
            subject=request.service_id,
            cause=cause,
        ),
        _state(cause, order, ProductOrderState.IN_PROGRESS),
    ]


async def _termination_check(
    conn: Connection, request: ProductTerminationRequested
) -> tuple[str | None, str]:
    """Why the termination is rejected (None when it may go ahead), and the offering of the
    service: the one it was ordered with, else the catalog's offering of its product name ('' when
    there is none). The holding is locked, so that two terminations of one service handled at
    once see each other: the second is rejected as in flight."""
    held = await conn.fetchrow(
        """
        SELECT cs.customer_id, cs.ended_at, coalesce(cs.offering_id, o.id) AS offering_id
        FROM customer_services cs LEFT JOIN product_offerings o ON o.name = cs.product_name
        WHERE cs.service_id = $1
        FOR UPDATE OF cs
        """,
        request.service_id,
    )
    in_flight = await conn.fetchval(
        "SELECT id FROM product_orders WHERE service_id = $1 AND action = 'delete' AND state = ANY($2::text[])",
        request.service_id,
        list(IN_FLIGHT),
    )
    customer = await conn.fetchval("SELECT 1 FROM customers WHERE id = $1", request.customer_id)
    offering_id = None if held is None else held["offering_id"]
    reason = refusal(
        request.customer_id,
        request.service_id,
        customer_known=customer is not None,
        holding=None if held is None else Holding(held["customer_id"], held["ended_at"]),
        pending_order_id=in_flight,
        offering_id=offering_id,
    )
    return reason, offering_id or ""


async def _original_sites(conn: Connection, service_id: str) -> tuple[str, str]:
    """The sites of the order that provided the service; '' for a service BSS did not order."""
    sites = await conn.fetchrow(
        "SELECT a_site_id, z_site_id FROM product_orders WHERE service_id = $1 AND action = 'add' LIMIT 1",
        service_id,
    )
    return ("", "") if sites is None else (sites["a_site_id"], sites["z_site_id"])


async def _terminated(conn: Connection, cause: Envelope[EventPayload], terminated: ServiceTerminated) -> Out:
    """The network no longer has the service: the customer's hold on it ends whatever became of
    the order meanwhile, and the order is completed if it is still in progress."""
    order = await _order(conn, terminated.order_id)
    out: Out = []
    if order is not None and order["state"] == ProductOrderState.IN_PROGRESS.value:
        await conn.execute(
            "UPDATE product_orders SET state = 'completed', updated_at = now() WHERE id = $1",
            terminated.order_id,
        )
        out.append(_state(cause, order, ProductOrderState.COMPLETED))
    else:
        log.warning(
            "service terminated for an order not in progress",
            order_id=terminated.order_id,
            state=None if order is None else order["state"],
        )
    ended = await conn.fetchval(
        "UPDATE customer_services SET ended_at = $2 WHERE service_id = $1 AND ended_at IS NULL RETURNING 1",
        terminated.service_id,
        terminated.terminated_at,
    )
    if ended:
        # OSS forgets the holder; billing charges the service up to this day.
        out += await _assignment_events(conn, cause, terminated.service_id)
    return out


async def _termination_failed(
    conn: Connection, cause: Envelope[EventPayload], failed: ServiceTerminationFailed
) -> Out:
    order = await _order(conn, failed.order_id)
    if order is None or order["state"] != ProductOrderState.IN_PROGRESS.value:
        return []
    await conn.execute(
        "UPDATE product_orders SET state = 'failed', reason = $2, updated_at = now() WHERE id = $1",
        failed.order_id,
        failed.reason,
    )
    return [_state(cause, order | {"reason": failed.reason}, ProductOrderState.FAILED)]
