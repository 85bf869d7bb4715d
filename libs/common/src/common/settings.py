"""Configuration: one pydantic-settings class per service, all read from the environment.

Nothing else in the project reads ``os.environ``.
"""

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service shares. Subclasses add their own fields and defaults."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    http_host: str = "127.0.0.1"
    http_port: int = 8080

    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A Redis Cluster, reached through any of its nodes (REDIS_URL): every script's keys share one
    # hash slot (an event's), so each runs on the node that holds them.
    redis_cluster: bool = False
    redis_key_prefix: str = Field("appt", description="prefix of every Redis key, so runs never share data")

    # "development" (make run, the tests) lets built-in credentials through; anything else makes a
    # service refuse to start on one (``refusals``), saying what to set.
    environment: Literal["development", "production"] = "production"
    # Tokens (common.auth): people's are verified with the keys the gateway publishes here.
    jwks_url: str = "http://127.0.0.1:8085/.well-known/jwks.json"
    jwt_issuer: str = "appointments-gateway"
    jwt_audience: str = "appointments"
    jwt_ttl_seconds: int = 3600

    # The public entry as clients reach it: the links in mails and the calendar feeds' URLs open it.
    public_url: str = "http://127.0.0.1:8080"
    # The full domain every Message-ID and calendar UID ends in (RFC 5322 and RFC 5545 want one, so
    # that no other sender's ids collide with ours): the mails' invites and the calendar feeds give
    # one booking the same UID, so a calendar that has both keeps one entry.
    mail_domain: str = "appointments.example"

    log_level: str = "INFO"
    # /metrics and the timing of every request (on unless a benchmark measures their price).
    metrics_enabled: bool = True
    # Traces (common.tracing), by OpenTelemetry's own variables: off unless OTEL_TRACES_EXPORTER
    # names an exporter (otlp: to OTEL_EXPORTER_OTLP_ENDPOINT; console); OTEL_SDK_DISABLED wins.
    otel_traces_exporter: Literal["none", "otlp", "console"] = "none"
    otel_sdk_disabled: bool = False
    # On SIGTERM a service takes no new work and gives what is in flight this long, at most, per
    # stage: HTTP requests, then the messages being handled, then its outbox. Three stages in all,
    # plus the orchestrator's pre-stop pause, stay within its grace period (deploy/kubernetes).
    drain_seconds: float = 8.0
    outbox_poll_seconds: float = 0.5
    consumer_prefetch: int = 32

    def refusals(self) -> list[str]:
        """What keeps this configuration from running outside development: built-in or missing
        credentials. Each service adds its own."""
        found = []
        if "//guest:guest@" in self.rabbitmq_url:
            found.append("RABBITMQ_URL uses RabbitMQ's built-in guest account: give the service a user of its own")
        return found

    @field_validator("mail_domain")
    @classmethod
    def _full_domain(cls, domain: str) -> str:
        if "." not in domain.strip("."):
            raise ValueError(f"the mail domain {domain!r} is not a full domain (MAIL_DOMAIN)")
        return domain

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
