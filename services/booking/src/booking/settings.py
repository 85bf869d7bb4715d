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
    hold_seconds: float = 30.0  # a unit taken for a booking whose commit never came back is free again after this

    def refusals(self) -> list[str]:
        found = super().refusals()
        if "availability" not in self.trusted_service_keys:
            found.append(
                'TRUSTED_SERVICE_KEYS has no key for availability (JSON: {"availability": "<its public key, PEM>"}):'
                " it could not rebuild the counters from the record"
            )
        return found
