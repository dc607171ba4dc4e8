"""Paths through the network: the shortest (fewest hops) between nodes over usable links, and a
detour around failed resources between the ends of an existing path."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence

Link = tuple[str, str, str]  # (link id, a-end node, z-end node)


def shortest_path(
    a_nodes: Sequence[str], z_nodes: Sequence[str], links: Sequence[tuple[str, str, str]]
) -> list[str] | None:
    """Nodes and links from any of ``a_nodes`` to any of ``z_nodes``; None when unreachable.

    ``links`` are ``(link_id, a_end, z_end)``, usable both ways.
    """
    adjacent: dict[str, list[tuple[str, str]]] = {}
    for link_id, a, z in links:
        adjacent.setdefault(a, []).append((link_id, z))
        adjacent.setdefault(z, []).append((link_id, a))
    goals = set(z_nodes)
    previous: dict[str, tuple[str, str] | None] = {}
    queue: deque[str] = deque()
    for node in sorted(a_nodes):
        previous[node] = None
        queue.append(node)
    while queue:
        node = queue.popleft()
        if node in goals:
            path = [node]
            step = previous[node]
            while step is not None:
                link_id, before = step
                path[:0] = [before, link_id]
                step = previous[before]
            return path
        for link_id, neighbour in sorted(adjacent.get(node, ())):
            if neighbour not in previous:
                previous[neighbour] = (link_id, node)
                queue.append(neighbour)
    return None


def detour(path: Sequence[str], links: Sequence[Link], failed: Collection[str]) -> list[str] | None:
    """A path between the two ends of ``path`` that avoids every failed node and link; None when
    an end itself has failed or no such path exists."""
    first, last = path[0], path[-1]
    if first in failed or last in failed:
        return None
    usable = [
        (link, a, z) for link, a, z in links if link not in failed and a not in failed and z not in failed
    ]
    return shortest_path([first], [last], usable)
