from pydantic import SecretStr

from common.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "availability"
    http_port: int = 8082
    booking_url: str = "http://127.0.0.1:8083"
    record_timeout_seconds: float = 30.0
    rebuild_check_seconds: float = 2.0  # how often to look whether Redis lost the counters
    rebuild_settle_seconds: float = 0.5  # lets bookings that took capacity before the flag commit
    rebuild_flag_seconds: float = 60.0  # a crashed rebuild blocks an event no longer than this
    reconcile_seconds: float = 30.0  # how often every counter is compared with the record
    # A kept day answer is read afresh after this long even if no change of it was announced: the
    # bound on how far behind the counters an answer can be (docs/architecture.md).
    answer_max_age_seconds: float = 0.2
    # Availability's own key (Ed25519, PEM), for its calls to the booking service's record; the
    # booking service trusts its public half (TRUSTED_SERVICE_KEYS).
    service_signing_key: SecretStr | None = None

    def refusals(self) -> list[str]:
        found = super().refusals()
        if self.service_signing_key is None:
            found.append("SERVICE_SIGNING_KEY is not set: availability's own Ed25519 private key in PEM")
        return found
