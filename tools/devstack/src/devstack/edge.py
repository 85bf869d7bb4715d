"""The public entry on this machine: nginx, configured from ``deploy/edge/`` (the same nginx.conf and
routes its image uses in compose and Kubernetes), in a folder of its own, in the foreground."""

import re
import shutil
from pathlib import Path

from devstack.supervisor import Process

EDGE = Path(__file__).resolve().parents[4] / "deploy" / "edge"
TEMPLATES = ("nginx.conf.template", "routes.conf.template")
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


def placeholders() -> set[str]:
    """The names the templates need filled (the image fills them from its environment)."""
    return {name for template in TEMPLATES for name in PLACEHOLDER.findall((EDGE / template).read_text())}


def nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # /usr/sbin: not on every user's PATH
    if found is None:
        raise RuntimeError("nginx is not installed: `make edge` installs it (Debian's nginx-light and libnginx-mod-http-lua)")
    return found


def render(template: str, values: dict[str, str]) -> str:
    """``deploy/edge/<template>`` with every ``${NAME}`` filled; a missing value is an error, never
    an empty route."""
    text = (EDGE / template).read_text()
    missing = sorted(set(PLACEHOLDER.findall(text)) - values.keys())
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def servers(addresses: list[str]) -> str:
    """An upstream's servers, as the template's ``*_SERVERS`` placeholders want them. Never marked
    down (``max_fails=0``): a process on this machine that is gone refuses at once and the next
    one is asked, and one restarted is used again at once, not after nginx's 10 s."""
    return " ".join(f"server {address} max_fails=0;" for address in addresses)


# What each answer's process was (its upstream address) and its status: how a test sees that every
# instance of a service did part of the work. Off unless asked for: it costs a write per request.
UPSTREAM_LOG = "log_format upstreams '$upstream_addr $status'; access_log {home}/upstreams.log upstreams;"


def edge_process(
    name: str,
    home: Path,
    listen: str,
    upstreams: dict[str, list[str]],
    output,
    workers: int | str = "auto",
    upstream_log: bool = False,
    group: str | None = None,
) -> Process:
    """nginx listening on ``listen`` (host:port), routing to ``upstreams`` (gateway, shifts,
    availability, booking: host:port of each of their processes), its files under ``home``;
    ``upstream_log``: which process answered each request, in ``home/upstreams.log``."""
    home.mkdir(parents=True, exist_ok=True)
    values = {"EDGE_LISTEN": listen} | {f"{service.upper()}_SERVERS": servers(each) for service, each in upstreams.items()}
    (home / "routes.conf").write_text(render("routes.conf.template", values))
    access_log = UPSTREAM_LOG.format(home=home) if upstream_log else "access_log off;"
    main = {"EDGE_HOME": str(home), "EDGE_WORKERS": str(workers), "EDGE_ACCESS_LOG": access_log}
    (home / "nginx.conf").write_text(render("nginx.conf.template", main))
    args = ["-p", str(home), "-c", str(home / "nginx.conf"), "-g", "daemon off;"]
    return Process(name, args, {}, output, program=nginx(), group=group)
