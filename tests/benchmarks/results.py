"""Benchmark figures: collected by the benchmarks, written as JSON and as the generated part of
docs/benchmarks.md (between the two markers), with the machine and the versions they ran on."""

import json
import os
import platform
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


class Results:
    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, str]]] = {}

    def row(self, table: str, **cells: object) -> None:
        self.tables.setdefault(table, []).append({name.replace("_", " "): str(value) for name, value in cells.items()})

    def markdown(self, about: dict[str, str], tables: dict[str, dict]) -> str:
        lines = [BEGIN, "Machine: " + "; ".join(f"{k} {v}" for k, v in about.items()) + ".", ""]
        for title, table in tables.items():
            rows = table["rows"]
            columns = list(dict.fromkeys(c for row in rows for c in row))
            lines += [f"**{title}** (measured {table['measured']})", ""]
            lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(row.get(c, "") for c in columns) + " |" for row in rows]
            lines.append("")
        return "\n".join([*lines, END])

    def write(self, json_path: Path, markdown_path: Path) -> None:
        """This run's tables replace the ones of the same title; tables this run did not measure
        (a single benchmark was run) are kept with the date they were measured."""
        about, when = machine(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        earlier = json.loads(json_path.read_text()).get("tables", {}) if json_path.exists() else {}
        tables = {title: table for title, table in earlier.items() if isinstance(table, dict) and title not in self.tables} | {
            title: {"measured": when, "rows": rows} for title, rows in self.tables.items()
        }
        json_path.write_text(json.dumps({"machine": about, "tables": tables}, indent=2, ensure_ascii=False) + "\n")
        text = markdown_path.read_text()
        generated = self.markdown(about, tables)
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + generated + text[text.index(END) + len(END) :]
        else:
            text += "\n## Latest run\n\n" + generated + "\n"
        markdown_path.write_text(text)
