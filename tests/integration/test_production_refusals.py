"""Outside development (ENVIRONMENT unset: production), a service refuses to start on a missing or
built-in key, secret or password, and says what to set; in development it starts with them."""

import os
import subprocess
import sys

import pytest

from tests.integration.deployment import made_up_secrets

BUILT_IN = {"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/", "ADMIN_PASSWORD": "admin-password"}


def start(service: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m <service>`` with only ``environment`` (and the interpreter's path); refusals
    happen before anything is opened, so nothing here needs a server."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", "")} | environment
    return subprocess.run([sys.executable, "-m", service], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("service", "named"),
    [
        ("gateway", ["JWT_SIGNING_KEY", "ADMIN_PASSWORD", "RABBITMQ_URL"]),
        ("availability", ["RABBITMQ_URL"]),
        ("booking", ["RABBITMQ_URL", "CLAIM_LINK_SECRET"]),
        ("shifts", ["RABBITMQ_URL"]),
        ("notifier", ["RABBITMQ_URL", "CLAIM_LINK_SECRET"]),
    ],
)
def test_built_in_or_missing_credentials_stop_a_service_outside_development_with_what_to_set(service, named):
    refused = start(service, BUILT_IN | {"HTTP_PORT": "1"})
    assert refused.returncode != 0
    assert "will not start with built-in or missing credentials" in refused.stderr, refused.stderr[-2000:]
    for name in named:
        assert name in refused.stderr, (name, refused.stderr[-2000:])


def test_a_short_admin_password_is_refused_too_and_good_credentials_pass_the_check():
    secrets = made_up_secrets()
    good = {
        "RABBITMQ_URL": "amqp://appointments:long-password@127.0.0.1:1/",
        "JWT_SIGNING_KEY": secrets["JWT_SIGNING_KEY"],
        "ADMIN_EMAIL": "admin@example.com",
        "CLAIM_LINK_SECRET": secrets["CLAIM_LINK_SECRET"],
    }
    refused = start("gateway", good | {"ADMIN_PASSWORD": "short-pw"})
    assert "ADMIN_PASSWORD" in refused.stderr and "JWT_SIGNING_KEY" not in refused.stderr
    booking = start("booking", good | {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert "will not start" not in booking.stderr  # past the check (then it cannot reach its database: port 1)
