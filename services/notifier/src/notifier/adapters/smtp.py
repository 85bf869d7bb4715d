from email.message import EmailMessage

import aiosmtplib

from notifier.domain import Mail


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, timeout: float) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._timeout = timeout

    async def send(self, mail: Mail, message_id: str, correlation_id: str | None) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = message_id
        if correlation_id:
            message["X-Correlation-ID"] = correlation_id  # lets support trace a mail back to the request
        message.set_content(mail.body)
        await aiosmtplib.send(message, hostname=self._host, port=self._port, timeout=self._timeout)
