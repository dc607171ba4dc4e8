"""The product offerings the demo customers hold, with their monthly recurring price."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Offering:
    """A product offering with a monthly recurring price in minor units."""

    offering_id: str
    name: str
    recurring_price_minor: int
    currency: str


DEMO_OFFERINGS = (
    Offering("PO-FIBRE-1G", "Business Fibre 1G", 45_000, "GBP"),
    Offering("PO-EVPN-100M", "Ethernet VPN 100M", 30_000, "GBP"),
    Offering("PO-SIP-30", "SIP Trunk 30", 12_000, "GBP"),
    Offering("PO-DIA-500M", "Dedicated Internet 500M", 38_000, "GBP"),
)


async def seed_offerings(pool: asyncpg.Pool, offerings: tuple[Offering, ...] = DEMO_OFFERINGS) -> None:
    """Add the offerings the catalog does not have yet."""
    async with pool.acquire() as conn:
        await conn.executemany(
            """
            INSERT INTO product_offerings (id, name, recurring_price_minor, currency)
            VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
            """,
            [(o.offering_id, o.name, o.recurring_price_minor, o.currency) for o in offerings],
        )
