"""A TCP fault proxy for the fault suite: it sits between a service and PostgreSQL, Redis, RabbitMQ
or SMTP and passes bytes through, late, not at all, or cuts the connection. (No maintained one
installs from the registries this machine reaches that does all of these in-process; this is
small enough to own.)

    proxy = FaultProxy("127.0.0.1", 5432)
    await proxy.start()            # proxy.port: point the service at it
    proxy.latency = 0.2            # every chunk, both ways, 200 ms late
    proxy.blackhole = True         # bytes are read and dropped: the peer hears nothing; a connection
                                   # that lost bytes so is cut when it heals, as TCP gives up on one
    proxy.refuse = True            # every new connection cut at once: the server is unreachable
    proxy.reset_all()              # every open connection cut (RST)
    proxy.close_after = 100        # each new connection cut after 100 bytes upstream
    proxy.heal()                   # pass again
    await proxy.late_for(6)        # 200 ms late for 6 s;  await proxy.blackhole_for(5): nothing for 5 s
    proxy.arm(b"COMMIT", crash)    # once: the next COMMIT a client sends never arrives; crash() runs
    proxy.arm(b"COMMIT", crash, after_reply=True)  # it arrives; crash() runs before the reply reaches the client
    proxy.arm(b"\r\n.\r\n", after_reply=True)   # no action: that connection falls silent instead of
                                                  # answering (the client's read times out)
    proxy.arm(b"\r\n.\r\n", after_reply=True, late=3.0)  # the answer comes, 3 s late
"""

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Action = Callable[[], Awaitable[None]]


@dataclass
class _Armed:
    pattern: bytes
    action: Action | None  # None: the connection falls silent rather than being cut
    after_reply: bool
    late: float | None  # not stopped: passed on this many seconds late


@dataclass(eq=False)
class _Connection:
    budget: int | None  # bytes it may still carry upstream (close_after)
    silent: bool = False  # bytes read and dropped both ways, the connection kept open
    tail: bytes = b""  # the last bytes passed to the server: a pattern split across two reads is still found
    unanswered: bool = False  # the server has not answered what was last passed to it
    lost_bytes: bool = False  # a blackhole dropped some of its bytes: its stream is broken
    writers: tuple = ()
    on_reply: list[_Armed] = field(default_factory=list)  # what happens when the server next answers

    def ending(self, pattern: bytes) -> bytes:
        """The last bytes passed on, one short of the pattern: a whole one there was seen already."""
        return self.tail[max(0, len(self.tail) - len(pattern) + 1) :]


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.latency = 0.0
        self.blackhole = False
        self.refuse = False
        self.close_after: int | None = None
        self.injected: list[str] = []  # what was done, in order, for the test's report
        self.answers_dropped: list[bytes] = []  # per answer a blackhole swallowed: the end of its request
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._connections: set[_Connection] = set()
        self._armed: _Armed | None = None

    def arm(self, pattern: bytes, action: Action | None = None, after_reply: bool = False, late: float | None = None) -> None:
        """Once, when a client next sends bytes containing ``pattern``: stop them (they never
        arrive), or, ``after_reply``, pass them on and stop the server's answer (the request was
        done, the client never hears). Then run ``action`` and cut the connection, or, with no
        action, let that connection fall silent: the client waits for an answer that never comes.
        ``late``: stop nothing, pass them (or the answer) on that many seconds late."""
        self._armed = _Armed(pattern, action, after_reply, late)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def armed(self) -> bool:
        return self._armed is not None

    async def late_for(self, seconds: float, latency: float = 0.2) -> None:
        """Every chunk, both ways, ``latency`` late, for a while."""
        self.latency = latency
        await asyncio.sleep(seconds)
        self.latency = 0.0

    async def blackhole_for(self, seconds: float) -> None:
        """Nothing through, for a while; then the connections that lost bytes are cut."""
        self.blackhole = True
        await asyncio.sleep(seconds)
        self.heal()

    def heal(self) -> None:
        self.latency, self.blackhole, self.refuse, self.close_after = 0.0, False, False, None
        for connection in [c for c in self._connections if c.lost_bytes]:
            for writer in connection.writers:
                writer.transport.abort()

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
        connection = _Connection(budget=self.close_after, writers=(client_writer, upstream_writer))
        self._connections.add(connection)
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer, client_writer, connection, to_server=True),
                self._pipe(upstream_reader, client_writer, upstream_writer, connection, to_server=False),
            )
        finally:
            self._connections.discard(connection)
            for writer in (client_writer, upstream_writer):
                self._open.discard(writer)
                writer.transport.abort()

    async def _fault(self, armed: _Armed, connection: _Connection, what: str) -> str:
        """Inject an armed fault; then the bytes are to be passed on, dropped, or the connection cut."""
        if armed.late is not None:
            self.injected.append(f"late {what}")
            await asyncio.sleep(armed.late)
            return "pass"
        if armed.action is None:
            self.injected.append(f"silence {what}")
            connection.silent = True
            return "drop"
        self.injected.append(f"crash {what}")
        await armed.action()
        return "cut"

    def answers_dropped_to(self, ending: bytes) -> int:
        """How many of the server's answers a blackhole swallowed to a request ending so."""
        return sum(1 for tail in self.answers_dropped if tail.endswith(ending))

    async def _pipe(self, reader, writer, other, connection: _Connection, to_server: bool) -> None:
        with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if self.blackhole or connection.silent:
                    if not to_server and connection.unanswered and not connection.silent:
                        self.answers_dropped.append(connection.tail)
                    connection.unanswered = False
                    connection.lost_bytes = connection.lost_bytes or self.blackhole
                    continue  # read and dropped: the other side hears nothing
                then = "pass"
                if to_server and (armed := self._armed) and armed.pattern in connection.ending(armed.pattern) + chunk:
                    self._armed = None
                    if armed.after_reply:
                        connection.on_reply.append(armed)
                    else:
                        then = await self._fault(armed, connection, "before it arrived")
                if not to_server and connection.on_reply:
                    then = await self._fault(connection.on_reply.pop(), connection, "before the reply reached the client")
                connection.unanswered = to_server and then == "pass"
                if to_server and then == "pass":
                    connection.tail = (connection.tail + chunk)[-16:]
                if then == "cut":
                    break  # and the connection with it, as a crashed peer's would go
                if then == "drop":
                    continue
                if self.latency:
                    await asyncio.sleep(self.latency)
                if to_server and connection.budget is not None:
                    if len(chunk) >= connection.budget:
                        writer.write(chunk[: connection.budget])
                        self.injected.append("closed after bytes")
                        writer.transport.abort()
                        other.transport.abort()
                        return
                    connection.budget -= len(chunk)
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
        other.transport.abort()
