"""PostgreSQL: engines, sessions, and making sure a service's own database exists."""

import logging

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    # No pre-ping: it is one more round trip on every checkout of the hot path. A connection that
    # died (PostgreSQL restarted) fails its one request, and SQLAlchemy then refreshes the pool.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
    )


class _LeanConnection(asyncpg.Connection):
    """No reset query when a connection goes back to the pool: our hot paths keep no session state
    (locks and settings are transaction-scoped), and asyncpg's default costs a round trip per
    release. An open transaction is still rolled back."""

    def get_reset_query(self) -> str:
        return ""


async def _json_as_python(connection: asyncpg.Connection) -> None:
    for json_type in ("json", "jsonb"):
        await connection.set_type_codec(
            json_type, schema="pg_catalog", encoder=lambda value: orjson.dumps(value).decode(), decoder=orjson.loads
        )


async def create_pool(url: str, size: int = 10) -> asyncpg.Pool:
    """Plain asyncpg, for a service whose hot path is measured on it (booking): SQLAlchemy's work
    per statement cost more than the round trip itself. Statements are prepared once per
    connection; JSON columns read and write Python values, as they do through SQLAlchemy."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.create_pool(dsn, min_size=2, max_size=size, connection_class=_LeanConnection, init=_json_as_python)


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connecting to ``postgres``)."""
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{target.database}"')
                log.info("created database %s", target.database)
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                pass  # another replica starting at the same moment created it first
    finally:
        await conn.close()
