"""Performance's consumer: KPI samples into tumbling windows; when a window closes (a sample of a
later window arrives), its average is checked against the indicator's thresholds, with
hysteresis: above the raise level raises a threshold crossing, and only a window back below the
clear level clears it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from events import Envelope, EventPayload, new_event
from events.network import Indicator, KpiSampled
from events.oss import CapacityForecastChanged, CrossingDirection, ThresholdCrossed
from events.x733 import ResourceType
from oss_consumers.performance.forecast import PLANNING_THRESHOLD, changed_materially, forecast
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "oss-performance"
SOURCE = "/oss/performance"
HANDLES = (KpiSampled,)
PUBLISHES = (ThresholdCrossed, CapacityForecastChanged)
GRANULARITY_SECONDS = 60


@dataclass(frozen=True)
class Threshold:
    """Raise above ``raise_at``; clear only below ``clear_at`` (hysteresis)."""

    raise_at: float
    clear_at: float


THRESHOLDS = {
    Indicator.UTILIZATION: Threshold(80.0, 70.0),
    Indicator.PACKET_LOSS: Threshold(2.0, 1.0),
    Indicator.LATENCY: Threshold(50.0, 40.0),
}


def window_start(at: datetime, granularity: int = GRANULARITY_SECONDS) -> datetime:
    """Start of the tumbling window holding ``at``."""
    seconds = int(at.timestamp()) // granularity * granularity
    return datetime.fromtimestamp(seconds, UTC)


def crossing(crossed: bool, average: float, threshold: Threshold) -> CrossingDirection | None:
    """What a closed window's average does to an indicator that is (or is not) crossed now."""
    if not crossed and average > threshold.raise_at:
        return CrossingDirection.UP
    if crossed and average < threshold.clear_at:
        return CrossingDirection.DOWN
    return None


