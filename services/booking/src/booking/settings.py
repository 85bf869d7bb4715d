from common.settings import ServiceSettings, database_url_field


class Settings(ServiceSettings):
    service_name: str = "booking"
    http_port: int = 8083
    database_url: str = database_url_field("booking", "appointments_booking")
    queue_name: str = "booking.shift-changes"
    hold_seconds: float = 30.0  # a unit taken for a booking whose commit never came back is free again after this
