"""The Kubernetes manifests, checked offline: valid resources, and every service fully configured."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.settings import ServiceSettings
from devstack.edge import EDGE, placeholders
from tests.integration.deployment import assert_configured, edge_image_environment, made_up_secrets

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
SERVICES = ["gateway", "shifts", "availability", "booking", "notifier"]


def resources() -> list[dict]:
    return [doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


SECRET_NAMES = {
    line.split("=", 1)[0]
    for line in (MANIFESTS / "secrets.env.example").read_text().splitlines()
    if "=" in line and line[0] != "#"
}
SECRETS = (
    made_up_secrets()
    | {
        "REDIS_URL": "redis://:pw@redis:6379/0",
        "RABBITMQ_URL": "amqp://appointments:pw@rabbitmq:5672/",
    }
    | {f"{s.upper()}_DATABASE_URL": f"postgresql://appointments:pw@postgres:5432/appointments_{s}" for s in SERVICES}
)


def container_environment(container: dict) -> dict[str, str]:
    """A container's own variables, each secret one read from the Secret by its key (with the
    values an operator would have put there)."""
    environment = {}
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["secretKeyRef"]
            assert reference["name"] == "appointments-secrets" and reference["key"] in SECRET_NAMES, reference
            environment[variable["name"]] = SECRETS[reference["key"]]
    return environment


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
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    environment = by_kind["ConfigMap", "appointments-config"]["data"] | container_environment(container)
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
    assert placeholders() <= environment.keys() | edge_image_environment()
    for name in ("gateway", "shifts", "availability", "booking"):
        host, port = re.fullmatch(r"server ([a-z]+):(\d+);", environment[f"{name.upper()}_SERVERS"]).groups()
        assert (host, int(port)) == (name, by_kind["Service", name]["spec"]["ports"][0]["port"])


def test_no_secret_lives_in_the_manifests_and_each_pod_reads_only_its_own():
    assert not [r for r in resources() if r["kind"] == "Secret"]
    text = "\n".join(p.read_text() for p in MANIFESTS.glob("*.yaml"))
    assert "guest:guest" not in text and "secretRef" not in text  # never the whole Secret into a pod
    by_kind = {(r["kind"], r["metadata"]["name"]): r for r in resources()}
    read = {}
    for name in SERVICES:
        containers = by_kind["Deployment", name]["spec"]["template"]["spec"]["containers"]
        read[name] = {v["valueFrom"]["secretKeyRef"]["key"] for c in containers for v in c.get("env", []) if "valueFrom" in v}
    assert "JWT_SIGNING_KEY" in read["gateway"]
    assert not any("JWT_SIGNING_KEY" in keys for n, keys in read.items() if n != "gateway")
    assert read["availability"] <= {"REDIS_URL", "RABBITMQ_URL"}  # it reads the counters: no key of its own


@pytest.mark.parametrize("name", [*SERVICES, "edge"])
def test_pods_run_as_a_numeric_non_root_user_on_a_read_only_root(name):
    by_kind = {(r["kind"], r["metadata"]["name"]): r for r in resources()}
    pod = by_kind["Deployment", name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and int(pod["securityContext"]["runAsUser"]) > 0
    dockerfile = EDGE / "Dockerfile" if name == "edge" else MANIFESTS.parents[1] / "Dockerfile"
    assert f"USER {pod['securityContext']['runAsUser']}\n" in dockerfile.read_text()  # the image's own user, by number
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}


def test_nothing_reaches_a_service_but_what_calls_it():
    policies = [r for r in resources() if r["kind"] == "NetworkPolicy"]
    (deny,) = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert deny["spec"]["policyTypes"] == ["Ingress"] and not deny["spec"].get("ingress")
    allowed: dict[str, set[str]] = {}
    for policy in policies:
        selector = policy["spec"]["podSelector"]
        targets = [selector["matchLabels"]["app.kubernetes.io/name"]] if "matchLabels" in selector else []
        targets += [name for e in selector.get("matchExpressions", []) if e["operator"] == "In" for name in e["values"]]
        for rule in policy["spec"].get("ingress", []):
            sources = {s["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for s in rule.get("from", [])} or {"outside"}
            for target in targets:
                allowed.setdefault(target, set()).update(sources)
    assert allowed == {
        "edge": {"outside"},
        "gateway": {"edge", "prometheus"},
        "shifts": {"edge", "gateway", "prometheus"},  # the gateway reads each service's OpenAPI document
        "availability": {"edge", "gateway", "prometheus"},
        "booking": {"edge", "gateway", "prometheus"},  # no service calls another for state: events carry it
        "notifier": {"prometheus"},  # its /metrics only
    }
    (scraping,) = [p for p in policies if p["metadata"]["name"] == "metrics-from-prometheus"]
    (rule,) = scraping["spec"]["ingress"]
    assert rule["from"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    for deployment in (r for r in resources() if r["kind"] == "Deployment" and r["metadata"]["name"] in SERVICES):
        template = deployment["spec"]["template"]
        annotations, (container,) = template["metadata"]["annotations"], template["spec"]["containers"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
        assert {"port": int(annotations["prometheus.io/port"]), "protocol": "TCP"} in rule["ports"]
        assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]


@pytest.mark.parametrize("name", SERVICES)
def test_a_stopping_pod_is_given_longer_than_the_service_takes_to_drain(name):
    """The pre-stop pause lets the entry and the Service stop routing to the pod first; then the
    service drains in three stages of at most DRAIN_SECONDS each (requests, messages, outbox)."""
    by_kind = {(r["kind"], r["metadata"]["name"]): r for r in resources()}
    pod = by_kind["Deployment", name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + 3 * ServiceSettings().drain_seconds
