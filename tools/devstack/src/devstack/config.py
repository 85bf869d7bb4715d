"""The dev stack's settings: where the servers are, and what each service process gets."""

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from common.settings import async_database_url

SERVICES_WITH_DATABASE = ("gateway", "shifts", "booking", "notifier")
SERVICES = ("shifts", "availability", "booking", "notifier", "gateway")


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/appointments",
        description="server and database-name prefix; each service gets <name>_<service>",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "appt"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    jwt_secret: SecretStr = SecretStr("dev-only-secret-change-me-0123456789abcdef")
    smtp_host: str | None = None
    smtp_port: int | None = None
    gateway_port: int = 8080
    gateway_host: str = "127.0.0.1"
    first_service_port: int = Field(8081, description="shifts, availability, booking, notifier take the next ports")
    admin_email: str = "admin@example.com"
    admin_password: SecretStr = SecretStr("admin-password")
    mail_dir: Path = Path("var/mail")
    log_level: str = "INFO"
    demo_timezone: str = Field("Europe/London", validation_alias=AliasChoices("DEMO_TIMEZONE"))
    service_overrides: dict[str, str] = Field(default_factory=dict, description="more environment for every service")

    def database_for(self, service: str) -> str:
        url = make_url(async_database_url(self.database_url))
        return url.set(database=f"{url.database}_{service}").render_as_string(hide_password=False)

    def port_of(self, service: str) -> int:
        if service == "gateway":
            return self.gateway_port
        return self.first_service_port + ("shifts", "availability", "booking", "notifier").index(service)

    def url_of(self, service: str) -> str:
        host = self.gateway_host if service == "gateway" else "127.0.0.1"
        return f"http://{host}:{self.port_of(service)}"

    def service_env(self, service: str, smtp_host: str, smtp_port: int) -> dict[str, str]:
        env = {
            "HTTP_HOST": self.gateway_host if service == "gateway" else "127.0.0.1",
            "HTTP_PORT": str(self.port_of(service)),
            "GATEWAY_PORT": str(self.gateway_port),
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.redis_key_prefix,
            "RABBITMQ_URL": self.rabbitmq_url,
            "JWT_SECRET": self.jwt_secret.get_secret_value(),
            "LOG_LEVEL": self.log_level,
            "SMTP_HOST": smtp_host,
            "SMTP_PORT": str(smtp_port),
            "SHIFTS_URL": self.url_of("shifts"),
            "AVAILABILITY_URL": self.url_of("availability"),
            "BOOKING_URL": self.url_of("booking"),
            "ADMIN_EMAIL": self.admin_email,
            "ADMIN_PASSWORD": self.admin_password.get_secret_value(),
        }
        if service in SERVICES_WITH_DATABASE:
            env["DATABASE_URL"] = self.database_for(service)
        return env | self.service_overrides
