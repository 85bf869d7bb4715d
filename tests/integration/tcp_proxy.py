"""A TCP proxy for tests, to sit between a client and PostgreSQL: it counts the round trips the
client starts, can slow every message down, and can cut a connection at the moment a given
statement goes by (before it reaches the server, or after, with the answer lost)."""

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

SSL_REQUEST, GSS_REQUEST = 80877103, 80877104


@dataclass
class Cut:
    """Cut the connection that sends a simple query starting with ``statement``: ``before`` the
    server sees it, or ``after`` it ran, with its answer never delivered. Once."""

    statement: str
    when: str  # "before" | "after"
    done: asyncio.Event = field(default_factory=asyncio.Event)


class PostgresProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self.port = 0
        self.round_trips = 0  # Sync and simple Query messages: each waits for the server's answer
        self.statements: list[str] = []  # the simple queries and parsed statements, in order
        self.cut: Cut | None = None
        self.latency_seconds = 0.0  # added before each message the client sends

    async def __aenter__(self) -> "PostgresProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    def reset(self) -> None:
        self.round_trips = 0
        self.statements.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        answers_lost = asyncio.Event()

        async def to_server() -> None:
            try:
                # Untyped start-up messages first (an SSL or GSS request, then the start-up packet).
                while True:
                    header = await client_reader.readexactly(8)
                    length, code = struct.unpack("!ii", header)
                    body = await client_reader.readexactly(length - 8)
                    server_writer.write(header + body)
                    if code not in (SSL_REQUEST, GSS_REQUEST):
                        break
                while True:
                    kind = await client_reader.readexactly(1)
                    length = struct.unpack("!i", await client_reader.readexactly(4))[0]
                    body = await client_reader.readexactly(length - 4)
                    if kind in (b"Q", b"P"):
                        text = body[:-1] if kind == b"Q" else body.split(b"\0", 2)[1]
                        self.statements.append(text.decode(errors="replace"))
                    if kind in (b"S", b"Q"):
                        self.round_trips += 1
                    cut = self.cut
                    if kind == b"Q" and cut and not cut.done.is_set() and body.startswith(cut.statement.encode()):
                        cut.done.set()
                        if cut.when == "before":
                            return
                        answers_lost.set()
                        server_writer.write(kind + struct.pack("!i", length) + body)
                        await server_writer.drain()
                        await asyncio.sleep(0.2)  # it runs; its answer is dropped with the connection
                        return
                    if self.latency_seconds:
                        await asyncio.sleep(self.latency_seconds)
                    server_writer.write(kind + struct.pack("!i", length) + body)
                    await server_writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass

        async def to_client() -> None:
            try:
                while data := await server_reader.read(65536):
                    if answers_lost.is_set():
                        return
                    client_writer.write(data)
                    await client_writer.drain()
            except ConnectionError:
                pass

        tasks = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_writer, server_writer):
            writer.close()
