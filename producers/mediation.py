"""Network mediation simulator: usage records (voice calls, data sessions, SMS) on the services
of a network description, with the untidiness of real mediation: some records sent twice, and
some for services no customer holds."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events import Envelope, EventPayload, new_event
from events.network import UsageKind, UsageRecorded
from runtime.bus import Publisher

COMPONENT = "mediation-simulator"
HANDLES = ()
PUBLISHES = (UsageRecorded,)
SOURCE = "/network/mediation"


def usage_event(
    service_id: str, kind: UsageKind, quantity: int, at: datetime, usage_id: str | None = None
) -> Envelope[EventPayload]:
    """One usage record as mediation publishes it."""
    return new_event(
        UsageRecorded(
            usage_id=usage_id or f"U-{uuid.uuid4().hex}",
            service_id=service_id,
            usage_kind=kind,
            quantity=quantity,
            start_time=at,
            source_system_id="mediation-1",
        ),
        source=SOURCE,
        subject=service_id,
        time=at,
    )


def random_usage(rng: random.Random, service_id: str, at: datetime) -> Envelope[EventPayload]:
    """A plausible usage record: a call of a few minutes, a data session, or an SMS."""
    kind = rng.choices((UsageKind.VOICE, UsageKind.DATA, UsageKind.SMS), weights=(5, 3, 2))[0]
    if kind is UsageKind.VOICE:
        quantity = int(rng.expovariate(1 / 180))
    elif kind is UsageKind.DATA:
        quantity = int(rng.expovariate(1 / 20_000_000))
    else:
        quantity = 1
    return usage_event(service_id, kind, quantity, at)


@dataclass
class MediationSimulator:
    """Publishes ``rate`` usage records per second; ``resend_ratio`` of them are sent twice and
    ``stray_ratio`` are for a service nobody holds."""

    publisher: Publisher
    service_ids: list[str]
    rate: float = 20.0
    resend_ratio: float = 0.02
    stray_ratio: float = 0.01
    seed: int | None = None

    async def run(self) -> None:
        rng = random.Random(self.seed)
        tick = 0.25
        while True:
            await asyncio.sleep(tick)
            now = datetime.now(UTC)
            batch = []
            for _ in range(_poisson(rng, self.rate * tick)):
                stray = rng.random() < self.stray_ratio
                event = random_usage(rng, "SVC-UNKNOWN" if stray else rng.choice(self.service_ids), now)
                batch.append(event)
                if rng.random() < self.resend_ratio:
                    batch.append(event)  # the same record, same id: rated once
            if batch:
                await self.publisher.publish(*batch)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of a tick.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def services_of(network: dict[str, Any]) -> list[str]:
    """The service ids of a network description."""
    return [s["id"] for s in network["services"]]
