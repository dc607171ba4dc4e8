"""Keeps a process's long-running tasks alive: a task that fails is logged and restarted with
backoff, and one task's failure never stops the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def supervise(name: str, run: Callable[[], Awaitable[None]], max_backoff: float = 30.0) -> None:
    """Run ``run()`` until cancelled, restarting it after an unexpected failure."""
    backoff = 0.5
    while True:
        try:
            await run()
            log.info("task finished", task=name)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task failed, restarting", task=name, retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
