"""TMF688-style event hub: subscriptions (``/hub``) whose matching events are POSTed to a callback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter

from dashboard.context import Edge

router = APIRouter()


def background(edge: Edge) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """Long-running tasks the hub needs (name, coroutine function), run under supervision."""
    return []
