"""What the HTTP side is given by the composition root: the domains' pools, the bus, the topology
and the network description. Nothing here opens connections of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from runtime.bus import Bus
from runtime.settings import Settings
from runtime.topology import Topology


@dataclass(frozen=True)
class Edge:
    """The running system as the HTTP side sees it."""

    settings: Settings
    bootstrap_servers: str
    topology: Topology
    bus: Bus
    oss_pool: asyncpg.Pool
    """OSS schema, OSS role: the alarm, ticket, work order and inventory APIs read only this."""
    bss_pool: asyncpg.Pool
    """BSS schema, BSS role: the order, bill and usage APIs read only this."""
    network: dict[str, Any]
    """The network description (sites, nodes, links), for the topology view."""
