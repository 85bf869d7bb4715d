"""What any way of deploying a service must give it: every setting whose default would point at
localhost (inside a container: at nothing), a database and a port, and credentials of its own, so
that it starts outside development (no refusals)."""

import importlib
import os
import re
import secrets
from unittest.mock import patch

from common.auth import new_private_key_pem
from devstack.edge import EDGE
from devstack.secrets import one_line


def made_up_secrets() -> dict[str, str]:
    """Values an operator would give, for the names a deployment leaves to them."""
    password = secrets.token_urlsafe(12)
    return {
        "JWT_SIGNING_KEY": one_line(new_private_key_pem()),
        "ADMIN_EMAIL": "admin@example.com",
        "ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "POSTGRES_PASSWORD": password,
        "REDIS_PASSWORD": password,
        "RABBITMQ_PASSWORD": password,
        "CLAIM_LINK_SECRET": secrets.token_urlsafe(32),
    }


def assert_configured(service: str, environment: dict[str, str]) -> None:
    settings_class = importlib.import_module(f"{service}.settings").Settings
    for field_name, field in settings_class.model_fields.items():
        names = {field_name.upper()}
        if field.validation_alias is not None:
            names |= {str(choice) for choice in getattr(field.validation_alias, "choices", [field.validation_alias])}
        needs_value = "127.0.0.1" in str(field.default) or field_name in ("database_url", "http_port")
        if needs_value:
            assert names & environment.keys(), f"{service}: none of {sorted(names)} is set"
    with patch.dict(os.environ, environment, clear=True):
        settings = settings_class()  # read as the service reads it at start: and what is set is valid
    assert "127.0.0.1" not in settings.model_dump_json(), f"{service} would still talk to localhost"
    assert settings.refusals() == [], f"{service} would refuse to start: {settings.refusals()}"


def edge_image_environment() -> set[str]:
    """What the entry's image sets with ENV itself."""
    return set(re.findall(r"^ENV (\w+)=", (EDGE / "Dockerfile").read_text(), re.MULTILINE))
