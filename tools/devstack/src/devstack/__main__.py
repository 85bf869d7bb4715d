"""``python -m devstack run``: the whole system on this machine, until Ctrl-C (its servers started
first where they are not). ``servers``: only that. ``seed``: the demo into a system already running
(compose's seed step). ``compose-env``: compose's .env."""

import asyncio
import logging
import signal
import sys
from pathlib import Path

import aiohttp

from devstack.client import ApiClient, ApiError
from devstack.config import StackSettings
from devstack.prometheus import prometheus_graphs
from devstack.secrets import write_compose_env
from devstack.seed import DEMO_CLIENT, DEMO_PROFESSIONALS, seed_demo
from devstack.servers import ServerMissing, ensure_all
from devstack.stack import Stack


async def run() -> None:
    settings = StackSettings()
    stack = Stack(settings, sys.stdout)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await asyncio.to_thread(ensure_all, settings, lambda said: print(said, flush=True))
    await stack.start()
    try:
        created = await seed(settings)
        host, port = stack.smtp
        mail_note = (
            f"mail is kept in {settings.mail_dir.resolve()}/ (one .eml per mail)" if stack.mail else f"mail goes to {host}:{port}"
        )
        print(
            logins(settings, created)
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


async def seed(settings: StackSettings) -> bool:
    """The demo, through the public entry; False when it was there already."""
    async with aiohttp.ClientSession() as http:
        return await seed_demo(
            ApiClient(http, settings.public_url),
            settings.admin_email,
            settings.admin_password.get_secret_value(),
            settings.demo_timezone,
        )


def logins(settings: StackSettings, created: bool) -> str:
    demo_note = "demo seeded" if created else "demo already there"
    return (
        f"\n  Appointments is running: {settings.public_url}/  (the page; the API is under /api/v1; {demo_note})\n"
        f"  admin         {settings.admin_email} / {settings.admin_password.get_secret_value()}\n"
        f"  client        {DEMO_CLIENT[0]} / {DEMO_CLIENT[1]}\n"
        + "".join(f"  professional  {email} / {password}\n" for email, password, *_ in DEMO_PROFESSIONALS)
    )


async def seed_when_up(settings: StackSettings, seconds: float = 120) -> None:
    """Compose's seed step: the entry may answer before the gateway can sign anyone in, so signing
    in is tried again until it works; the seeding itself once (a failure says what failed)."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                await ApiClient(http, settings.public_url).sign_in(
                    settings.admin_email, settings.admin_password.get_secret_value()
                )
                break
            except (aiohttp.ClientError, ApiError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise SystemExit(f"the admin could not sign in at {settings.public_url}: {exc}") from exc
                await asyncio.sleep(2)
    print(logins(settings, await seed(settings)), flush=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd narrates every connection
    if sys.argv[1:] == ["compose-env"]:
        write_compose_env(Path(".env"))
        return
    try:
        if sys.argv[1:] == ["run"]:
            asyncio.run(run())
        elif sys.argv[1:] == ["servers"]:
            ensure_all(StackSettings())
        elif sys.argv[1:] == ["seed"]:
            asyncio.run(seed_when_up(StackSettings()))
        else:
            raise SystemExit("usage: python -m devstack run | servers | seed | compose-env")
    except ServerMissing as missing:
        raise SystemExit(str(missing)) from None


main()
