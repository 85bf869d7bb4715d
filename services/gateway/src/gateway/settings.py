from pydantic import Field, SecretStr

from common.settings import ServiceSettings, database_url_field

BUILT_IN_PASSWORDS = {"admin-password", "change-me", "password", "admin"}


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
    # The key people's tokens are signed with (Ed25519, PEM; ``python -m common.auth`` makes one),
    # and the public keys still published beside it while keys rotate (README, "Keys").
    jwt_signing_key: SecretStr | None = None
    jwt_extra_public_keys: list[str] = Field(default_factory=list)
    # Sign-in and registration limits, per client address (the entry's X-Forwarded-For): failed
    # sign-ins to one account from one address, and to any account from one address, a minute; a
    # stranger elsewhere cannot lock an account out, nor try many accounts from one address.
    failed_sign_ins_per_minute: int = 10
    failed_sign_ins_per_address_per_minute: int = 30
    registrations_per_address_per_hour: int = 20
    # Password hashes (argon2: 64 MiB each) computed at once; the rest wait their turn.
    password_hashes_at_once: int = 4

    def refusals(self) -> list[str]:
        found = super().refusals()
        if self.jwt_signing_key is None:
            found.append("JWT_SIGNING_KEY is not set: an Ed25519 private key in PEM (python -m common.auth prints one)")
        if self.admin_password is not None:
            password = self.admin_password.get_secret_value()
            if len(password) < 12 or password in BUILT_IN_PASSWORDS:
                found.append("ADMIN_PASSWORD is built in or shorter than 12 characters: choose a long one of your own")
        return found
