from common.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "availability"
    http_port: int = 8082
    queue_name: str = "availability.shift-changes"
