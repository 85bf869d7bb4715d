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
    # Sign-in and registration limits, per client address (the entry's X-Forwarded-For): failed
    # sign-ins to one account from one address, and to any account from one address, a minute; a
    # stranger elsewhere cannot lock an account out, nor try many accounts from one address.
    failed_sign_ins_per_minute: int = 10
    failed_sign_ins_per_address_per_minute: int = 30
    registrations_per_address_per_hour: int = 20
    # Password hashes (argon2: 64 MiB each) computed at once; the rest wait their turn.
    password_hashes_at_once: int = 4
