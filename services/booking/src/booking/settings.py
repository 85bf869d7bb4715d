from common.settings import ServiceSettings, database_url_field


class Settings(ServiceSettings):
    service_name: str = "booking"
    http_port: int = 8083
    database_url: str = database_url_field("booking", "appointments_booking")
