"""The dev stack's settings: where the servers are, and what each service process gets."""

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from common.auth import new_private_key_pem
from common.settings import async_database_url

SERVICES_WITH_DATABASE = ("gateway", "shifts", "booking", "notifier")
SERVICES = ("shifts", "availability", "booking", "notifier", "gateway")
EDGE = "edge"  # nginx: the public entry, in front of every service


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/appointments",
        description="server and database-name prefix; each service gets <name>_<service>",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False  # REDIS_URL names a node of a Redis Cluster
    redis_key_prefix: str = "appt"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Made afresh for each run of the stack (tokens from an earlier run are refused).
    jwt_signing_key: SecretStr = Field(default_factory=lambda: SecretStr(new_private_key_pem()))
    smtp_host: str | None = None
    smtp_port: int | None = None
    public_port: int = Field(8080, description="the public entry (nginx): the page, and the API under /api/v1")
    public_host: str = "127.0.0.1"
    first_service_port: int = Field(
        8081, description="shifts, availability, booking, notifier, gateway: this and the next four; a second process +5"
    )
    # Processes per service, behind the entry (each on its own port, nginx balancing): the booking
    # service is the one a single process cannot keep up with on two cores (docs/benchmarks.md).
    processes: dict[str, int] = Field(default_factory=lambda: {"booking": 2})
    edge_dir: Path = Path("var/edge")
    edge_upstream_log: bool = False  # the entry logs which process answered each request (tests count them)
    admin_email: str = "admin@example.com"
    admin_password: SecretStr = SecretStr("admin-password")
    mail_dir: Path = Path("var/mail")
    log_level: str = "INFO"
    demo_timezone: str = Field("Europe/London", validation_alias=AliasChoices("DEMO_TIMEZONE"))
    service_overrides: dict[str, str] = Field(default_factory=dict, description="more environment for every service")
    # Prometheus (Debian's package) scraping every process, with deploy/prometheus's rules: off
    # unless given a port (PROMETHEUS_PORT=9090 make run).
    prometheus_port: int | None = None
    prometheus_dir: Path = Path("var/prometheus")
    prometheus_scrape_seconds: float = 5.0

    def database_for(self, service: str) -> str:
        url = make_url(async_database_url(self.database_url))
        return url.set(database=f"{url.database}_{service}").render_as_string(hide_password=False)

    def process_count(self, service: str) -> int:
        return max(1, self.processes.get(service, 1))

    def port_of(self, service: str, index: int = 0) -> int:
        return self.first_service_port + SERVICES.index(service) + len(SERVICES) * index

    def url_of(self, service: str, index: int = 0) -> str:
        """A service's process, on this machine only (clients come in through ``public_url``)."""
        return f"http://127.0.0.1:{self.port_of(service, index)}"

    @property
    def public_url(self) -> str:
        return self.public_url_of(0)

    def public_url_of(self, index: int) -> str:
        """The entries' addresses (``processes["edge"]`` of them, as a DNS name with several
        addresses would give): the first on ``public_port``, the others after every service port."""
        if index == 0:
            return f"http://{self.public_host}:{self.public_port}"
        most = max(self.process_count(service) for service in SERVICES)
        return f"http://{self.public_host}:{self.first_service_port + len(SERVICES) * most + index - 1}"

    @property
    def public_urls(self) -> list[str]:
        return [self.public_url_of(i) for i in range(self.process_count(EDGE))]

    def scrape_targets(self) -> dict[str, list[str]]:
        """host:port of every process of every service, each with its /metrics."""
        return {service: self.addresses_of(service) for service in SERVICES}

    @property
    def prometheus_url(self) -> str | None:
        return f"http://127.0.0.1:{self.prometheus_port}" if self.prometheus_port else None

    def upstreams(self) -> dict[str, list[str]]:
        """host:port of every process of each service the entry routes to."""
        return {service: self.addresses_of(service) for service in ("gateway", "shifts", "availability", "booking")}

    def addresses_of(self, service: str) -> list[str]:
        """host:port of each process of ``service``."""
        return [f"127.0.0.1:{self.port_of(service, i)}" for i in range(self.process_count(service))]

    def service_env(self, service: str, smtp_host: str, smtp_port: int, index: int = 0) -> dict[str, str]:
        env = {
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port_of(service, index)),
            "REDIS_URL": self.redis_url,
            "REDIS_CLUSTER": "true" if self.redis_cluster else "false",
            "REDIS_KEY_PREFIX": self.redis_key_prefix,
            "RABBITMQ_URL": self.rabbitmq_url,
            "ENVIRONMENT": "development",
            "JWKS_URL": f"{self.url_of('gateway')}/.well-known/jwks.json",
            "LOG_LEVEL": self.log_level,
            "SMTP_HOST": smtp_host,
            "SMTP_PORT": str(smtp_port),
            "SHIFTS_URL": self.url_of("shifts"),
            "AVAILABILITY_URL": self.url_of("availability"),
            "BOOKING_URL": self.url_of("booking"),
            "ADMIN_EMAIL": self.admin_email,
            "ADMIN_PASSWORD": self.admin_password.get_secret_value(),
            "PUBLIC_URL": self.public_url,  # the links in mails (a waitlist offer's) open the booking page here
        }
        if service in SERVICES_WITH_DATABASE:
            env["DATABASE_URL"] = self.database_for(service)
        if service == "gateway":  # the one that signs people's tokens
            env["JWT_SIGNING_KEY"] = self.jwt_signing_key.get_secret_value()
        return env | self.service_overrides
