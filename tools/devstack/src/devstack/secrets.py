"""Fresh secrets for ``docker compose`` (``make compose-env``): written to .env once, never
committed, so the compose file names every secret and holds none."""

import secrets
from pathlib import Path

from common.auth import new_private_key_pem


def one_line(pem: str) -> str:
    """A PEM as an env file holds it: its line breaks written ``\\n`` (the services read both)."""
    return pem.strip().replace("\n", "\\n")


def compose_env() -> str:
    values = {
        "JWT_SIGNING_KEY": one_line(new_private_key_pem()),
        "ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
        "REDIS_PASSWORD": secrets.token_urlsafe(18),
        "RABBITMQ_PASSWORD": secrets.token_urlsafe(18),
        "CLAIM_LINK_SECRET": secrets.token_urlsafe(32),
    }
    return "# Made by make compose-env; keep it out of version control.\n" + "".join(f"{k}={v}\n" for k, v in values.items())


def write_compose_env(path: Path) -> None:
    if path.exists():
        raise SystemExit(f"{path} exists already; remove it to make new secrets (every token and account password stays)")
    path.write_text(compose_env())
    path.chmod(0o600)
    print(f"wrote {path}: the admin's password is its ADMIN_PASSWORD")
