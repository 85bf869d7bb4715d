"""SMTP through a small pool of kept-open connections: a connection per mail (connect, EHLO,
QUIT) cost more than the mail itself."""

import asyncio
import contextlib
from email.message import Message

import aiosmtplib
from aiosmtplib.typing import Default
from opentelemetry import trace

tracer = trace.get_tracer(__name__)  # does nothing unless tracing is on (common.tracing)


class _Smtp(aiosmtplib.SMTP):
    """A client that waits longer for the answer to a mail's data than to a command. Once the data
    went out, the server may be writing or scanning the mail: given up on too soon, a mail it then
    accepts is sent again, and against a server that is always that slow, once per retry. RFC 5321
    (4.5.3.2) gives commands 5 minutes and the end of the data 10; we wait less for both, and the
    data several times longer than a command."""

    def __init__(self, *, data_timeout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_timeout = data_timeout

    async def data(self, message: str | bytes, /, *, timeout=Default.token) -> aiosmtplib.SMTPResponse:
        return await super().data(message, timeout=self.data_timeout)


class SmtpMailer:
    def __init__(self, host: str, port: int, timeout: float, data_timeout: float, connections: int = 8) -> None:
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(connections):
            self._idle.put_nowait(_Smtp(hostname=host, port=port, timeout=timeout, data_timeout=data_timeout))

    async def send(self, message: Message) -> None:
        with tracer.start_as_current_span("smtp send", kind=trace.SpanKind.CLIENT):
            await self._send(message)

    async def _send(self, message: Message) -> None:
        client = await self._idle.get()
        try:
            if not client.is_connected:
                await client.connect()
            await client.send_message(message)
        except BaseException:
            with contextlib.suppress(Exception):
                client.close()  # a broken connection is opened again on its next use
            raise
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                with contextlib.suppress(Exception):
                    await client.quit()
