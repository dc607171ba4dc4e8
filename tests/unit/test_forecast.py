"""Capacity forecasts: the trend and the time to exhaustion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oss_consumers.performance.forecast import changed_materially, forecast

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def daily(values: list[float]) -> list[tuple[datetime, float]]:
    return [(T0 + timedelta(days=n), v) for n, v in enumerate(values)]


def test_a_rising_trend_reaches_the_threshold_on_time() -> None:
    fit = forecast(daily([50, 52, 54, 56, 58]))
    assert fit is not None
    assert fit.slope_per_day == 2.0 and fit.level == 58.0
    assert fit.exhaustion_at == T0 + timedelta(days=4 + 16)  # 32 points to go at 2 a day


def test_flat_falling_and_already_full_resources() -> None:
    assert forecast(daily([60, 60, 60, 60, 60])).exhaustion_at is None  # type: ignore[union-attr]
    assert forecast(daily([70, 65, 60, 55, 50])).exhaustion_at is None  # type: ignore[union-attr]
    assert forecast(daily([91, 92, 93, 94, 95])).exhaustion_at == T0 + timedelta(days=4)  # type: ignore[union-attr]
    assert forecast(daily([50, 60])) is None  # too few windows
    # Scatter around a flat load is no trend, however the fitted slope comes out.
    assert forecast(daily([40, 46, 38, 47, 41, 45, 39, 48])).exhaustion_at is None  # type: ignore[union-attr]


def test_only_material_changes_are_published() -> None:
    now = T0
    in_ten_days = now + timedelta(days=10)
    assert changed_materially(None, in_ten_days, now)
    assert changed_materially(in_ten_days, None, now)
    assert not changed_materially(None, None, now)
    assert not changed_materially(in_ten_days, in_ten_days + timedelta(hours=12), now)
    assert changed_materially(in_ten_days, in_ten_days + timedelta(days=2), now)
