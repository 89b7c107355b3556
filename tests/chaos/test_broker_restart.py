"""RabbitMQ restarted under running MNs: nothing confirmed is lost."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mn.bus import CloudBus
from mn.errors import OperationError
from mn.ids import new_uuid
from mn.ring import Ring
from mn.services.management_node import GetRingMsg
from tests.support import probe
from tests.support.cluster import start_cluster
from tests.support.services import restart_rabbitmq

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.slow]

MESSAGES = 600
RECOVERY_LIMIT = 60.0


@pytest.fixture
def cluster(tmp_path, mariadb_url, amqp_url):
    nodes = start_cluster(tmp_path, 2, db_url=mariadb_url, bus_url=amqp_url, services=probe.SPEC)
    yield nodes
    for node in nodes:
        node.stop()


async def wait_until_serving(client: CloudBus, nodes) -> float:
    started = time.monotonic()
    while True:
        try:
            await asyncio.gather(*(client.call(GetRingMsg(), node=n.uuid, timeout=2) for n in nodes))
            return time.monotonic() - started
        except OperationError:
            assert time.monotonic() - started < RECOVERY_LIMIT, "MNs did not come back after the restart"
            await asyncio.sleep(0.5)


async def test_confirmed_messages_survive_a_broker_restart(cluster, amqp_url):
    client = CloudBus(amqp_url, member=False, ring=Ring(n.uuid for n in cluster), call_timeout=10)
    await client.start()
    confirmed: list[int] = []
    failed: list[tuple[int, str]] = []
    restart_done = threading.Event()
    downtime: list[float] = []

    def restart() -> None:
        downtime.append(restart_rabbitmq())
        restart_done.set()

    restarter = None
    try:
        for seq in range(MESSAGES):
            if seq == MESSAGES // 4:
                restarter = threading.Thread(target=restart)
                restarter.start()
            try:
                await client.send(probe.ProbeCountMsg(resourceUuid=new_uuid(), seq=seq))
                confirmed.append(seq)
            except OperationError as exc:
                failed.append((seq, str(exc)))
            if seq > MESSAGES // 4 and not restart_done.is_set():
                await asyncio.sleep(0.02)  # keep sending across the outage
        await asyncio.get_running_loop().run_in_executor(None, restarter.join)
        recovered = await wait_until_serving(client, cluster)
        print(f"\nbroker down {downtime[0]:.1f}s; MNs serving again {recovered:.1f}s after; "
              f"{len(confirmed)} confirmed, {len(failed)} failed clearly")

        # Every confirmed message is handled, once, by some MN.
        received: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replies = await asyncio.gather(*(client.call(probe.ProbeCountsMsg(), node=n.uuid)
                                             for n in cluster))
            received = [seq for r in replies for seq in r.seqs]
            if set(confirmed) <= set(received):
                break
            await asyncio.sleep(0.5)
        missing = sorted(set(confirmed) - set(received))
        assert not missing, f"{len(missing)} confirmed messages lost, e.g. {missing[:10]}"
        assert len(received) == len(set(received)), "a message was handled twice"
        assert len(confirmed) >= MESSAGES // 2
        for seq, reason in failed:
            assert "SYS.1011" in reason, reason
    finally:
        if restarter is not None:
            restarter.join()
        await client.stop()
