"""Performance probe simulator: per link, utilization, packet loss and latency; per radio cell,
utilization; each with a daily shape, a growth trend and noise. One link runs hot on a busy cycle
compressed to ten minutes, so that a demo sees its utilization cross the threshold and come back
within minutes."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from events import Envelope, EventPayload, new_event
from events.network import Indicator, KpiSampled
from events.x733 import ResourceType
from runtime.bus import Publisher

COMPONENT = "kpi-simulator"
HANDLES = ()
PUBLISHES = (KpiSampled,)
SOURCE = "/network/kpi-probe"


def sample_event(
    resource_id: str,
    indicator: Indicator,
    value: float,
    at: datetime,
    resource_type: ResourceType = ResourceType.LINK,
) -> Envelope[EventPayload]:
    """One KPI sample of a resource as a probe publishes it."""
    return new_event(
        KpiSampled(
            resource_id=resource_id,
            resource_type=resource_type,
            indicator=indicator,
            value=round(value, 3),
            measured_at=at,
            source_system_id="kpi-probe-1",
        ),
        source=SOURCE,
        subject=resource_id,
        time=at,
    )


def utilization(base: float, at: datetime, days_running: float, growth_per_day: float, noise: float) -> float:
    """Percent utilization: ``base`` shaped by the hour of day (busiest at 20:00 UTC), grown by
    ``growth_per_day``, plus ``noise``; within 0..100."""
    hour = at.hour + at.minute / 60
    daily = 1 + 0.25 * math.cos((hour - 20) / 24 * 2 * math.pi)
    return max(0.0, min(100.0, base * daily * (1 + growth_per_day * days_running) + noise))


@dataclass
class KpiSimulator:
    """Samples every measured resource every ``interval`` seconds: links' utilization, packet
    loss and latency, cells' utilization."""

    publisher: Publisher
    resources: list[tuple[str, ResourceType]]
    interval: float = 5.0
    seed: int | None = None
    _bases: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        rng = random.Random(self.seed)
        started = datetime.now(UTC)
        links = sorted(r for r, kind in self.resources if kind is ResourceType.LINK)
        hot = links[0] if links else None
        kinds = dict(self.resources)
        for resource, _ in self.resources:
            self._bases[resource] = rng.uniform(25, 55)
        while True:
            now = datetime.now(UTC)
            elapsed = (now - started).total_seconds()
            samples: list[Envelope[EventPayload]] = []
            for resource, base in self._bases.items():
                load = utilization(base, now, elapsed / 86_400, 0.02, rng.gauss(0, 4))
                if resource == hot:
                    load = min(100.0, 78 + 15 * math.sin(2 * math.pi * elapsed / 600) + rng.gauss(0, 2))
                kind = kinds[resource]
                samples.append(sample_event(resource, Indicator.UTILIZATION, load, now, kind))
                if kind is ResourceType.LINK:
                    loss, latency = congestion(load, rng)
                    samples.append(sample_event(resource, Indicator.PACKET_LOSS, loss, now, kind))
                    samples.append(sample_event(resource, Indicator.LATENCY, latency, now, kind))
            await self.publisher.publish(*samples)
            await asyncio.sleep(self.interval)


def congestion(load: float, rng: random.Random) -> tuple[float, float]:
    """Packet loss (%) and latency (ms) of a link at ``load`` percent: both low until the link
    fills up, then climbing, as queues do."""
    queueing = max(0.0, load - 70.0) / 30.0  # 0 below 70 %, 1 at full
    loss = max(0.0, 0.05 + 3.0 * queueing**2 + rng.gauss(0, 0.02))
    latency = max(0.5, 8.0 + 60.0 * queueing**2 + rng.gauss(0, 0.8))
    return loss, latency


def measured_of(network: dict[str, Any]) -> list[tuple[str, ResourceType]]:
    """The links and radio cells of a network description."""
    return [(link["id"], ResourceType.LINK) for link in network["links"]] + [
        (cell["id"], ResourceType.CELL) for cell in network.get("cells", [])
    ]
