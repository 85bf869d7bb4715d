"""``python -m devstack run``: the whole system on this machine, until Ctrl-C."""

import asyncio
import logging
import signal
import sys
from pathlib import Path

import aiohttp

from devstack.client import ApiClient
from devstack.config import StackSettings
from devstack.prometheus import prometheus_graphs
from devstack.secrets import write_compose_env
from devstack.seed import DEMO_CLIENT, DEMO_PROFESSIONALS, seed_demo
from devstack.stack import Stack


async def run() -> None:
    settings = StackSettings()
    stack = Stack(settings, sys.stdout)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stack.start()
    try:
        async with aiohttp.ClientSession() as http:
            created = await seed_demo(
                ApiClient(http, settings.public_url),
                settings.admin_email,
                settings.admin_password.get_secret_value(),
                settings.demo_timezone,
            )
        host, port = stack.smtp
        mail_note = (
            f"mail is kept in {settings.mail_dir.resolve()}/ (one .eml per mail)" if stack.mail else f"mail goes to {host}:{port}"
        )
        demo_note = "demo seeded" if created else "demo already there"
        print(
            f"\n  Appointments is running: {settings.public_url}/  (the page; the API is under /api/v1; {demo_note})\n"
            f"  admin         {settings.admin_email} / {settings.admin_password.get_secret_value()}\n"
            f"  client        {DEMO_CLIENT[0]} / {DEMO_CLIENT[1]}\n"
            + "".join(f"  professional  {email} / {password}\n" for email, password, *_ in DEMO_PROFESSIONALS)
            + f"  SMTP          {host}:{port}; {mail_note}\n"
            + (f"  Prometheus    {prometheus_graphs(settings.prometheus_url)}\n" if settings.prometheus_url else "")
            + "  Ctrl-C stops everything.\n",
            flush=True,
        )
        exited = asyncio.create_task(stack.supervisor.first_exit())
        stop = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            print(f"{exited.result().name} stopped unexpectedly; stopping everything", file=sys.stderr)
        exited.cancel()
        stop.cancel()
    finally:
        print("stopping every service…", flush=True)
        await stack.stop()
        print("all stopped.", flush=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd narrates every connection
    if sys.argv[1:] == ["compose-env"]:
        write_compose_env(Path(".env"))
        return
    if sys.argv[1:] != ["run"]:
        raise SystemExit("usage: python -m devstack run | compose-env")
    asyncio.run(run())


main()
