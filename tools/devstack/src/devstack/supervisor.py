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
    def __init__(self, name: str, args: list[str], env: Mapping[str, str], output: TextIO | Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.output = output
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
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
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if process.proc and process.proc.returncode is not None:
                raise ServiceFailed(f"{process.name} exited with {process.proc.returncode} while starting")
            try:
                async with http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=1)) as response:
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

    async def kill(self, name: str) -> Process:
        """SIGKILL a service, as a crash would; returns its (dead) process."""
        process = next(p for p in self.processes if p.name == name)
        process.proc.kill()
        await process.wait()
        return process

    async def restart(self, name: str, ready_url: str) -> None:
        """Start a killed service again, with the same command and environment."""
        old = next(p for p in self.processes if p.name == name)
        new = Process(old.name, old.args, old.env, old.output)
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
