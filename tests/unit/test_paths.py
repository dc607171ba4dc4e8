"""Paths through the network, and detours around failed resources."""

from __future__ import annotations

from oss_consumers.inventory.paths import detour, shortest_path

# A triangle N1-N2-N3 with a spur N3-N4.
LINKS = [("A", "N1", "N2"), ("B", "N2", "N3"), ("C", "N1", "N3"), ("D", "N3", "N4")]


def test_shortest_path_lists_nodes_and_links_in_order() -> None:
    assert shortest_path(["N1"], ["N4"], LINKS) == ["N1", "C", "N3", "D", "N4"]
    assert shortest_path(["N2"], ["N2"], LINKS) == ["N2"]
    assert shortest_path(["N1"], ["N9"], LINKS) is None


def test_detour_avoids_failed_links_and_nodes() -> None:
    path = ["N1", "C", "N3"]
    assert detour(path, LINKS, {"C"}) == ["N1", "A", "N2", "B", "N3"]
    assert detour(path, LINKS, {"C", "N2"}) is None  # the only way round goes through N2
    assert detour(path, LINKS, {"N1"}) is None  # an end has failed: nothing to route around
    assert detour(["N1", "C", "N3", "D", "N4"], LINKS, {"D"}) is None  # a spur has no way round
