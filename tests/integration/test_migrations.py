"""Replicas that start at once each migrate their database: the migrations are serialised, so every
one of them succeeds and the database is upgraded once."""

import asyncio
import os
import sys
import uuid

import asyncpg
import pytest

SERVICES_WITH_DATABASE = ("booking", "notifier", "shifts", "gateway")


@pytest.mark.parametrize("service", SERVICES_WITH_DATABASE)
async def test_four_replicas_migrating_a_new_database_at_once_all_succeed(servers, service):
    url = servers.database_url(f"migrate_{uuid.uuid4().hex[:8]}")
    env = os.environ | {"DATABASE_URL": url, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING"}

    async def migrate() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", service, "migrate", env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL
        )
        _, errors = await asyncio.wait_for(process.communicate(), 120)
        return process.returncode, errors.decode()[-1500:]

    results = await asyncio.gather(*(migrate() for _ in range(4)))
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        assert len(await connection.fetch("SELECT version_num FROM alembic_version")) == 1
        assert await connection.fetchval("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") > 1
    finally:
        await connection.close()
