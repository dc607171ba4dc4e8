"""KPI windows and threshold crossings against the real PostgreSQL, and the crossing's alarm in
the fault flow: a utilization ramp raises it, hysteresis keeps it, a quiet window clears it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio

from events import Envelope, EventPayload
from events.network import Indicator
from oss_consumers.fault.agents import handle_batch as fault_batch
from oss_consumers.performance.agents import handle_batch as performance_batch
from producers.kpis import sample_event
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def oss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with domain_pool(endpoints, settings, "oss") as pool:
        yield pool


async def test_a_utilization_ramp_raises_and_then_clears_a_threshold_crossing(oss: asyncpg.Pool) -> None:
    link = f"LINK-{uuid.uuid4().hex[:6].upper()}"

    def minute(n: int, *values: float) -> list[Envelope[EventPayload]]:
        return [
            sample_event(link, Indicator.UTILIZATION, v, T0 + timedelta(minutes=n, seconds=10 * i))
            for i, v in enumerate(values)
        ]

    async def feed(events: list[Envelope[EventPayload]]) -> tuple[list[str], list[str]]:
        async with oss.acquire() as conn, conn.transaction():
            crossings = [e for e in await performance_batch(conn, events) if e.type == "ThresholdCrossed"]
            alarms = list(await fault_batch(conn, crossings)) if crossings else []
        return [f"{c.data.direction.value}:{c.data.observed_value:g}" for c in crossings], [  # type: ignore[attr-defined]
            a.type for a in alarms
        ]

    # Minute 0 averages 60, minute 1 averages 85: the crossing shows once minute 1 is closed.
    assert await feed(minute(0, 50, 70) + minute(1, 80, 90)) == ([], [])
    crossings, alarms = await feed(minute(2, 75))
    assert crossings == ["up:85"] and alarms == ["AlarmRaised"]
    # 75 is below the raise level but above the clear level: the crossing stays.
    assert await feed(minute(3, 72)) == ([], [])
    crossings, alarms = await feed(minute(4, 40))  # closes minute 3 (72): still crossed
    assert crossings == []
    crossings, alarms = await feed(minute(5, 40))  # closes minute 4 (40): below 70, cleared
    assert crossings == ["down:40"] and alarms == ["AlarmCleared"]
    async with oss.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT probable_cause, perceived_severity, state, service_affecting, crossed_threshold "
            "FROM alarms WHERE alarmed_object_id = $1",
            link,
        )
        windows = await conn.fetchval("SELECT count(*) FROM kpi_windows WHERE resource_id = $1", link)
    assert tuple(row)[:4] == ("thresholdCrossed", "minor", "cleared", False)
    assert row["crossed_threshold"] == {
        "indicator_name": "utilization",
        "observed_value": 85.0,
        "threshold": 80.0,
        "direction": "up",
        "granularity": "PT60S",
        "threshold_crossing_description": "utilization 85 above 80 over 60 s",
    }
    assert windows == 6


async def test_samples_redelivered_in_another_batch_do_not_cross_twice(oss: asyncpg.Pool) -> None:
    link = f"LINK-{uuid.uuid4().hex[:6].upper()}"
    hot = [sample_event(link, Indicator.UTILIZATION, 95, T0 + timedelta(minutes=n)) for n in range(3)]
    async with oss.acquire() as conn, conn.transaction():
        first = [e for e in await performance_batch(conn, hot) if e.type == "ThresholdCrossed"]
        again = [e for e in await performance_batch(conn, hot[1:]) if e.type == "ThresholdCrossed"]
    assert [c.data.direction.value for c in first] == ["up"]  # type: ignore[attr-defined]
    assert again == []


async def test_a_growing_load_gets_a_forecast_of_its_exhaustion(oss: asyncpg.Pool) -> None:
    link = f"LINK-{uuid.uuid4().hex[:6].upper()}"
    published = []
    async with oss.acquire() as conn, conn.transaction():
        for n in range(8):  # one window a minute, 1 point higher each time
            out = await performance_batch(
                conn, [sample_event(link, Indicator.UTILIZATION, 40 + n, T0 + timedelta(minutes=n))]
            )
            published += [e.data for e in out if e.type == "CapacityForecastChanged"]
        stored = await conn.fetchrow("SELECT * FROM capacity_forecasts WHERE resource_id = $1", link)
    first = published[0]
    assert first.resource_id == link and first.windows == 5  # type: ignore[attr-defined]
    assert first.slope_per_day == 1440.0  # type: ignore[attr-defined]  # a point a minute
    assert stored["exhaustion_at"] is not None and stored["windows"] == 7
    # A trend this steady moves its exhaustion time little from one window to the next.
    assert len(published) < 7
    assert len(published) == 1  # the same straight line each time: the first forecast stands
