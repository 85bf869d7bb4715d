"""The fault suite's TCP proxy does what it says: passes, delays, drops, cuts."""

import asyncio
import time

import pytest

from tests.faults.proxy import FaultProxy


@pytest.fixture
async def proxied():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = FaultProxy("127.0.0.1", server.sockets[0].getsockname()[1])
    await proxy.start()
    yield proxy
    await proxy.stop()
    server.close()


async def roundtrip(proxy: FaultProxy, payload: bytes = b"ping", timeout: float = 1.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    finally:
        writer.close()


async def test_passes_delays_drops_and_cuts(proxied):
    assert await roundtrip(proxied) == b"ping"
    proxied.latency = 0.2
    started = time.monotonic()
    assert await roundtrip(proxied) == b"ping"
    assert time.monotonic() - started >= 0.4  # late both ways
    proxied.heal()
    proxied.blackhole = True
    with pytest.raises(TimeoutError):
        await roundtrip(proxied, timeout=0.3)
    proxied.heal()
    proxied.refuse = True
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await roundtrip(proxied)
    proxied.heal()
    proxied.close_after = 2
    with pytest.raises(asyncio.IncompleteReadError):
        await roundtrip(proxied, b"four")
    proxied.heal()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxied.port)
    writer.write(b"x")
    assert await reader.readexactly(1) == b"x"
    proxied.reset_all()
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 1)
    writer.close()
    assert proxied.injected == ["closed after bytes", "reset"]


async def test_an_armed_pattern_runs_its_action_before_the_bytes_arrive_or_before_the_reply_returns(proxied):
    ran = []

    async def crash() -> None:
        ran.append(True)

    proxied.arm(b"COMMIT", crash)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await roundtrip(proxied, b"COMMIT")  # never echoed: it never arrived
    assert ran == [True]
    assert await roundtrip(proxied, b"COMMIT") == b"COMMIT"  # once only
    proxied.arm(b"COMMIT", crash, after_reply=True)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await roundtrip(proxied, b"COMMIT")  # it arrived (echoed by the server), the reply was cut
    assert ran == [True, True]
    assert proxied.injected[-2:] == ["crash before it arrived", "crash before the reply reached the client"]
