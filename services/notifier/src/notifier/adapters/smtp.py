"""SMTP through a small pool of kept-open connections: a connection per mail (connect, EHLO,
QUIT) cost more than the mail itself."""

import asyncio
import contextlib
from email.message import Message

import aiosmtplib


class SmtpMailer:
    def __init__(self, host: str, port: int, timeout: float, connections: int = 8) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(connections):
            self._idle.put_nowait(aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout))

    async def send(self, message: Message) -> None:
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
