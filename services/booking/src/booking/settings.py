from pydantic import SecretStr

from common.claim_links import DEVELOPMENT_SECRET
from common.settings import ServiceSettings, database_url_field


class Settings(ServiceSettings):
    service_name: str = "booking"
    http_port: int = 8083
    database_url: str = database_url_field("booking", "appointments_booking")
    queue_name: str = "booking.shift-changes"
    # A booking not committed by then is abandoned before its COMMIT (503, unit given back), so no
    # committed booking meets the gateway's upstream timeout (5 s).
    deadline_seconds: float = 3.5
    # Booking attempts per client and event in a minute, counted where capacity is taken (the take
    # script), so no way in skips it and a limited attempt costs nothing more.
    bookings_per_minute: int = 30
    hold_seconds: float = 30.0  # a unit taken for a booking whose commit never came back is given back after this
    # The owner looks after the counters: how often it checks Redis still has them (and gives back
    # expired holds), and how often it compares every counter with the record.
    rebuild_check_seconds: float = 2.0
    reconcile_seconds: float = 30.0
    # Signs the single-use links of waitlist offers (common.claim_links): the notifier, which writes
    # them into the offer mails, has the same.
    claim_link_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)

    def refusals(self) -> list[str]:
        found = super().refusals()
        if self.claim_link_secret.get_secret_value() == DEVELOPMENT_SECRET:
            found.append("CLAIM_LINK_SECRET is the built-in one: give booking and notifier a long random secret of your own")
        return found
