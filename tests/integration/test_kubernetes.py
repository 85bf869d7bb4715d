"""The Kubernetes manifests, checked offline: valid resources, and every service fully configured."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devstack.edge import PLACEHOLDER, TEMPLATE
from tests.integration.deployment import assert_configured

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
SERVICES = ["gateway", "shifts", "availability", "booking", "notifier"]


def resources() -> list[dict]:
    return [doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_manifest_is_a_valid_kubernetes_resource():
    files = sorted(str(p) for p in MANIFESTS.glob("*.yaml"))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *files], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_scales_on_its_own_and_is_fully_configured(name):
    by_kind = {(r["kind"], r["metadata"]["name"]): r for r in resources()}
    deployment = by_kind["Deployment", name]
    shared = {**by_kind["ConfigMap", "appointments-config"]["data"], **by_kind["Secret", "appointments-secrets"]["stringData"]}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    environment = shared | {e["name"]: e["value"] for e in container.get("env", [])}
    assert_configured(name, environment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployment["spec"]["replicas"] >= 2  # stateless: more than one from the start
    port = int(environment["HTTP_PORT"])
    assert by_kind["Service", name]["spec"]["ports"][0]["port"] == port


def test_clients_come_in_only_through_the_ingress_to_the_edge():
    exposed = {
        r["metadata"]["name"] for r in resources() if r["kind"] == "Service" and r["spec"].get("type", "ClusterIP") != "ClusterIP"
    }
    assert exposed == set()
    (ingress,) = [r for r in resources() if r["kind"] == "Ingress"]
    backends = {p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert backends == {"edge"}


def test_the_edge_routes_to_each_service_where_it_listens():
    by_kind = {(r["kind"], r["metadata"]["name"]): r for r in resources()}
    (container,) = by_kind["Deployment", "edge"]["spec"]["template"]["spec"]["containers"]
    environment = {e["name"]: e["value"] for e in container["env"]}
    assert set(PLACEHOLDER.findall(TEMPLATE.read_text())) <= environment.keys()
    for name in ("gateway", "shifts", "availability", "booking"):
        host, port = re.fullmatch(r"server ([a-z]+):(\d+);", environment[f"{name.upper()}_SERVERS"]).groups()
        assert (host, int(port)) == (name, by_kind["Service", name]["spec"]["ports"][0]["port"])
