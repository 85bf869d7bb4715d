"""docker-compose.yml cannot run here (no Docker engine), so it is checked statically."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devstack.config import StackSettings
from devstack.edge import EDGE, placeholders
from devstack.secrets import compose_env
from devstack.servers import COMPOSE_SERVICES, servers_of
from tests.integration.deployment import assert_configured, edge_image_environment, made_up_secrets

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ["gateway", "shifts", "availability", "booking", "notifier"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def image_environment() -> dict[str, str]:
    """What the Dockerfile's final stage sets with ENV (NAME=value pairs)."""
    final_stage = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    pairs = [p for line in final_stage.splitlines() if line.startswith("ENV ") for p in line[4:].split()]
    return dict(pair.split("=", 1) for pair in pairs)


SECRETS = made_up_secrets()  # what make compose-env would write to .env


def resolved(value: str) -> str:
    """``${NAME:-default}`` as compose resolves it with NAME unset; ``${NAME:?message}`` (a value
    compose refuses to start without) with what .env would hold."""
    value = re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda m: SECRETS[m.group(1)], str(value))
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_it_is_a_valid_compose_file():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_is_built_from_the_repo(compose):
    for name in APP_SERVICES:
        build = compose["services"][name]["build"]
        assert (ROOT / build["context"]).is_dir()
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
        assert build["args"]["SERVICE"] == name and (ROOT / "services" / name / "src" / name).is_dir()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_setting_that_would_point_at_localhost_is_set(compose, name):
    environment = image_environment() | {key: resolved(v) for key, v in compose["services"][name]["environment"].items()}
    assert_configured(name, environment)


def test_only_the_public_entry_and_the_mail_page_are_published(compose):
    published = {name for name, service in compose["services"].items() if service.get("ports") and not service.get("profiles")}
    assert published == {"edge", "mail"}


def test_the_servers_profile_runs_the_three_servers_where_make_run_looks_for_them(compose):
    """``docker compose --profile servers up -d``: what make run starts where none is installed
    (devstack.servers), on the host's loopback at the ports of the local defaults."""
    defaults = {s.name: s.port for s in servers_of(StackSettings(_env_file=None))}
    for name, service_name in COMPOSE_SERVICES.items():
        service = compose["services"][service_name]
        assert service["profiles"] == ["servers"]
        assert service["ports"] == [f"127.0.0.1:{defaults[name]}:{defaults[name]}"]
        assert "healthcheck" in service
    assert {n for n, s in compose["services"].items() if s.get("profiles")} == set(COMPOSE_SERVICES.values())


def test_the_seed_step_puts_the_demo_in_once_the_entry_answers(compose):
    seed = compose["services"]["seed"]
    assert seed["command"] == ["python", "-m", "devstack", "seed"] and seed["build"]["args"]["SERVICE"] == "devstack"
    assert seed["depends_on"] == {"edge": {"condition": "service_healthy"}} and seed["restart"] == "no"
    environment = {key: resolved(value) for key, value in seed["environment"].items()}
    gateway = {key: resolved(value) for key, value in compose["services"]["gateway"]["environment"].items()}
    assert (environment["ADMIN_EMAIL"], environment["ADMIN_PASSWORD"]) == (gateway["ADMIN_EMAIL"], gateway["ADMIN_PASSWORD"])
    entry = compose["services"]["edge"]["environment"]
    assert (environment["PUBLIC_HOST"], environment["PUBLIC_PORT"]) == ("edge", entry["EDGE_LISTEN"])


def test_the_public_entry_routes_to_each_service_where_it_listens(compose):
    edge = compose["services"]["edge"]
    environment = edge["environment"]
    assert placeholders() <= environment.keys() | edge_image_environment()  # the image fills every placeholder
    for name in ("gateway", "shifts", "availability", "booking"):
        host, port = re.fullmatch(r"server ([a-z]+):(\d+);", environment[f"{name.upper()}_SERVERS"]).groups()
        assert (host, port) == (name, compose["services"][name]["environment"]["HTTP_PORT"])
    assert edge["ports"] == [f"${{PUBLIC_PORT:-8080}}:{environment['EDGE_LISTEN']}"]
    assert ROOT / edge["build"]["dockerfile"] == EDGE / "Dockerfile"


def test_every_dependency_waits_for_health(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, service in compose["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            target = compose["services"][dependency]
            assert "healthcheck" in target or ("build" in target and "HEALTHCHECK" in dockerfile)


def test_no_secret_is_written_in_the_compose_file_and_make_compose_env_gives_every_one(compose):
    """Every password and key is a ``${NAME:?...}``: compose refuses to start without .env, and
    make compose-env writes each of them, fresh."""
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert {"JWT_SIGNING_KEY", "ADMIN_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD"} <= required
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|KEYS?)[A-Z_]*:", line):
            assert "${" in line, f"a secret written in the file: {line.strip()}"
    assert "guest:guest" not in text
    written = dict(line.split("=", 1) for line in compose_env().splitlines() if line and not line.startswith("#"))
    assert required <= written.keys()
    assert compose_env() != compose_env()  # fresh each time


def test_any_service_scales_behind_the_entry(compose):
    """``docker compose up --scale booking=3``: no service has a fixed container name or a host
    port (only the entry and the mail page publish one), and the entry names each service by its
    compose name, which Docker's DNS answers with every replica (nginx resolves it as it starts)."""
    edge = compose["services"]["edge"]["environment"]
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert "container_name" not in service and "ports" not in service, name
        if name != "notifier":  # called by nobody
            assert re.fullmatch(rf"server {name}:\d+;", edge[f"{name.upper()}_SERVERS"]), edge