async def handle_batch(
    conn: Connection, events: Sequence[Envelope[EventPayload]]
) -> Sequence[Envelope[EventPayload]]:
    """Add a batch of samples to their windows; return the threshold crossings of the windows the
    batch closed."""
    rows: dict[tuple[str, str, datetime], list[float | str]] = {}
    latest: dict[tuple[str, str], datetime] = {}
    for event in events:
        sample = event.data
        if not isinstance(sample, KpiSampled):
            raise Rejected(f"{COMPONENT} does not handle {event.type}")
        key = (sample.resource_id, sample.indicator.value, window_start(sample.measured_at))
        row = rows.setdefault(key, [0.0, 0.0, 0.0, sample.resource_type.value])
        row[0] = float(row[0]) + 1
        row[1] = float(row[1]) + sample.value
        row[2] = max(float(row[2]), sample.value)
        one = (sample.resource_id, sample.indicator.value)
        latest[one] = max(latest.get(one, key[2]), key[2])
    keys = list(rows)
    await conn.execute(
        """
        INSERT INTO kpi_windows (resource_id, indicator, window_start, resource_type, samples, total, maximum)
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::int[],
                             $6::float8[], $7::float8[])
        ON CONFLICT (resource_id, indicator, window_start) DO UPDATE SET
            samples = kpi_windows.samples + excluded.samples,
            total = kpi_windows.total + excluded.total,
            maximum = greatest(kpi_windows.maximum, excluded.maximum)
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [str(rows[k][3]) for k in keys],
        [int(float(rows[k][0])) for k in keys],
        [float(rows[k][1]) for k in keys],
        [float(rows[k][2]) for k in keys],
    )
    series = list(latest)
    # Windows of these series older than the newest window seen are closed: evaluate them once,
    # oldest first.
    closed = await conn.fetch(
        """
        UPDATE kpi_windows w SET evaluated = true
        FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS s(resource_id, indicator, newest)
        WHERE w.resource_id = s.resource_id AND w.indicator = s.indicator
          AND w.window_start < s.newest AND NOT w.evaluated
        RETURNING w.resource_id, w.indicator, w.window_start, w.resource_type, w.total / w.samples AS average
        """,
        [s[0] for s in series],
        [s[1] for s in series],
        [latest[s] for s in series],
    )
    if not closed:
        return []
    out = await _forecasts(
        conn, sorted({r["resource_id"] for r in closed if r["indicator"] == Indicator.UTILIZATION.value})
    )
    states = {
        (r["resource_id"], r["indicator"]): r["crossed"]
        for r in await conn.fetch(
            """
            SELECT t.resource_id, t.indicator, t.crossed FROM threshold_states t
            JOIN unnest($1::text[], $2::text[]) AS s(resource_id, indicator)
              ON (t.resource_id, t.indicator) = (s.resource_id, s.indicator)
            FOR UPDATE OF t
            """,
            [r["resource_id"] for r in closed],
            [r["indicator"] for r in closed],
        )
    }
    changed: dict[tuple[str, str], tuple[bool, datetime]] = {}
    for r in sorted(closed, key=lambda r: r["window_start"]):
        series_key = (r["resource_id"], r["indicator"])
        threshold = THRESHOLDS[Indicator(r["indicator"])]
        direction = crossing(states.get(series_key, False), r["average"], threshold)
        if direction is None:
            continue
        states[series_key] = direction is CrossingDirection.UP
        changed[series_key] = (states[series_key], r["window_start"])
        out.append(
            new_event(
                ThresholdCrossed(
                    resource_id=r["resource_id"],
                    resource_type=ResourceType(r["resource_type"]),
                    indicator=r["indicator"],
                    observed_value=round(r["average"], 3),
                    threshold=threshold.raise_at if direction is CrossingDirection.UP else threshold.clear_at,
                    direction=direction,
                    granularity_seconds=GRANULARITY_SECONDS,
                    window_start=r["window_start"],
                ),
                source=SOURCE,
                subject=r["resource_id"],
            )
        )
    if changed:
        await conn.execute(
            """
            INSERT INTO threshold_states (resource_id, indicator, crossed, since)
            SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::timestamptz[])
            ON CONFLICT (resource_id, indicator) DO UPDATE SET crossed = excluded.crossed, since = excluded.since
            """,
            [k[0] for k in changed],
            [k[1] for k in changed],
            [v[0] for v in changed.values()],
            [v[1] for v in changed.values()],
        )
    return out


async def _forecasts(
    conn: Connection, resource_ids: list[str], history: int = 60
) -> list[Envelope[EventPayload]]:
    """Refit the utilization trend of resources with newly closed windows; publish the forecasts
    that moved materially since the last one published."""
    if not resource_ids:
        return []
    rows = await conn.fetch(
        """
        SELECT resource_id, window_start, average FROM (
            SELECT resource_id, window_start, total / samples AS average,
                   row_number() OVER (PARTITION BY resource_id ORDER BY window_start DESC) AS age
            FROM kpi_windows
            WHERE resource_id = ANY($1::text[]) AND indicator = $2 AND evaluated
        ) recent WHERE age <= $3 ORDER BY resource_id, window_start
        """,
        resource_ids,
        Indicator.UTILIZATION.value,
        history,
    )
    series: dict[str, list[tuple[datetime, float]]] = {}
    for r in rows:
        series.setdefault(r["resource_id"], []).append((r["window_start"], r["average"]))
    previous = {
        r["resource_id"]: r["published_exhaustion_at"]
        for r in await conn.fetch(
            "SELECT resource_id, published_exhaustion_at FROM capacity_forecasts WHERE resource_id = ANY($1::text[]) "
            "AND indicator = $2",
            resource_ids,
            Indicator.UTILIZATION.value,
        )
    }
    now = datetime.now(UTC)
    out: list[Envelope[EventPayload]] = []
    for resource_id, points in series.items():
        fit = forecast(points)
        if fit is None:
            continue
        first = resource_id not in previous
        await conn.execute(
            """
            INSERT INTO capacity_forecasts (resource_id, indicator, computed_at, windows, level, slope_per_day, exhaustion_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (resource_id, indicator) DO UPDATE SET computed_at = excluded.computed_at,
                windows = excluded.windows, level = excluded.level, slope_per_day = excluded.slope_per_day,
                exhaustion_at = excluded.exhaustion_at
            """,
            resource_id,
            Indicator.UTILIZATION.value,
            now,
            fit.windows,
            fit.level,
            fit.slope_per_day,
            fit.exhaustion_at,
        )
        if first or changed_materially(previous[resource_id], fit.exhaustion_at, now):
            await conn.execute(
                "UPDATE capacity_forecasts SET published_exhaustion_at = exhaustion_at "
                "WHERE resource_id = $1 AND indicator = $2",
                resource_id,
                Indicator.UTILIZATION.value,
            )
            out.append(
                new_event(
                    CapacityForecastChanged(
                        resource_id=resource_id,
                        indicator=Indicator.UTILIZATION.value,
                        level=fit.level,
                        slope_per_day=fit.slope_per_day,
                        planning_threshold=PLANNING_THRESHOLD,
                        exhaustion_at=fit.exhaustion_at,
                        windows=fit.windows,
                    ),
                    source=SOURCE,
                    subject=resource_id,
                )
            )
    return out
