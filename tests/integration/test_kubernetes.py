"""The Kubernetes manifests, checked offline: valid resources, and every service fully configured."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def test_only_the_gateway_is_exposed_to_clients():
    exposed = {r["metadata"]["name"] for r in resources() if r["kind"] == "Service" and r["spec"].get("type") != "ClusterIP"}
    assert exposed == {"gateway"}
