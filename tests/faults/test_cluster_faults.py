"""The Redis fault on a Redis Cluster of three masters (no replicas), under the fault suite's load:
one master shut down without saving and started again, empty. While it is away the cluster
answers nothing (no replica takes its slots over); once it is back, the events its slots held, and
only those, are rebuilt from the record. The checker: nothing lost, duplicated or overbooked,
every mail once, counters equal to the record."""

import asyncio
import subprocess
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from devstack.client import ApiClient
from tests.conftest import client_session, running_system
from tests.faults.load import SteadyLoad, scene
from tests.faults.test_fault_suite import during, settle_and_check

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
async def on_cluster(servers, redis_cluster_nodes, tmp_path_factory) -> AsyncIterator:
    logs = tmp_path_factory.mktemp("cluster-fault-logs")
    overrides = {"HOLD_SECONDS": "3", "RECONCILE_SECONDS": "4"}
    async with running_system(servers, logs, overrides, name="cluster_fault", redis_cluster=redis_cluster_nodes.url) as running:
        yield running


async def test_one_master_of_the_cluster_shut_down_without_saving_and_started_again(on_cluster, redis_cluster_nodes):
    nodes = redis_cluster_nodes
    redis = RedisCluster.from_url(nodes.url, decode_responses=True)
    try:
        async with client_session() as http:
            load = SteadyLoad(on_cluster, await scene(ApiClient(http, on_cluster.public_url), on_cluster))
            event_key = f"{on_cluster.settings.redis_key_prefix}:{{evt:{load.scene.event['id']}}}:event"
            await redis.initialize()  # the map of slots to nodes
            port = redis.get_node_from_key(event_key).port  # the master that holds the load's event

            async def lose_a_master() -> int:
                await asyncio.sleep(6)
                await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", str(port), "SHUTDOWN", "NOSAVE"], capture_output=True)
                await asyncio.sleep(1)
                await asyncio.to_thread(nodes.start, port)
                await asyncio.to_thread(nodes.wait_until_whole)
                return 1

            faults = await during(load, lose_a_master)
            await settle_and_check("redis cluster: one master SHUTDOWN NOSAVE and restart", load, on_cluster, redis, faults)
    finally:
        await redis.aclose()
