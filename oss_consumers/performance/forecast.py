"""Capacity forecasts: a least-squares trend over the window averages of an indicator, and when
it reaches the planning threshold, if it rises clearly. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

PLANNING_THRESHOLD = 90.0  # percent utilization at which a resource counts as exhausted
MIN_WINDOWS = 5
HORIZON = timedelta(days=3650)  # a trend slower than this never exhausts, for planning


@dataclass(frozen=True)
class Forecast:
    level: float  # the trend's value at the newest window
    slope_per_day: float
    exhaustion_at: datetime | None
    windows: int


def forecast(
    points: Sequence[tuple[datetime, float]], threshold: float = PLANNING_THRESHOLD
) -> Forecast | None:
    """The trend over ``(window_start, average)`` points; None with too few points."""
    if len(points) < MIN_WINDOWS:
        return None
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() / 86_400 for t, _ in points]
    ys = [v for _, v in points]
    n = len(points)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0
    newest = points[-1][0]
    level = mean_y + slope * (xs[-1] - mean_x)
    # Noise over a short history fits steep slopes either way: only a rise that stands out from
    # the scatter (slope above twice its standard error) is extrapolated.
    residuals = sum((y - (mean_y + slope * (x - mean_x))) ** 2 for x, y in zip(xs, ys, strict=True))
    slope_error = math.sqrt(residuals / (n - 2) / spread) if spread and n > 2 else math.inf
    exhaustion = None
    if level >= threshold:
        exhaustion = newest
    elif slope > 2 * slope_error:
        days = (threshold - level) / slope
        if days * 86_400 < HORIZON.total_seconds():
            exhaustion = newest + timedelta(days=days)
    return Forecast(round(level, 3), round(slope, 6), exhaustion, n)


def changed_materially(before: datetime | None, after: datetime | None, now: datetime) -> bool:
    """Whether a new time to exhaustion differs enough from the last published one to say so:
    appearing, disappearing, or moving by more than 10 % of the time left."""
    if (before is None) != (after is None):
        return True
    if before is None or after is None:
        return False
    left = max((before - now).total_seconds(), 3600.0)
    return abs((after - before).total_seconds()) > 0.1 * left
