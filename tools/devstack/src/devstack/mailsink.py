"""A real SMTP server (aiosmtpd) that keeps every mail: in memory for tests, as .eml files for people."""

import email
import email.policy
import itertools
import logging
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)


REFUSED_PREFIX = "refused-"


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


class _Keeper:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.raw: list[bytes] = []
        self._parsed: list[EmailMessage] = []
        self.arrivals: list[float] = []  # time.time() when each message was accepted, in order
        self.changed = threading.Condition()
        self._numbers = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options: list) -> str:
        """A mailbox that does not exist, as a real server answers it: any address that starts with
        ``refused-`` (the fault tests' clients with a bad address)."""
        if address.lower().startswith(REFUSED_PREFIX):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        raw = envelope.original_content or envelope.content
        number = next(self._numbers)
        if self.directory is not None:
            path = self.directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{number:04d}.eml"
            path.write_bytes(raw)
            message = parse(raw)
            log.info("mail to %s: %s (%s)", message["To"], message["Subject"], path)
        with self.changed:
            self.arrivals.append(time.time())
            self.raw.append(raw)  # parsed when read: parsing here would make the sink the bottleneck
            self.changed.notify_all()
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.changed:
            while len(self._parsed) < len(self.raw):
                self._parsed.append(parse(self.raw[len(self._parsed)]))
            return list(self._parsed)


class MailSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 1025, directory: Path | None = None) -> None:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self._keeper = _Keeper(directory)
        self._controller = Controller(self._keeper, hostname=host, port=port)
        self.host, self.port = host, port

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self._keeper.messages)

    def arrivals(self) -> list[tuple[float, EmailMessage]]:
        """(accepted at, message) for every mail so far."""
        with self._keeper.changed:
            messages = self._keeper.messages
            return list(zip(self._keeper.arrivals[: len(messages)], messages, strict=True))

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(
        self, count: int, timeout: float = 10.0, to: str | None = None, subject: str | None = None
    ) -> list[EmailMessage]:
        """Block until at least ``count`` mails (to ``to``, about ``subject``, if given) arrived; return them."""
        deadline = time.monotonic() + timeout

        def matching() -> list[EmailMessage]:
            if to is None and subject is None:
                return self._keeper.raw  # just counting: nothing to parse
            return [
                m for m in self._keeper.messages if (to is None or m["To"] == to) and (subject is None or m["Subject"] == subject)
            ]

        with self._keeper.changed:
            while len(found := matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(found)} of {count} mails arrived within {timeout}s")
                self._keeper.changed.wait(left)
        return found
