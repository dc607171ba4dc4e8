"""Where the broker and the database come from: the ones named by ``KAFKA_BOOTSTRAP_SERVERS``
and ``DATABASE_URL``, or embedded ones started (and stopped) here."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from runtime.embedded import EmbeddedBroker, EmbeddedPostgres, start_broker, start_postgres
from runtime.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Endpoints:
    """Connection details of the running broker and database."""

    bootstrap_servers: str
    database_url: str
    embedded_broker: bool
    embedded_postgres: bool


@contextlib.asynccontextmanager
async def infrastructure(settings: Settings, *, ephemeral: bool = False) -> AsyncIterator[Endpoints]:
    """Yield the endpoints to use, starting embedded servers for what the settings leave unset.

    ``ephemeral`` keeps the embedded database in a temporary directory (tests) instead of
    ``state_dir``.
    """
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    with contextlib.ExitStack() as tmp:
        try:
            if settings.kafka_bootstrap_servers is None:
                log_dir = (
                    settings.state_dir
                    if not ephemeral
                    else Path(tmp.enter_context(tempfile.TemporaryDirectory()))
                )
                log_dir.mkdir(parents=True, exist_ok=True)
                broker = await start_broker(settings.broker_port, log_path=log_dir / "broker.log")
                log.info("embedded broker started", bootstrap_servers=broker.bootstrap_servers)
            if settings.database_url is None:
                if ephemeral:
                    data_dir = (
                        Path(tmp.enter_context(tempfile.TemporaryDirectory(prefix="ossbss-pg-"))) / "pgdata"
                    )
                else:
                    data_dir = settings.state_dir.resolve() / "pgdata"
                postgres = await start_postgres(data_dir, settings.postgres_port, ephemeral=ephemeral)
                log.info("embedded postgres started", data_dir=str(data_dir))
            yield Endpoints(
                bootstrap_servers=broker.bootstrap_servers
                if broker
                else str(settings.kafka_bootstrap_servers),
                database_url=postgres.dsn if postgres else str(settings.database_url),
                embedded_broker=broker is not None,
                embedded_postgres=postgres is not None,
            )
        finally:
            if postgres is not None:
                await postgres.stop()
            if broker is not None:
                await broker.stop()


ENDPOINTS_FILE = "endpoints.json"


def write_endpoints(settings: Settings, endpoints: Endpoints) -> Path:
    """Record where a running system's servers are, for ``ossbss tail`` and friends."""
    import json

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / ENDPOINTS_FILE
    path.write_text(
        json.dumps({"bootstrap_servers": endpoints.bootstrap_servers, "database_url": endpoints.database_url})
    )
    return path


class NoRunningSystem(RuntimeError):
    """Neither the environment nor a running ``ossbss up`` says where the servers are."""


def existing_endpoints(settings: Settings, *, need_database: bool = True) -> Endpoints:
    """Endpoints of servers that are already running: from the environment, else from the
    file a running ``ossbss up`` wrote."""
    import json

    bootstrap, database = settings.kafka_bootstrap_servers, settings.database_url
    path = settings.state_dir / ENDPOINTS_FILE
    if (bootstrap is None or database is None) and path.exists():
        recorded = json.loads(path.read_text())
        bootstrap = bootstrap or recorded["bootstrap_servers"]
        database = database or recorded["database_url"]
    if bootstrap is None or (need_database and database is None):
        raise NoRunningSystem(
            "no running system found: start `ossbss up` in this directory, "
            "or set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL"
        )
    return Endpoints(bootstrap, database or "", embedded_broker=False, embedded_postgres=False)
