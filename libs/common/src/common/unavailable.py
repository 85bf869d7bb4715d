"""Which errors mean a server we depend on is unavailable (a restart, a network fault), not that
anything of ours is wrong: answered 503 (try again) at the HTTP edge, and never a reason to park a
message (it is tried again until the server is back)."""

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError

UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    ConnectionError,
    TimeoutError,
)


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE):
        return True
    # SQLAlchemy wraps the driver's error, and says when it lost the connection.
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc.orig, UNAVAILABLE))
