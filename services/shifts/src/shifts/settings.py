from common.settings import ServiceSettings, database_url_field


class Settings(ServiceSettings):
    service_name: str = "shifts"
    http_port: int = 8081
    database_url: str = database_url_field("shifts", "appointments_shifts")
