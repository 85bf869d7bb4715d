"""Where the CPU goes during a workload: seconds per process group, read from /proc (psutil)."""

import psutil

SERVERS = {"postgres": "postgresql", "redis-server": "redis", "beam.smp": "rabbitmq"}


def with_children(named_pids: dict[int, str]) -> dict[int, str]:
    """The processes and their children under the same names (nginx's workers under its master's)."""
    out = dict(named_pids)
    for pid, name in named_pids.items():
        out |= {child.pid: name for child in psutil.Process(pid).children(recursive=True)}
    return out


class CpuMeter:
    """CPU seconds used between ``start`` and ``stop`` by our processes (named by pid) and the servers."""

    def __init__(self, named_pids: dict[int, str]) -> None:
        self._names = named_pids
        self._before: dict[int, tuple[str, float]] = {}

    def _now(self) -> dict[int, tuple[str, float]]:
        seen = {}
        for process in psutil.process_iter(["pid", "name"]):
            group = self._names.get(process.info["pid"]) or SERVERS.get(process.info["name"])
            if group:
                try:
                    times = process.cpu_times()
                    seen[process.info["pid"]] = (group, times.user + times.system)
                except psutil.NoSuchProcess:
                    pass
        return seen

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for pid, (group, seconds) in self._now().items():
            used[group] = used.get(group, 0.0) + seconds - self._before.get(pid, (group, 0.0))[1]
        return used
