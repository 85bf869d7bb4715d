"""The alerting and recording rules (deploy/prometheus) and the Grafana dashboard (deploy/grafana):
valid to Prometheus' own tool, firing when they should in its unit tests, and never asking for a
metric the services do not export."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import booking.metrics  # noqa: F401 (each service's own metrics, registered on import)
import common.metrics  # noqa: F401
import notifier.metrics  # noqa: F401

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "appointments.json"
# PromQL words that are not metrics: functions are followed by "(", these are not.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "inf", "nan"}
PROMETHEUS_OWN = {"up", "ALERTS"}  # written by Prometheus itself, per target and per alert


def promtool(*args: str) -> subprocess.CompletedProcess:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: `make test` installs it (Debian's package prometheus)")
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent)


def exported_names() -> set[str]:
    """Every sample name the services' registries can produce."""
    names = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}.get(family.type, [""])
        names |= {family.name + suffix for suffix in suffixes}
    return names


def metric_names(promql: str) -> set[str]:
    """The metric names an expression reads (not labels, functions, keywords, durations or strings)."""
    text = re.sub(r'"[^"]*"', "", promql)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # grouping labels
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\()\b", text)
    return {w for w in words if w.lower() not in KEYWORDS and not re.fullmatch(r"\d+[smhdwy]", w)}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_in_their_situations_and_stay_quiet_on_healthy_series():
    tested = promtool("test", "rules", "tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook_line():
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    tests = yaml.safe_load((RULES.parent / "tests.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts == tested
    readme = (DEPLOY.parent / "README.md").read_text()
    assert not [a for a in alerts if f"`{a}`" not in readme], "an alert without its runbook line in the README"


def test_rules_and_dashboard_ask_only_for_metrics_the_services_export():
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = exported_names() | recorded | PROMETHEUS_OWN
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert queries and dashboard["uid"]
    expressions = [rule["expr"] for rule in rules()] + queries
    unknown = {name for expr in expressions for name in metric_names(expr)} - known
    assert not unknown, f"not exported by any service: {sorted(unknown)}"
    # The dashboard shows what the issue asks an operator to see.
    read = set().union(*(metric_names(q) for q in queries))
    assert {"job:bookings_confirmed:rate1m", "job_reason:bookings_refused:rate1m", "mails_total"} <= read
    assert {"job_method_route:http_server_request_duration_seconds:p99_5m", "job:message_lag_seconds:p99_5m"} <= read
    assert {"outbox_oldest_pending_age_seconds", "dead_letter_messages", "queue_messages"} <= read


def test_the_name_check_sees_a_misspelt_metric():
    assert metric_names('sum by (job) (rate(bookings_confirmd_total{job="booking"}[5m])) > 0') == {"bookings_confirmd_total"}
