"""The whole system on a Redis Cluster of three masters (``REDIS_CLUSTER``): the end-to-end story
as on one server, then one master restarted empty under the running services."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio.cluster import RedisCluster

from booking.adapters.capacity import CapacityStore
from common.roles import Role
from devstack.client import ApiClient
from tests.conftest import client_session, running_system
from tests.integration.helpers import (
    add_shift,
    create_event,
    create_professional,
    decoded,
    local,
    sign_in_admin,
    wait_for_availability,
)
from tests.integration.test_end_to_end import test_admin_professional_and_clients_book_through_the_gateway as story

UTC = ZoneInfo("UTC")


@pytest.fixture(scope="module")
async def on_cluster(servers, redis_cluster, tmp_path_factory) -> AsyncIterator:
    logs = tmp_path_factory.mktemp("cluster-logs")
    overrides = {"HOLD_SECONDS": "3", "RECONCILE_SECONDS": "4"}
    async with running_system(servers, logs, overrides, name="cluster", redis_cluster=redis_cluster) as running:
        yield running


async def test_the_end_to_end_story_on_a_cluster(on_cluster):
    async with client_session() as http:
        await story(ApiClient(http, on_cluster.public_url), on_cluster)


async def test_a_master_restarted_empty_is_rebuilt_alone_and_clients_see_what_they_saw(on_cluster):
    async with client_session() as http:
        api = ApiClient(http, on_cluster.public_url)
        admin = await sign_in_admin(api, on_cluster)
        day = date.today() + timedelta(days=4)
        events = []
        for n in range(6):
            event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="09:00", closes_at="11:00")
            pro, _ = await create_professional(api, admin, name=f"Dr. Shard {n}")
            await add_shift(admin, event, local(day, 9, 0, UTC), local(day, 11, 0, UTC), 2, professional=pro)
            events.append(event)
        client = api.as_user(on_cluster.token_for(Role.CLIENT))
        for event in events:
            await wait_for_availability(api, event["id"], day, lambda b: b["slots"][0]["remaining"] == 2)
            await client.call(
                "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 9, 0, UTC).isoformat()}
            )
        query = {"date": day.isoformat()}
        # What clients see once each booking shows (an answer may lag the counters by up to 200 ms).
        seen = [await wait_for_availability(api, e["id"], day, lambda b: b["slots"][0]["remaining"] == 1) for e in events]

        redis = RedisCluster.from_url(on_cluster.settings.redis_url, decode_responses=True)
        try:
            store = CapacityStore(redis, on_cluster.settings.redis_key_prefix)
            ids = [uuid.UUID(e["id"]) for e in events]
            before = {e: decoded(await store.raw(e)) for e in ids}
            node_of = {e: redis.get_node_from_key(store.keys(e).event).name for e in ids}
            lost = next(iter(set(node_of.values())))
            log = on_cluster.logs / "booking.log"  # both booking processes write it
            logged_before = len(log.read_text())
            await redis.flushall(target_nodes=redis.get_node(node_name=lost))
            deadline = asyncio.get_running_loop().time() + 20
            while {e: decoded(await store.raw(e)) for e in ids} != before:
                assert asyncio.get_running_loop().time() < deadline, "the lost master's events were never rebuilt"
                await asyncio.sleep(0.2)
        finally:
            await redis.aclose()
        assert [await api.call("GET", "/availability", params={"event_id": e["id"], **query}) for e in events] == seen
        held = {e for e, node in node_of.items() if node == lost}
        rebuilt = {e for e in ids if f"rebuilt the counters of event {e}" in log.read_text()[logged_before:]}
        print(f"one master of three restarted empty: its {len(held)} of {len(ids)} events rebuilt, the others untouched")
        assert rebuilt == held
