"""Loads a network description (sites, nodes, links, and the services placed on them) into the
inventory, once: a real deployment would discover it or receive it from planning."""

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
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchval("SELECT count(*) FROM resources")
        await conn.executemany(
            """
            INSERT INTO resources (id, resource_type, name, site_id, a_end, z_end)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING
            """,
            resources,
        )
        await conn.executemany(
            "INSERT INTO services (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            [(s["id"], s["name"]) for s in network["services"]],
        )
        await conn.executemany(
            """
            INSERT INTO service_resources (service_id, resource_id) VALUES ($1, $2)
            ON CONFLICT DO NOTHING
            """,
            [(s["id"], r) for s in network["services"] for r in s["path"]],
        )
        after = await conn.fetchval("SELECT count(*) FROM resources")
    return int(after - before)
