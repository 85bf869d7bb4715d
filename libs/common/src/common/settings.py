"""Configuration: one pydantic-settings class per service, all read from the environment.

Nothing else in the project reads ``os.environ``.
"""

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service shares. Subclasses add their own fields and defaults."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    http_host: str = "127.0.0.1"
    http_port: int = 8080

    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = Field("appt", description="prefix of every Redis key, so runs never share data")

    jwt_secret: SecretStr = SecretStr("dev-only-secret-change-me-0123456789abcdef")
    jwt_issuer: str = "appointments-gateway"
    jwt_audience: str = "appointments"
    jwt_ttl_seconds: int = 3600

    log_level: str = "INFO"
    outbox_poll_seconds: float = 0.5
    consumer_prefetch: int = 32

    @field_validator("database_url", check_fields=False)
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        return async_database_url(url)


def async_database_url(url: str) -> str:
    """Accept the usual ``postgresql://`` form too; the services talk through asyncpg."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url.removeprefix(plain)
    return url


def database_url_field(service: str, default_db: str) -> object:
    """``<SERVICE>_DATABASE_URL`` wins over ``DATABASE_URL``, so one env file can serve all services."""
    return Field(
        f"postgresql+asyncpg://postgres@127.0.0.1:5432/{default_db}",
        validation_alias=AliasChoices(f"{service.upper()}_DATABASE_URL", "DATABASE_URL"),
    )
