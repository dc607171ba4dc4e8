"""PostgreSQL: one schema and one role per domain, migrations applied at start, one pool per
domain per process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, TypeAlias
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

log = structlog.get_logger(__name__)

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""A connection, whether opened directly or borrowed from a pool."""

# Tables every domain schema has, owned by the runtime: idempotent-consumer records and the
# transactional outbox.
_RUNTIME_MIGRATION = """
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS outbox (
    id         bigserial   PRIMARY KEY,
    topic      text        NOT NULL,
    key        bytea       NOT NULL,
    value      bytea       NOT NULL,
    headers    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class DomainDatabase:
    """Where a domain keeps its state: its schema, and the role that alone may use it."""

    domain: str
    role: str
    password: str
    migrations: Traversable

    @property
    def schema(self) -> str:
        return self.domain


def role_dsn(admin_dsn: str, role: str, password: str) -> str:
    """The admin DSN with the domain role's credentials in place of the admin's."""
    parts = urlsplit(admin_dsn)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(role)}:{quote(password)}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def migrations_of(package: str) -> Traversable:
    """The ``migrations/`` folder of a domain package."""
    return resources.files(package) / "migrations"


async def bootstrap(admin_dsn: str, db: DomainDatabase) -> None:
    """Create the domain's role and schema when missing, then apply its migrations as that role.

    Safe to run concurrently from several processes: an advisory lock serializes it.
    """
    admin = await asyncpg.connect(admin_dsn)
    try:
        async with admin.transaction():
            await admin.execute("SELECT pg_advisory_xact_lock(hashtext('ossbss-bootstrap'))")
            exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", db.role)
            pw = db.password.replace("'", "''")
            if not exists:
                await admin.execute(f"CREATE ROLE \"{db.role}\" LOGIN PASSWORD '{pw}'")
            else:
                await admin.execute(f"ALTER ROLE \"{db.role}\" LOGIN PASSWORD '{pw}'")
            dbname = await admin.fetchval("SELECT current_database()")
            await admin.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO "{db.role}"')
            await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}" AUTHORIZATION "{db.role}"')
            await admin.execute(f'ALTER SCHEMA "{db.schema}" OWNER TO "{db.role}"')
            # Only the owner may use the schema: nobody else sees the domain's tables.
            await admin.execute(f'REVOKE ALL ON SCHEMA "{db.schema}" FROM PUBLIC')
            await admin.execute(f'ALTER ROLE "{db.role}" SET search_path = "{db.schema}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(role_dsn(admin_dsn, db.role, db.password))
    try:
        await _migrate(conn, db)
    finally:
        await conn.close()


async def _migrate(conn: Connection, db: DomainDatabase) -> None:
    async with conn.transaction():
        await conn.execute(f'SET LOCAL search_path = "{db.schema}"')
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate-{db.schema}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(_RUNTIME_MIGRATION)
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        files = sorted((f for f in db.migrations.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
        for f in files:
            if f.name in applied:
                continue
            await conn.execute(f.read_text())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", f.name)
            log.info("migration applied", schema=db.schema, version=f.name)


async def _init_connection(conn: Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(admin_dsn: str, db: DomainDatabase, **kwargs: Any) -> asyncpg.Pool:
    """A pool connected as the domain role, ``search_path`` set to the domain schema."""
    pool = await asyncpg.create_pool(
        role_dsn(admin_dsn, db.role, db.password),
        min_size=kwargs.pop("min_size", 1),
        max_size=kwargs.pop("max_size", 8),
        server_settings={
            "search_path": db.schema,
            "application_name": f"ossbss-{db.domain}",
            # Batch statements look rows up by arrays of keys (`= ANY($1)`). A generic plan kept
            # while a table was still small scans the whole table forever after; planning each
            # execution costs far less than that.
            "plan_cache_mode": "force_custom_plan",
        },
        init=_init_connection,
        **kwargs,
    )
    assert pool is not None
    return pool
