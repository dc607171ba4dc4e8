"""The sales channel's side of ordering: order, cancellation and termination requests, published
for the ordering consumer to handle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from events import new_event
from events.bss import ProductOrderCancellationRequested, ProductOrderRequested, ProductTerminationRequested
from runtime.bus import Publisher

COMPONENT = "order-portal"
SOURCE = "/bss/order-portal"
HANDLES = ()
PUBLISHES = (ProductOrderRequested, ProductOrderCancellationRequested, ProductTerminationRequested)


def new_order_id() -> str:
    """A new TMF622 order id, chosen by the channel."""
    return f"PO-{uuid.uuid4().hex[:10].upper()}"


async def place_order(
    publisher: Publisher, customer_id: str, offering_id: str, a_site_id: str, z_site_id: str
) -> ProductOrderRequested:
    """Publish a new order; returns it (its ``order_id`` is new)."""
    order = ProductOrderRequested(
        order_id=new_order_id(),
        customer_id=customer_id,
        offering_id=offering_id,
        a_site_id=a_site_id,
        z_site_id=z_site_id,
        requested_at=datetime.now(UTC),
    )
    await publisher.publish(new_event(order, source=SOURCE, subject=order.order_id))
    return order


async def cancel_order(publisher: Publisher, order_id: str, reason: str = "") -> None:
    """Publish a request to cancel an order."""
    request = ProductOrderCancellationRequested(order_id=order_id, cancellation_reason=reason)
    await publisher.publish(new_event(request, source=SOURCE, subject=order_id))


async def terminate_service(
    publisher: Publisher, customer_id: str, service_id: str, reason: str = ""
) -> ProductTerminationRequested:
    """Publish an order to end a service the customer holds; returns it (its ``order_id`` is new)."""
    order = ProductTerminationRequested(
        order_id=new_order_id(),
        customer_id=customer_id,
        service_id=service_id,
        requested_at=datetime.now(UTC),
        termination_reason=reason,
    )
    await publisher.publish(new_event(order, source=SOURCE, subject=order.order_id))
    return order
