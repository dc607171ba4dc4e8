"""Loads a network description (sites, nodes, links, the ports and radio cells of nodes, and the
services placed on them) into the inventory, once: a real deployment would discover it or
receive it from planning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import yaml


def load_network(path: Path) -> dict[str, Any]:
    """Read a network description file."""
    network: dict[str, Any] = yaml.safe_load(path.read_text())
    return network


async def seed_inventory(pool: asyncpg.Pool, network: dict[str, Any]) -> int:
    """Insert the resources and services the inventory does not know yet. Returns how many
    resources were added."""
    resources: list[tuple[str, str, str, str | None, str | None, str | None]] = []
    for site in network["sites"]:
        resources.append((site["id"], "site", site["name"], site["id"], None, None))
        for node in site["nodes"]:
            resources.append((node["id"], "node", node["name"], site["id"], None, None))
    for link in network["links"]:
        resources.append((link["id"], "link", link["name"], None, link["a_end"], link["z_end"]))
    site_of = {node["id"]: site["id"] for site in network["sites"] for node in site["nodes"]}
    for kind in ("port", "cell"):
        for item in network.get(f"{kind}s", []):
            resources.append((item["id"], kind, item["name"], site_of.get(item["node"]), item["node"], None))
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchval("SELECT count(*) FROM resources")
        await conn.executemany(
            """
            INSERT INTO resources (id, resource_type, name, site_id, a_end, z_end)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING
            """,
            resources,
        )
        new_services = {
            r["id"]
            for r in await conn.fetch(
                """
                INSERT INTO services (id, name) SELECT * FROM unnest($1::text[], $2::text[])
                ON CONFLICT (id) DO NOTHING RETURNING id
                """,
                [s["id"] for s in network["services"]],
                [s["name"] for s in network["services"]],
            )
        }
        # Only new services get their planned path: a known service may have been moved since.
        await conn.executemany(
            "INSERT INTO service_resources (service_id, resource_id, position) VALUES ($1, $2, $3)",
            [
                (s["id"], r, n)
                for s in network["services"]
                if s["id"] in new_services
                for n, r in enumerate(s["path"])
            ],
        )
        # Services loaded before paths had an order get it, if they are still on their planned path.
        await conn.executemany(
            "UPDATE service_resources SET position = $3 WHERE service_id = $1 AND resource_id = $2 AND position IS NULL",
            [(s["id"], r, n) for s in network["services"] for n, r in enumerate(s["path"])],
        )
        after = await conn.fetchval("SELECT count(*) FROM resources")
    return int(after - before)
