"""Which errors are a server away (503, never parked) and which are ours (500)."""

import pytest
from redis.exceptions import ClusterDownError

from common.unavailable import is_unavailable


def raised_in(module: str, error: Exception) -> Exception:
    """A new ``error`` as raised by code of ``module``."""
    scope = {"__name__": module, "error": type(error)(*error.args)}
    exec("def fail():\n    raise error\n", scope)
    try:
        scope["fail"]()
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def test_a_cluster_that_is_down_is_a_server_away():
    assert is_unavailable(ClusterDownError("The cluster is down"))


@pytest.mark.parametrize("error", [AttributeError("'NoneType' object has no attribute 'writelines'"), RuntimeError("closed")])
def test_an_error_from_under_the_redis_clients_connection_is_a_lost_connection_and_the_same_error_of_ours_is_not(error):
    assert is_unavailable(raised_in("redis.asyncio.connection", error))
    assert not is_unavailable(raised_in("booking.service", error))
