"""Alembic, the same way for every service: migrations live in the service's package."""

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from common.db import ensure_database

# Replicas starting at once each run ``migrate``: they take this lock (in their service's own
# database) in the migration's transaction, so one upgrades and the others, after it, find the
# database at head and do nothing.
MIGRATION_LOCK = 0x6D696772617465  # "migrate"


def alembic_config(package_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(package_dir / "migrations"))
    config.attributes["database_url"] = database_url
    return config


async def migrate(package_dir: Path, database_url: str) -> None:
    """Create the service's database if needed and upgrade it to the newest revision."""
    await ensure_database(database_url)
    config = alembic_config(package_dir, database_url)
    await asyncio.to_thread(command.upgrade, config, "head")


async def make_revision(package_dir: Path, database_url: str, message: str) -> None:
    """Autogenerate a revision from the difference between the models and the database."""
    await migrate(package_dir, database_url)
    config = alembic_config(package_dir, database_url)
    await asyncio.to_thread(command.revision, config, message=message, autogenerate=True)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    url = context.config.attributes["database_url"]

    def run(connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(run)
        await engine.dispose()

    asyncio.run(run_async())
