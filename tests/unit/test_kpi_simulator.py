"""The performance probe simulator's shapes: what it measures, and how loss and latency follow load."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from events.x733 import ResourceType
from oss_consumers.inventory.seed import load_network
from producers.kpis import congestion, measured_of, utilization
from producers.probes import resources_of
from runtime.settings import PROJECT_ROOT


def test_links_and_cells_are_measured_and_ports_and_cells_can_alarm() -> None:
    network = load_network(PROJECT_ROOT / "demo" / "network.yaml")
    kinds = {kind for _, kind in measured_of(network)}
    assert kinds == {ResourceType.LINK, ResourceType.CELL}
    alarmable = {r.type for r in resources_of(network)}
    assert {ResourceType.NODE, ResourceType.LINK, ResourceType.PORT, ResourceType.CELL} <= alarmable


def test_loss_and_latency_stay_low_until_a_link_fills_up() -> None:
    rng = random.Random(7)
    quiet = [congestion(40.0, rng) for _ in range(200)]
    full = [congestion(98.0, rng) for _ in range(200)]
    assert max(loss for loss, _ in quiet) < 0.2 and max(lat for _, lat in quiet) < 12
    assert min(loss for loss, _ in full) > 2.0 and min(lat for _, lat in full) > 50
    assert all(loss >= 0 and lat > 0 for loss, lat in quiet + full)


def test_utilization_peaks_in_the_evening_and_stays_in_range() -> None:
    evening = utilization(50, datetime(2026, 11, 27, 20, tzinfo=UTC), 0, 0.02, 0)
    morning = utilization(50, datetime(2026, 11, 27, 8, tzinfo=UTC), 0, 0.02, 0)
    assert evening > morning
    assert utilization(99, datetime(2026, 11, 27, 20, tzinfo=UTC), 30, 0.5, 50) == 100.0
