"""The product offerings: their monthly recurring price, and the usage tariff plan and SLA tier
of the services ordered with them.

Offering rule: a service ordered with an offering is rated by the offering's tariff plan and
credited by the offering's SLA tier, each when the offering has one; otherwise (and for services
not ordered here, such as the demo's seeded ones) the account's tariff plan and the customer's
SLA tier apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from events.bss import SlaTier


@dataclass(frozen=True)
class Offering:
    """A product offering with a monthly recurring price in minor units, and optionally the
    tariff plan and SLA tier its services get."""

    offering_id: str
    name: str
    recurring_price_minor: int
    currency: str
    tariff_plan: str | None = None
    sla_tier: SlaTier | None = None


DEMO_OFFERINGS = (
    Offering("PO-FIBRE-1G", "Business Fibre 1G", 45_000, "GBP", "UK-BIZ-300", SlaTier.GOLD),
    Offering("PO-EVPN-100M", "Ethernet VPN 100M", 30_000, "GBP", "UK-BIZ-300", SlaTier.PLATINUM),
    Offering("PO-SIP-30", "SIP Trunk 30", 12_000, "GBP", "UK-PAYG", SlaTier.SILVER),
    # No plan and no tier: its services keep the account's plan and the customer's tier.
    Offering("PO-DIA-500M", "Dedicated Internet 500M", 38_000, "GBP"),
)


async def seed_offerings(pool: asyncpg.Pool, offerings: tuple[Offering, ...] = DEMO_OFFERINGS) -> None:
    """Add the offerings the catalog does not have yet, and give those loaded before offerings had
    a tariff plan and an SLA tier the ones they lack."""
    async with pool.acquire() as conn:
        await conn.executemany(
            """
            INSERT INTO product_offerings (id, name, recurring_price_minor, currency, tariff_plan, sla_tier)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (id) DO UPDATE
                SET tariff_plan = coalesce(product_offerings.tariff_plan, excluded.tariff_plan),
                    sla_tier = coalesce(product_offerings.sla_tier, excluded.sla_tier)
            """,
            [
                (
                    o.offering_id,
                    o.name,
                    o.recurring_price_minor,
                    o.currency,
                    o.tariff_plan,
                    None if o.sla_tier is None else o.sla_tier.value,
                )
                for o in offerings
            ],
        )
