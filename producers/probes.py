"""Network probe simulator: raises and clears alarms on the resources of a network description,
with the untidiness of real probes: repeated notifications and clears that overtake their raise.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from events import Envelope, EventPayload, new_event
from events.network import ProbeAlarmCleared, ProbeAlarmRaised, reduction_key
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType
from runtime.bus import Publisher

COMPONENT = "probe-simulator"
HANDLES = ()
PUBLISHES = (ProbeAlarmRaised, ProbeAlarmCleared)
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Condition:
    """An alarm condition a probe can report on a kind of resource."""

    alarm_type: AlarmType
    probable_cause: ProbableCause
    severity: PerceivedSeverity
    service_affecting: bool
    specific_problem: str


CONDITIONS: dict[ResourceType, tuple[Condition, ...]] = {
    ResourceType.LINK: (
        Condition(
            AlarmType.COMMUNICATIONS,
            ProbableCause.LOSS_OF_SIGNAL,
            PerceivedSeverity.CRITICAL,
            True,
            "LOS on optical interface",
        ),
        Condition(
            AlarmType.QUALITY_OF_SERVICE,
            ProbableCause.DEGRADED_SIGNAL,
            PerceivedSeverity.MINOR,
            False,
            "BER above 1e-6",
        ),
    ),
    ResourceType.PORT: (
        Condition(
            AlarmType.COMMUNICATIONS,
            ProbableCause.LOSS_OF_SIGNAL,
            PerceivedSeverity.MAJOR,
            True,
            "port down: no light received",
        ),
        Condition(
            AlarmType.COMMUNICATIONS,
            ProbableCause.LOSS_OF_FRAME,
            PerceivedSeverity.MINOR,
            False,
            "CRC errors above 1e-5",
        ),
    ),
    ResourceType.CELL: (
        Condition(
            AlarmType.EQUIPMENT,
            ProbableCause.TRANSMITTER_FAILURE,
            PerceivedSeverity.CRITICAL,
            True,
            "cell out of service: radio unit not transmitting",
        ),
        Condition(
            AlarmType.QUALITY_OF_SERVICE,
            ProbableCause.PERFORMANCE_DEGRADED,
            PerceivedSeverity.MINOR,
            False,
            "uplink interference above -100 dBm",
        ),
    ),
    ResourceType.NODE: (
        Condition(
            AlarmType.EQUIPMENT,
            ProbableCause.EQUIPMENT_MALFUNCTION,
            PerceivedSeverity.MAJOR,
            True,
            "line card failure",
        ),
        Condition(
            AlarmType.ENVIRONMENTAL,
            ProbableCause.HIGH_TEMPERATURE,
            PerceivedSeverity.WARNING,
            False,
            "chassis inlet 45C",
        ),
    ),
}


@dataclass(frozen=True)
class Resource:
    id: str
    type: ResourceType


def resources_of(network: dict[str, Any]) -> list[Resource]:
    """The alarmable resources of a network description (nodes, links, ports and cells)."""
    found = [Resource(n["id"], ResourceType.NODE) for s in network["sites"] for n in s["nodes"]]
    found += [Resource(link["id"], ResourceType.LINK) for link in network["links"]]
    found += [Resource(p["id"], ResourceType.PORT) for p in network.get("ports", [])]
    found += [Resource(c["id"], ResourceType.CELL) for c in network.get("cells", [])]
    return found


def _notification(resource: Resource, condition: Condition, at: datetime, probe: str) -> dict[str, Any]:
    """The fields a raise and a clear of the same condition share."""
    return {
        "notification_id": str(uuid.uuid4()),
        "reduction_key": reduction_key(
            condition.alarm_type.value, condition.probable_cause.value, resource.id
        ),
        "alarmed_object_id": resource.id,
        "alarmed_object_type": resource.type,
        "alarm_type": condition.alarm_type,
        "probable_cause": condition.probable_cause,
        "specific_problem": condition.specific_problem,
        "event_time": at,
        "source_system_id": probe,
    }


def raise_event(resource: Resource, condition: Condition, at: datetime, probe: str) -> Envelope[EventPayload]:
    """A probe's raise notification."""
    payload = ProbeAlarmRaised(
        **_notification(resource, condition, at, probe),
        perceived_severity=condition.severity,
        service_affecting=condition.service_affecting,
    )
    return new_event(payload, source=f"/network/{probe}", subject=resource.id, time=at)


def clear_event(resource: Resource, condition: Condition, at: datetime, probe: str) -> Envelope[EventPayload]:
    """A probe's clear notification."""
    payload = ProbeAlarmCleared(**_notification(resource, condition, at, probe))
    return new_event(payload, source=f"/network/{probe}", subject=resource.id, time=at)


@dataclass
class ProbeSimulator:
    """Raises alarms at ``rate`` per second on random resources and clears each after a while.

    ``repeat_ratio`` of raises are sent two or three times; ``early_clear_ratio`` of alarms have
    their clear published before their raise (event times stay in true order).
    """

    publisher: Publisher
    resources: list[Resource]
    rate: float = 0.5
    hold_seconds: tuple[float, float] = (8.0, 30.0)
    repeat_ratio: float = 0.2
    early_clear_ratio: float = 0.05
    seed: int | None = None
    _active: dict[tuple[str, ProbableCause], datetime] = field(default_factory=dict)

    async def resynchronize(self) -> None:
        """Report every condition of every resource as clear, as an element manager does after a
        restart (X.733 alarm synchronization), so that alarms left open by an earlier run end."""
        now = datetime.now(UTC)
        events = [clear_event(r, c, now, self._probe(r)) for r in self.resources for c in CONDITIONS[r.type]]
        await self.publisher.publish(*events)

    def _probe(self, resource: Resource) -> str:
        return "probe-" + resource.id.split("-")[1].lower()

    async def run(self) -> None:
        rng = random.Random(self.seed)
        async with asyncio.TaskGroup() as tasks:
            while True:
                await asyncio.sleep(rng.expovariate(self.rate))
                resource = rng.choice(self.resources)
                condition = rng.choice(CONDITIONS[resource.type])
                key = (resource.id, condition.probable_cause)
                if key in self._active:
                    continue
                tasks.create_task(self._episode(rng, resource, condition))

    async def _episode(self, rng: random.Random, resource: Resource, condition: Condition) -> None:
        key = (resource.id, condition.probable_cause)
        probe = self._probe(resource)
        raised_at = datetime.now(UTC)
        self._active[key] = raised_at
        try:
            if rng.random() < self.early_clear_ratio:
                cleared_at = raised_at + timedelta(seconds=rng.uniform(0.2, 1.0))
                await self.publisher.publish(clear_event(resource, condition, cleared_at, probe))
                await self.publisher.publish(raise_event(resource, condition, raised_at, probe))
                return
            copies = rng.choice((2, 3)) if rng.random() < self.repeat_ratio else 1
            for _ in range(copies):
                await self.publisher.publish(raise_event(resource, condition, datetime.now(UTC), probe))
                await asyncio.sleep(rng.uniform(0.05, 0.5))
            await asyncio.sleep(rng.uniform(*self.hold_seconds))
            await self.publisher.publish(clear_event(resource, condition, datetime.now(UTC), probe))
        finally:
            self._active.pop(key, None)
