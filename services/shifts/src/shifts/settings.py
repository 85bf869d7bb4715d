from common.settings import ServiceSettings, database_url_field


class Settings(ServiceSettings):
    service_name: str = "shifts"
    http_port: int = 8081
    database_url: str = database_url_field("shifts", "appointments_shifts")
    queue_name: str = "shifts.professionals"  # the gateway's professional.* events, for the directory
    # An admin's shift for a professional created a moment ago may arrive before the announcement
    # of that professional: it waits this long for it before answering 422 unknown_professional.
    professional_wait_seconds: float = 3.0
