"""Each domain has its own schema and role; neither role can read the other's tables."""

from __future__ import annotations

import asyncpg
import pytest

from ossbss.app import domain_databases
from runtime import db
from runtime.infra import Endpoints
from runtime.settings import Settings


async def test_roles_cannot_read_each_others_schema(endpoints: Endpoints, settings: Settings) -> None:
    databases = domain_databases(settings)
    for database in databases.values():
        await db.bootstrap(endpoints.database_url, database)
        await db.bootstrap(endpoints.database_url, database)  # idempotent
    oss = await asyncpg.connect(db.role_dsn(endpoints.database_url, "ossbss_oss", settings.oss_db_password))
    bss = await asyncpg.connect(db.role_dsn(endpoints.database_url, "ossbss_bss", settings.bss_db_password))
    try:
        assert await oss.fetchval("SELECT count(*) FROM oss.alarms") >= 0
        assert await bss.fetchval("SELECT count(*) FROM bss.customers") >= 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await oss.fetch("SELECT * FROM bss.customers")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await oss.fetch("SELECT * FROM bss.notifications")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bss.fetch("SELECT * FROM oss.alarms")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bss.execute("CREATE TABLE oss.sneaky (id int)")
        # The unqualified names resolve to the role's own schema.
        assert await oss.fetchval("SELECT current_schema()") == "oss"
        assert await bss.fetchval("SELECT current_schema()") == "bss"
    finally:
        await oss.close()
        await bss.close()


async def test_migrations_are_recorded_once(endpoints: Endpoints, settings: Settings) -> None:
    database = domain_databases(settings)["oss"]
    await db.bootstrap(endpoints.database_url, database)
    conn = await asyncpg.connect(db.role_dsn(endpoints.database_url, database.role, database.password))
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM oss.schema_migrations")]
    finally:
        await conn.close()
    assert versions == sorted(set(versions))
    assert "0001_inventory_fault.sql" in versions
