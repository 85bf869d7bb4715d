from pydantic import SecretStr

from common.settings import ServiceSettings, database_url_field


class Settings(ServiceSettings):
    service_name: str = "gateway"
    http_port: int = 8085
    database_url: str = database_url_field("gateway", "appointments_gateway")
    shifts_url: str = "http://127.0.0.1:8081"
    availability_url: str = "http://127.0.0.1:8082"
    booking_url: str = "http://127.0.0.1:8083"
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    admin_name: str = "Administrator"
    failed_sign_ins_per_minute: int = 10  # per account: then 429 until the minute is over
