"""Which errors mean a server we depend on is unavailable (a restart, a network fault), not that
anything of ours is wrong: answered 503 (try again) at the HTTP edge, and never a reason to park a
message (it is tried again until the server is back)."""

import asyncpg
from redis.exceptions import ClusterDownError, MasterDownError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError

UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,  # a Redis Cluster master away, and no replica has taken its slots over (yet)
    MasterDownError,
    TryAgainError,
    SlotNotCoveredError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    ConnectionError,
    TimeoutError,
)


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE):
        return True
    if isinstance(exc, AttributeError | RuntimeError) and _raised_in_redis_connection(exc):
        # redis-py's cluster client, while a node restarts, can use a connection another task is
        # closing (its writer gone: redis/redis-py#3546, #3835): a lost connection, not a bug of ours.
        return True
    # SQLAlchemy wraps the driver's error, and says when it lost the connection.
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc.orig, UNAVAILABLE))


def _raised_in_redis_connection(exc: BaseException) -> bool:
    """Whether the error came from under redis-py's connection handling (a frame of it on the way)."""
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__", "") == "redis.asyncio.connection":
            return True
        frame = frame.tb_next
    return False
