"""Whether a termination order (TMF622 orderItem action delete) may go ahead, free of I/O.

A customer may end a service only while they hold it: the service is assigned to them and has not
ended, and no other termination of it is under way. The reason given otherwise is for the
customer, and says no more about a service they do not hold than that they do not hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Holding:
    """What BSS knows of a service: who holds or held it, and when that ended, if it has."""

    customer_id: str
    ended_at: datetime | None


def refusal(
    customer_id: str,
    service_id: str,
    *,
    customer_known: bool,
    holding: Holding | None,
    pending_order_id: str | None,
    offering_id: str | None,
) -> str | None:
    """Why the termination of ``service_id`` asked by ``customer_id`` is rejected; None when it
    may go ahead."""
    if not customer_known:
        return f"unknown customer {customer_id}"
    if holding is None or holding.customer_id != customer_id:
        return f"customer {customer_id} holds no service {service_id}"
    if holding.ended_at is not None:
        return f"service {service_id} was terminated on {holding.ended_at.date().isoformat()}"
    if pending_order_id is not None:
        return f"service {service_id} is already being terminated by order {pending_order_id}"
    if offering_id is None:
        return f"service {service_id} has no product offering in the catalog"
    return None
