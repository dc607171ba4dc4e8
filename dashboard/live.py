"""The live operations dashboard: the page, and the server-pushed streams it shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter

from dashboard.context import Edge

router = APIRouter()


def background(edge: Edge) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """Long-running tasks the dashboard needs (name, coroutine function), run under supervision."""
    return []
