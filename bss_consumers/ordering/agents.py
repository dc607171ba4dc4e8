"""Ordering's consumer: validates product orders, asks OSS to provide the service, and completes
the order when OSS activates it (the customer then holds the service, and OSS is told) or fails
it with OSS's reason. An order can be cancelled until it is completed."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from events import Envelope, EventPayload, new_event
from events.bss import (
    CustomerServiceAssigned,
    ProductOrderCancellationRequested,
    ProductOrderRequested,
    ProductOrderState,
    ProductOrderStateChanged,
    ServiceProvisioningRequested,
    SlaTier,
)
from events.oss import ServiceActivated, ServiceActivationFailed
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-ordering"
SOURCE = "/bss/ordering"
HANDLES = (
    ProductOrderRequested,
    ProductOrderCancellationRequested,
    ServiceActivated,
    ServiceActivationFailed,
)
PUBLISHES = (ProductOrderStateChanged, ServiceProvisioningRequested, CustomerServiceAssigned)
CANCELLABLE = (ProductOrderState.ACKNOWLEDGED.value, ProductOrderState.IN_PROGRESS.value)
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
        else {k: row[k] for k in ("id", "customer_id", "offering_id", "service_id", "state", "reason")}
    )


async def _cancel(
    conn: Connection, cause: Envelope[EventPayload], request: ProductOrderCancellationRequested
) -> Out:
    order = await _order(conn, request.order_id)
    if order is None:
        raise Rejected(f"no order {request.order_id}")
    if order["state"] == ProductOrderState.CANCELLED.value:
        return []
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
    row = await conn.fetchrow(
        """
        INSERT INTO customer_services (service_id, customer_id, product_name, assigned_at)
        SELECT $1, c.id, o.name, $4 FROM customers c, product_offerings o WHERE c.id = $2 AND o.id = $3
        ON CONFLICT (service_id) DO NOTHING
        RETURNING product_name, (SELECT sla_tier FROM customers WHERE id = $2) AS sla_tier
        """,
        activated.service_id,
        order["customer_id"],
        order["offering_id"],
        activated.activated_at,
    )
    out: Out = [_state(cause, order, ProductOrderState.COMPLETED)]
    if row is not None:
        # OSS learns whom the new service belongs to, as for every other service.
        out.append(
            new_event(
                CustomerServiceAssigned(
                    service_id=activated.service_id,
                    customer_id=str(order["customer_id"]),
                    sla_tier=SlaTier(row["sla_tier"]),
                    product_name=row["product_name"],
                ),
                source=SOURCE,
                subject=activated.service_id,
                cause=cause,
            )
        )
    return out


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
