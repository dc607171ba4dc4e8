"""Session-wide servers for integration and end-to-end tests: the ones named by
KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL, or an embedded broker and a throw-away PostgreSQL
started once for the whole run."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
import pytest_asyncio

from runtime.infra import Endpoints, infrastructure
from runtime.settings import Settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        elif f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def endpoints() -> AsyncIterator[Endpoints]:
    async with infrastructure(Settings(), ephemeral=True) as running:
        yield running


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(consumer_poll_ms=20, rebalance_timeout_ms=2000)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str | Callable[[], str] = "condition"
) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds, saying ``what`` was awaited
    (a callable is asked only then, so it can describe the state at the time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what() if callable(what) else what}"
            )
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def domain_pool(endpoints: Endpoints, settings: Settings, domain: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a domain's schema, as its role, with the migrations applied."""
    from ossbss.app import domain_databases
    from runtime import db

    database = domain_databases(settings)[domain]
    await db.bootstrap(endpoints.database_url, database)
    pool = await db.create_pool(endpoints.database_url, database)
    try:
        yield pool
    finally:
        await pool.close()
