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
