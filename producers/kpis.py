"""Performance probe simulator: link utilization with a daily shape, a growth trend and noise.
One link runs hot on a busy cycle compressed to ten minutes, so that a demo sees its utilization
cross the threshold and come back within minutes."""

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
    resource_id: str, indicator: Indicator, value: float, at: datetime
) -> Envelope[EventPayload]:
    """One KPI sample of a link as a probe publishes it."""
    return new_event(
        KpiSampled(
            resource_id=resource_id,
            resource_type=ResourceType.LINK,
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
    """Samples every link's utilization every ``interval`` seconds."""

    publisher: Publisher
    link_ids: list[str]
    interval: float = 5.0
    seed: int | None = None
    sent: int = 0
    _bases: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        rng = random.Random(self.seed)
        started = datetime.now(UTC)
        hot = sorted(self.link_ids)[0] if self.link_ids else None
        for link in self.link_ids:
            self._bases[link] = rng.uniform(25, 55)
        while True:
            now = datetime.now(UTC)
            elapsed = (now - started).total_seconds()
            values = {
                link: utilization(base, now, elapsed / 86_400, 0.02, rng.gauss(0, 4))
                for link, base in self._bases.items()
            }
            if hot is not None:
                values[hot] = min(100.0, 78 + 15 * math.sin(2 * math.pi * elapsed / 600) + rng.gauss(0, 2))
            await self.publisher.publish(
                *(sample_event(link, Indicator.UTILIZATION, value, now) for link, value in values.items())
            )
            self.sent += len(values)
            await asyncio.sleep(self.interval)


def links_of(network: dict[str, Any]) -> list[str]:
    """The link ids of a network description."""
    return [link["id"] for link in network["links"]]
