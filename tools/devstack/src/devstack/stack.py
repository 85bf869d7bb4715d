"""The whole system on this machine: databases migrated, every service started, mail caught."""

import importlib.util
import os
import signal
import time
from pathlib import Path
from typing import TextIO

from common.migrations import migrate
from devstack.config import EDGE, SERVICES, SERVICES_WITH_DATABASE, StackSettings
from devstack.edge import edge_process
from devstack.mailsink import MailSink
from devstack.prometheus import prometheus_process
from devstack.supervisor import Process, Supervisor


class Stack:
    def __init__(self, settings: StackSettings, output: TextIO | Path) -> None:
        self.settings = settings
        self.output = output
        self.supervisor = Supervisor()
        self.mail: MailSink | None = None

    @property
    def smtp(self) -> tuple[str, int]:
        if self.settings.smtp_host:
            return self.settings.smtp_host, self.settings.smtp_port or 25
        assert self.mail is not None
        return self.mail.host, self.mail.port

    def _output_of(self, service: str) -> TextIO | Path:
        return self.output / f"{service}.log" if isinstance(self.output, Path) else self.output

    async def start(self, mail_sink: MailSink | None = None) -> None:
        """Mail first (unless SMTP_HOST points elsewhere), then migrations, then the services, then
        the public entry in front of them."""
        if not self.settings.smtp_host:
            self.mail = mail_sink or MailSink(port=self.settings.smtp_port or 1025, directory=self.settings.mail_dir)
            self.mail.start()
        host, port = self.smtp
        for service in SERVICES_WITH_DATABASE:
            # One after another: alembic's context is process-global.
            package_dir = Path(importlib.util.find_spec(service).submodule_search_locations[0])
            await migrate(package_dir, self.settings.database_for(service))
        services = [
            (
                Process(
                    service if index == 0 else f"{service}-{index + 1}",
                    ["-m", service],
                    self.settings.service_env(service, host, port, index),
                    self._output_of(service),
                    group=service,
                ),
                self._ready_url(service, index),
            )
            for service in SERVICES
            for index in range(self.settings.process_count(service))
        ]
        entries = [
            (
                edge_process(
                    EDGE if index == 0 else f"{EDGE}-{index + 1}",
                    self.edge_dir(index),
                    self.settings.public_url_of(index).removeprefix("http://"),
                    self.settings.upstreams(),
                    self._output_of(EDGE),
                    upstream_log=self.settings.edge_upstream_log,
                    group=EDGE,
                ),
                self._ready_url(EDGE, index),
            )
            for index in range(self.settings.process_count(EDGE))
        ]
        try:
            await self.supervisor.start(services)
            await self.supervisor.start(entries)
            if self.settings.prometheus_url:
                await self.supervisor.start([(self._prometheus(), f"{self.settings.prometheus_url}/-/ready")])
        except BaseException:
            await self.stop()
            raise

    def _prometheus(self) -> Process:
        settings = self.settings
        assert settings.prometheus_port is not None
        return prometheus_process(
            settings.prometheus_dir.resolve(),
            settings.prometheus_port,
            settings.scrape_targets(),
            settings.prometheus_scrape_seconds,
            self._output_of("prometheus"),
        )

    async def kill(self, service: str) -> None:
        """SIGKILL every process of one service, as a crash would."""
        await self.supervisor.kill(service)

    def _ready_url(self, service: str, index: int = 0) -> str:
        """Where a process says it is ready: a service's own /readyz; the entry's /healthz (it
        never lets a service's /readyz through)."""
        if service == EDGE:
            return f"{self.settings.public_url_of(index)}/healthz"
        return f"{self.settings.url_of(service, index)}/readyz"

    def edge_dir(self, index: int) -> Path:
        """An entry's folder (its configuration, and its log of upstreams where asked for)."""
        home = self.settings.edge_dir.resolve()
        return home if index == 0 else home / f"entry-{index + 1}"

    async def restart(self, service: str, env: dict[str, str | None] | None = None) -> None:
        ready = [self._ready_url(service, i) for i in range(self.settings.process_count(service))]
        await self.supervisor.restart(service, ready, env)

    async def stop_instance(self, service: str, index: int, sig: int = signal.SIGTERM) -> float:
        """Signal one process of a service (SIGTERM: as an orchestrator stops it; SIGKILL: a crash)
        and wait until it has exited; the seconds that took."""
        process = self.supervisor.of(service)[index]
        started = time.monotonic()
        if sig == signal.SIGKILL:  # a crash takes the process's children too (nginx's workers), as a container's would
            os.killpg(process.proc.pid, sig)
        else:
            process.proc.send_signal(sig)
        await process.wait()
        return time.monotonic() - started

    async def start_instance(self, service: str, index: int) -> None:
        """Start one stopped process of a service again, and wait until it is ready."""
        await self.supervisor.renew(self.supervisor.of(service)[index], self._ready_url(service, index))

    async def stop(self) -> None:
        await self.supervisor.stop_all()
        if self.mail is not None:
            self.mail.stop()
