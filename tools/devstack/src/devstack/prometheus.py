"""Prometheus on this machine (Debian's ``prometheus`` package), scraping every process of the
stack, with the alerting and recording rules of ``deploy/prometheus/rules.yml``."""

import json
import shutil
from pathlib import Path
from urllib.parse import urlencode

from devstack.supervisor import Process

RULES = Path(__file__).resolve().parents[4] / "deploy" / "prometheus" / "rules.yml"


def prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError("prometheus is not installed: `PROMETHEUS_PORT=9090 make run` installs it (Debian's package)")
    return found


def scrape_config(targets: dict[str, list[str]], scrape_seconds: float) -> dict:
    """One job per service, one target per process (each has its own /metrics)."""
    interval = f"{int(scrape_seconds * 1000)}ms"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": service, "static_configs": [{"targets": addresses}]} for service, addresses in targets.items()
        ],
    }


def prometheus_process(home: Path, port: int, targets: dict[str, list[str]], scrape_seconds: float, output) -> Process:
    """Prometheus listening on 127.0.0.1:``port``, its configuration and data under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(targets, scrape_seconds), indent=2))  # JSON is YAML
    args = [
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",  # its start-up narrative would bury the stack's banner
    ]
    return Process("prometheus", args, {}, output, program=prometheus())


# What the README's first look at Prometheus shows: bookings per second and their p99, one above the other.
FIRST_LOOK = (
    "sum(job:bookings_confirmed:rate1m)",
    'job_method_route:http_server_request_duration_seconds:p99_5m{job="booking", method="POST", route="/bookings"}',
)


def prometheus_graphs(url: str) -> str:
    """Prometheus' graph page with the booking rate and p99, at once."""
    panels = {}
    for index, expr in enumerate(FIRST_LOOK):
        panels |= {f"g{index}.expr": expr, f"g{index}.tab": "0", f"g{index}.range_input": "15m"}
    return f"{url}/graph?{urlencode(panels)}"
