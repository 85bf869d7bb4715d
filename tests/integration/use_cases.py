"""A service's use cases in this process, on a database of their own, through the real unit of
work, with every event its committed units of work published recorded in order."""

import importlib.util
import uuid
from pathlib import Path

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import create_engine, session_factory
from common.migrations import migrate
from common.outbox import Outbox
from common.unit_of_work import SessionUnitOfWork


async def migrated_database(servers, service: str) -> AsyncEngine:
    url = servers.database_url(f"{service}_{uuid.uuid4().hex[:8]}")
    await migrate(Path(importlib.util.find_spec(service).submodule_search_locations[0]), url)
    return create_engine(url, pool_size=2)


def recording_units_of_work(engine: AsyncEngine, outbox_table: Table) -> tuple:
    """(units of work for the service, the list of events they published once committed)."""
    published: list = []

    class Recording(SessionUnitOfWork):
        async def _commit(self) -> None:
            await super()._commit()
            published.extend(self.events)

    sessions, outbox = session_factory(engine), Outbox(outbox_table)
    return (lambda: Recording(sessions, outbox, wake_relay=lambda: None)), published
