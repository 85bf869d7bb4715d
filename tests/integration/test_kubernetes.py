"""The Kubernetes manifests, checked offline: each overlay built with kustomize (kubectl's), valid
resources, checkov's findings, and every service fully configured, scaled and stopped gracefully."""

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from booking.settings import Settings as BookingSettings
from common.settings import ServiceSettings
from devstack.edge import EDGE, placeholders
from notifier.settings import Settings as NotifierSettings
from tests.integration.deployment import assert_configured, edge_image_environment, made_up_secrets

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
OVERLAYS = ["dev", "prod"]
SERVICES = ["gateway", "shifts", "availability", "booking", "notifier"]
CHECKOV = KUBERNETES.parents[1] / "tools" / "checkov" / ".venv" / "bin" / "checkov"


@functools.cache
def built(overlay: str) -> str:
    """The overlay as kustomize builds it: what ``kubectl apply -k`` would send."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (its kustomize) builds the overlays: `make kubernetes-checks` says where to get it"
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def resources(overlay: str = "prod") -> list[dict]:
    return [doc for doc in yaml.safe_load_all(built(overlay)) if doc]


def by_kind_and_name(overlay: str = "prod") -> dict[tuple[str, str], dict]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources(overlay)}


SECRET_NAMES = {
    line.split("=", 1)[0]
    for line in (KUBERNETES / "secrets.env.example").read_text().splitlines()
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


KEDA = {"ScaledObject", "TriggerAuthentication"}  # KEDA's own kinds: no schema in kubernetes-validate


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_builds_into_valid_kubernetes_resources(overlay, tmp_path):
    standard = [r for r in resources(overlay) if r["kind"] not in KEDA]
    (tmp_path / "built.yaml").write_text(yaml.safe_dump_all(standard))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", str(tmp_path / "built.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {r["metadata"].get("namespace") for r in resources(overlay)} == {f"appointments{'-dev' if overlay == 'dev' else ''}"}


# What checkov must find nothing of (issue 27): images tagged, every container's (init containers'
# too) requests and limits, no service-account token mounted, probes. The rest of its checks run
# too; what is skipped, and why, is in deploy/kubernetes/.checkov.yaml.
NAMED_CHECKS = {"CKV_K8S_14", "CKV_K8S_10", "CKV_K8S_12", "CKV_K8S_13", "CKV_K8S_38", "CKV_K8S_8", "CKV_K8S_9"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_in_what_an_overlay_builds(overlay, tmp_path):
    assert CHECKOV.exists(), "checkov is installed by `make kubernetes-checks` (tools/checkov/requirements.txt)"
    (tmp_path / "built.yaml").write_text(built(overlay))
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(KUBERNETES / ".checkov.yaml"), "-f", str(tmp_path / "built.yaml"), "-o", "json"],
        capture_output=True,
        text=True,
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [], failed
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert NAMED_CHECKS <= passed and not NAMED_CHECKS & skipped, (NAMED_CHECKS - passed, skipped)
    assert report["summary"]["passed"] > 100


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_comes_from_one_release_and_no_tag_is_latest(overlay):
    images = {
        c["image"]
        for r in resources(overlay)
        if r["kind"] == "Deployment"
        for c in [*r["spec"]["template"]["spec"].get("initContainers", []), *r["spec"]["template"]["spec"]["containers"]]
    }
    release = yaml.safe_load((KUBERNETES / "overlays" / overlay / "release.yaml").read_text())["data"]  # said once
    prefix = f"{release['registry']}/" if "registry" in release else ""
    assert images == {f"{prefix}appointments-{name}:{release['tag']}" for name in [*SERVICES, "edge"]}
    assert release["tag"] != "latest"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_fully_configured_and_probed(name):
    by_kind = by_kind_and_name()
    deployment = by_kind["Deployment", name]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    environment = by_kind["ConfigMap", "appointments-config"]["data"] | container_environment(container)
    assert_configured(name, environment)
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["automountServiceAccountToken"] is False
    for each in [*pod.get("initContainers", []), container]:
        assert each["resources"]["requests"]["cpu"] and each["resources"]["limits"]["memory"], each["name"]
    port = int(environment["HTTP_PORT"])
    assert by_kind["Service", name]["spec"]["ports"][0]["port"] == port


def _scalers(overlay: str) -> dict[str, dict]:
    """What sets each Deployment's replicas: its HorizontalPodAutoscaler or KEDA's ScaledObject."""
    scalers: dict[str, dict] = {}
    for r in resources(overlay):
        if r["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
            target = r["spec"]["scaleTargetRef"]["name"]
            assert target not in scalers, f"{target} has two autoscalers"  # they would fight
            scalers[target] = r
    return scalers


@pytest.mark.parametrize("name", [*SERVICES, "edge"])
def test_each_deployment_is_scaled_by_one_autoscaler_and_kept_up_through_disruptions(name):
    by_kind = by_kind_and_name()
    assert "replicas" not in by_kind["Deployment", name]["spec"]  # the autoscaler's to set, never reset by an apply
    scaler = _scalers("prod")[name]
    if scaler["kind"] == "ScaledObject":
        assert scaler["spec"]["minReplicaCount"] >= 2
    else:
        assert scaler["spec"]["minReplicas"] >= 2
        assert scaler["spec"]["metrics"] == [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
        ]
    budget = by_kind["PodDisruptionBudget", name]["spec"]
    assert budget["maxUnavailable"] == 1 and budget["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    in_dev = _scalers("dev").get(name)  # none: the Deployment's default, one
    assert in_dev is None or in_dev["spec"]["minReplicas"] == 1  # one of each on a cluster of one's own


@pytest.mark.parametrize("name, queue", [("booking", BookingSettings().queue_name), ("notifier", NotifierSettings().queue_name)])
def test_the_consumers_scale_on_the_depth_of_the_queue_they_consume(name, queue):
    scaler = _scalers("prod")[name]
    assert scaler["kind"] == "ScaledObject"
    (trigger,) = [t for t in scaler["spec"]["triggers"] if t["type"] == "rabbitmq"]
    assert trigger["metadata"]["queueName"] == queue and trigger["metadata"]["mode"] == "QueueLength"
    assert int(trigger["metadata"]["value"]) > 0
    by_kind = by_kind_and_name()
    (secret,) = by_kind["TriggerAuthentication", trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
    assert secret == {"parameter": "host", "name": "appointments-secrets", "key": "RABBITMQ_URL"}
    assert "RABBITMQ_URL" in SECRET_NAMES
    assert all(r["kind"] not in KEDA for r in resources("dev"))  # a cluster of one's own needs no KEDA


def test_clients_come_in_over_tls_through_the_ingress_class_named():
    (ingress,) = [r for r in resources() if r["kind"] == "Ingress"]
    assert ingress["spec"]["ingressClassName"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"] and tls["hosts"] == [rule["host"] for rule in ingress["spec"]["rules"]]


def test_clients_come_in_only_through_the_ingress_to_the_edge():
    exposed = {
        r["metadata"]["name"] for r in resources() if r["kind"] == "Service" and r["spec"].get("type", "ClusterIP") != "ClusterIP"
    }
    assert exposed == set()
    (ingress,) = [r for r in resources() if r["kind"] == "Ingress"]
    backends = {p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert backends == {"edge"}


def test_the_edge_routes_to_each_service_where_it_listens():
    by_kind = by_kind_and_name()
    (container,) = by_kind["Deployment", "edge"]["spec"]["template"]["spec"]["containers"]
    environment = {e["name"]: e["value"] for e in container["env"]}
    assert placeholders() <= environment.keys() | edge_image_environment()
    for name in ("gateway", "shifts", "availability", "booking"):
        host, port = re.fullmatch(r"server ([a-z]+):(\d+);", environment[f"{name.upper()}_SERVERS"]).groups()
        assert (host, int(port)) == (name, by_kind["Service", name]["spec"]["ports"][0]["port"])


def test_no_secret_lives_in_the_manifests_and_each_pod_reads_only_its_own():
    assert not [r for r in resources() if r["kind"] == "Secret"]
    text = "\n".join(p.read_text() for p in KUBERNETES.rglob("*.yaml"))
    assert "guest:guest" not in text and "secretRef" not in text  # never the whole Secret into a pod
    by_kind = by_kind_and_name()
    read = {}
    for name in SERVICES:
        containers = by_kind["Deployment", name]["spec"]["template"]["spec"]["containers"]
        read[name] = {v["valueFrom"]["secretKeyRef"]["key"] for c in containers for v in c.get("env", []) if "valueFrom" in v}
    assert "JWT_SIGNING_KEY" in read["gateway"]
    assert not any("JWT_SIGNING_KEY" in keys for n, keys in read.items() if n != "gateway")
    assert read["availability"] <= {"REDIS_URL", "RABBITMQ_URL"}  # it reads the counters: no key of its own


@pytest.mark.parametrize("name", [*SERVICES, "edge"])
def test_pods_run_as_a_numeric_non_root_user_on_a_read_only_root(name):
    by_kind = by_kind_and_name()
    pod = by_kind["Deployment", name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and int(pod["securityContext"]["runAsUser"]) > 0
    dockerfile = EDGE / "Dockerfile" if name == "edge" else KUBERNETES.parents[1] / "Dockerfile"
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
    by_kind = by_kind_and_name()
    pod = by_kind["Deployment", name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + 3 * ServiceSettings().drain_seconds
