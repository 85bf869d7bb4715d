"""A TCP fault proxy for the fault suite: it sits between a service and PostgreSQL, Redis, RabbitMQ
or SMTP and passes bytes through, late, not at all, or cuts the connection. (No maintained one
installs from the registries this machine reaches that does all of these in-process; this is
small enough to own.)

    proxy = FaultProxy("127.0.0.1", 5432)
    await proxy.start()            # proxy.port: point the service at it
    proxy.latency = 0.2            # every chunk, both ways, 200 ms late
    proxy.blackhole = True         # bytes are read and dropped: the peer hears nothing
    proxy.refuse = True            # every new connection cut at once: the server is unreachable
    proxy.reset_all()              # every open connection cut (RST)
    proxy.close_after = 100        # each new connection cut after 100 bytes upstream
    proxy.heal()                   # pass again
    proxy.arm(b"COMMIT", crash)    # once: the next COMMIT a client sends never arrives; crash() runs
    proxy.arm(b"COMMIT", crash, after_reply=True)  # it arrives; crash() runs before the reply reaches the client
"""

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.latency = 0.0
        self.blackhole = False
        self.refuse = False
        self.close_after: int | None = None
        self.injected: list[str] = []  # what was done, in order, for the test's report
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._armed: tuple[bytes, Callable[[], Awaitable[None]], bool] | None = None

    def arm(self, pattern: bytes, action: Callable[[], Awaitable[None]], after_reply: bool = False) -> None:
        """Once, when a client next sends bytes containing ``pattern``: run ``action`` instead of
        passing them on (they never arrive), or, ``after_reply``, pass them on and run ``action``
        when the server's answer comes back, before the client gets it."""
        self._armed = (pattern, action, after_reply)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def heal(self) -> None:
        self.latency, self.blackhole, self.refuse, self.close_after = 0.0, False, False, None

    def reset_all(self) -> None:
        """Cut every open connection with a RST, as a crashed peer or a middlebox would."""
        for writer in list(self._open):
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
        self._open.clear()
        self.injected.append("reset")

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._open |= {client_writer, upstream_writer}
        budget = [self.close_after]  # bytes this connection may still carry upstream
        on_reply: list[Callable[[], Awaitable[None]]] = []  # what runs when the server next answers
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer, budget, client_writer, to_server=on_reply),
                self._pipe(upstream_reader, client_writer, [None], upstream_writer, from_server=on_reply),
            )
        finally:
            for writer in (client_writer, upstream_writer):
                self._open.discard(writer)
                writer.transport.abort()

    async def _pipe(self, reader, writer, budget: list[int | None], other, to_server=None, from_server=None) -> None:
        with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if self.blackhole:
                    continue  # read and dropped: the other side hears nothing
                if to_server is not None and self._armed and self._armed[0] in chunk:
                    _, action, after_reply = self._armed
                    self._armed = None
                    if not after_reply:
                        self.injected.append("crash before it arrived")
                        await action()
                        break  # and the connection with it, as a crashed client's would go
                    to_server.append(action)
                if from_server:
                    self.injected.append("crash before the reply reached the client")
                    await from_server.pop()()
                    break
                if self.latency:
                    await asyncio.sleep(self.latency)
                if budget[0] is not None:
                    if len(chunk) >= budget[0]:
                        writer.write(chunk[: budget[0]])
                        self.injected.append("closed after bytes")
                        writer.transport.abort()
                        other.transport.abort()
                        return
                    budget[0] -= len(chunk)
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
        other.transport.abort()
