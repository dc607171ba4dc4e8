"""Customer-service assignments as OSS learns them: who holds a service, with which SLA tier, and
since when they no longer do.

The SLA tier published is the one that applies to the service: the tier of the offering it was
ordered with when that offering has one, else the customer's (see `catalog.offerings`).
"""

from __future__ import annotations

from collections.abc import Sequence

from events.bss import CustomerServiceAssigned, SlaTier
from runtime.db import Connection

_CURRENT = """
    SELECT cs.service_id, cs.customer_id, cs.product_name, cs.ended_at,
           coalesce(o.sla_tier, c.sla_tier) AS sla_tier
    FROM customer_services cs
    JOIN customers c ON c.id = cs.customer_id
    LEFT JOIN product_offerings o ON o.id = cs.offering_id
"""


async def assignments(
    conn: Connection, service_ids: Sequence[str] | None = None
) -> list[CustomerServiceAssigned]:
    """The assignment of each of ``service_ids`` that BSS knows (of every service when None),
    ordered by service id; an ended one carries its ``ended_at``."""
    if service_ids is None:
        rows = await conn.fetch(_CURRENT + " ORDER BY cs.service_id")
    else:
        rows = await conn.fetch(
            _CURRENT + " WHERE cs.service_id = ANY($1::text[]) ORDER BY cs.service_id", list(service_ids)
        )
    return [
        CustomerServiceAssigned(
            service_id=r["service_id"],
            customer_id=r["customer_id"],
            sla_tier=SlaTier(r["sla_tier"]),
            product_name=r["product_name"],
            ended_at=r["ended_at"],
        )
        for r in rows
    ]
