"""Runs every service as its own process, the way ops would, and stops them all together."""

import asyncio
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import aiohttp

log = logging.getLogger(__name__)


class ServiceFailed(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the supervisor dies, even by SIGKILL (Linux), so nothing is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Process:
    """``program`` (default: this Python) with ``args``, its output to ``output``; ``group``: the
    service it is a process of (default: its name)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        output: TextIO | Path,
        program: str = sys.executable,
        group: str | None = None,
    ) -> None:
        self.name = name
        self.group = group or name
        self.program = program
        self.args = args
        self.env = env
        self.output = output
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.program,
            *self.args,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the children in order
            preexec_fn=_die_with_parent,
        )
        self._pump = asyncio.create_task(self._forward_output())

    async def _forward_output(self) -> None:
        assert self.proc and self.proc.stdout
        sink = self.output.open("ab") if isinstance(self.output, Path) else None
        try:
            async for line in self.proc.stdout:
                if sink:
                    sink.write(line)
                    sink.flush()
                else:
                    self.output.write(f"{self.name:>12} | {line.decode(errors='replace')}")
                    self.output.flush()
        finally:
            if sink:
                sink.close()

    async def wait(self) -> int:
        assert self.proc
        code = await self.proc.wait()
        if self._pump:
            await self._pump
        return code

    async def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), grace)
        except TimeoutError:
            self.proc.kill()
            await self.wait()


async def wait_ready(url: str, process: Process, timeout: float = 30.0) -> None:
    """Until ``url`` (a readiness route) answers 200."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if process.proc and process.proc.returncode is not None:
                raise ServiceFailed(f"{process.name} exited with {process.proc.returncode} while starting")
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise ServiceFailed(f"{process.name} not ready at {url} within {timeout}s")
            await asyncio.sleep(0.1)


class Supervisor:
    """Starts services, waits until each is ready, and stops them all (reverse order) on request."""

    def __init__(self) -> None:
        self.processes: list[Process] = []

    async def start(self, services: list[tuple[Process, str]]) -> None:
        """Start every (process, readiness URL) at once, then wait until all are ready."""
        for process, _ in services:
            await process.start()
            self.processes.append(process)
        await asyncio.gather(*(wait_ready(url, process) for process, url in services))

    def of(self, group: str) -> list[Process]:
        return [p for p in self.processes if p.group == group]

    async def kill(self, group: str) -> None:
        """SIGKILL every process of a service, as a crash of the service would."""
        for process in self.of(group):
            process.proc.kill()
            await process.wait()

    async def restart(self, group: str, ready_urls: list[str], env: Mapping[str, str | None] | None = None) -> None:
        """Start a killed service's processes again, with the same commands and environments
        (``env``: some of it changed from now on, e.g. a server reached through a fault proxy; None
        removes a variable)."""
        for old, ready_url in zip(self.of(group), ready_urls, strict=True):
            await self.renew(old, ready_url, env)

    async def renew(self, old: Process, ready_url: str, env: Mapping[str, str | None] | None = None) -> None:
        """Start one process again in the place of ``old`` (stopped), as ``restart`` does."""
        changed = {**old.env, **(env or {})}
        new_env = {name: value for name, value in changed.items() if value is not None}
        new = Process(old.name, old.args, new_env, old.output, old.program, old.group)
        self.processes[self.processes.index(old)] = new
        await new.start()
        await wait_ready(ready_url, new)

    async def first_exit(self) -> Process:
        waits = {asyncio.create_task(p.wait()): p for p in self.processes}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[done.pop()]

    async def stop_all(self) -> None:
        for process in reversed(self.processes):
            await process.stop()
        self.processes.clear()
