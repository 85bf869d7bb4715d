"""Benchmark figures: collected by the benchmarks, written as JSON, as the generated part of
docs/benchmarks.md (between the two markers), with the machine and the versions they ran on, and
as charts (PNG, docs/charts/) drawn from the same figures."""

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

BEGIN, END = "<!-- results:begin (written by make bench) -->", "<!-- results:end -->"


def _run(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line), "?"
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    redis_info = _run("redis-cli", "-h", "127.0.0.1", "INFO", "server")
    return {
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{memory_kb / 1024 / 1024:.0f} GiB",
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "postgresql": _run("psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version").split(" ")[0],
        "redis": next((line.split(":")[1] for line in redis_info.splitlines() if line.startswith("redis_version")), "?"),
        "rabbitmq": _run("rabbitmqctl", "-q", "version"),
        "libraries": ", ".join(
            f"{name} {version(name)}" for name in ("aiohttp", "uvloop", "redis", "hiredis", "sqlalchemy", "asyncpg", "aio-pika")
        ),
    }


def chart_file(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") + ".png"


def draw(title: str, chart: dict, path: Path) -> None:
    """Bars per category: side by side per series, or stacked (``chart["stacked"]``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    categories = list(chart["values"])
    series = list(dict.fromkeys(name for values in chart["values"].values() for name in values))
    figure, axes = pyplot.subplots(figsize=(9, 4.2), dpi=100)
    width = 0.8 if chart["stacked"] else 0.8 / len(series)
    bottoms = [0.0] * len(categories)
    for i, name in enumerate(series):
        if chart["stacked"]:
            values = [chart["values"][c].get(name, 0.0) for c in categories]
            axes.bar(range(len(categories)), values, width, bottom=bottoms, label=name)
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        else:  # a series measured in only some categories (the floor books only) has bars there only
            measured = [(x, chart["values"][c][name]) for x, c in enumerate(categories) if name in chart["values"][c]]
            offsets = [x - 0.4 + width * (i + 0.5) for x, _ in measured]
            bars = axes.bar(offsets, [v for _, v in measured], width, label=name)
            axes.bar_label(bars, labels=[f"{v:,.0f}" if v >= 10 else f"{v:.2f}" for _, v in measured], fontsize=7)
    axes.set_xticks(range(len(categories)), categories, fontsize=7)
    axes.margins(y=0.1)
    if chart.get("log"):
        axes.set_yscale("log")
    axes.set_ylabel(chart["unit"])
    axes.set_title(f"{title} (measured {chart['measured']})", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


class Results:
    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.charts: dict[str, dict] = {}

    def row(self, table: str, **cells: object) -> None:
        self.tables.setdefault(table, []).append({name.replace("_", " "): str(value) for name, value in cells.items()})

    def bar(
        self, chart: str, unit: str, category: str, series: str, value: float, stacked: bool = False, log: bool = False
    ) -> None:
        """One bar of a chart: ``value`` (in ``unit``) of ``series`` in ``category`` (``log``: a
        logarithmic axis, for figures that differ by orders of magnitude)."""
        drawn = self.charts.setdefault(chart, {"unit": unit, "stacked": stacked, "log": log, "values": {}})
        drawn["values"].setdefault(category, {})[series] = round(value, 3)

    def markdown(self, about: dict[str, str], tables: dict[str, dict], charts: dict[str, dict]) -> str:
        lines = [BEGIN, "Machine: " + "; ".join(f"{k} {v}" for k, v in about.items()) + ".", ""]
        for title, table in tables.items():
            rows = table["rows"]
            columns = list(dict.fromkeys(c for row in rows for c in row))
            lines += [f"**{title}** (measured {table['measured']})", ""]
            lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(row.get(c, "") for c in columns) + " |" for row in rows]
            lines.append("")
        for title in charts:
            lines += [f"![{title}](charts/{chart_file(title)})", ""]
        return "\n".join([*lines, END])

    def write(self, json_path: Path, markdown_path: Path) -> None:
        """This run's tables and charts replace the ones of the same title; those this run did not
        measure (a single benchmark was run) are kept with the date they were measured."""
        about, when = machine(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        earlier = json.loads(json_path.read_text()) if json_path.exists() else {}
        kept_tables = {title: table for title, table in earlier.get("tables", {}).items() if title not in self.tables}
        tables = kept_tables | {title: {"measured": when, "rows": rows} for title, rows in self.tables.items()}
        charts = {title: chart for title, chart in earlier.get("charts", {}).items() if title not in self.charts} | {
            title: chart | {"measured": when} for title, chart in self.charts.items()
        }
        figures = {"machine": about, "tables": tables, "charts": charts}
        json_path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
        (markdown_path.parent / "charts").mkdir(exist_ok=True)
        for title in self.charts:
            draw(title, charts[title], markdown_path.parent / "charts" / chart_file(title))
        text = markdown_path.read_text()
        generated = self.markdown(about, tables, charts)
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + generated + text[text.index(END) + len(END) :]
        else:
            text += "\n## Latest run\n\n" + generated + "\n"
        markdown_path.write_text(text)
