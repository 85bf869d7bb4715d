from pydantic import SecretStr

from common.claim_links import DEVELOPMENT_SECRET
from common.settings import ServiceSettings, database_url_field
from notifier.domain import Letterhead


class Settings(ServiceSettings):
    service_name: str = "notifier"
    http_port: int = 8084
    database_url: str = database_url_field("notifier", "appointments_notifier")
    queue_name: str = "notifier.booking-events"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_timeout_seconds: float = 10.0  # connecting, and each command
    smtp_data_timeout_seconds: float = 120.0  # the answer to a mail's data (adapters/smtp.py says why)
    mail_from: str = "Appointments <no-reply@appointments.example>"
    # Where replies go (Reply-To) and the invites' ORGANIZER: a mailbox someone reads, since a
    # calendar client mails the organizer when its reader accepts or declines.
    mail_organizer: str = "Appointments <appointments@appointments.example>"

    def refusals(self) -> list[str]:
        found = super().refusals()
        if self.claim_link_secret.get_secret_value() == DEVELOPMENT_SECRET:
            found.append("CLAIM_LINK_SECRET is the built-in one: give booking and notifier a long random secret of your own")
        return found

    @property
    def letterhead(self) -> Letterhead:
        return Letterhead(self.mail_from, self.mail_organizer, self.mail_domain)

    claim_lease_seconds: float = 20.0  # a claim not renewed for this long belongs to a notifier that died
    # The waitlist offer mails' single-use links (common.claim_links): the booking service checks
    # them with the same secret; the link opens the booking page at PUBLIC_URL.
    claim_link_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    reminder_check_seconds: float = 15.0  # how often due reminders are looked for (a reminder is this late at most)
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)  # SMTP down: wait this long before each retry
