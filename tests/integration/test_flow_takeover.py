"""Durable flow chains across real MN processes on MariaDB and RabbitMQ.

Three MNs load the test chains (``ZSTACK_FLOW_DIRS``) and a test plugin
installed as a real distribution (a ``*.dist-info`` on their PYTHONPATH).
The steps journal their runs and rollbacks, with the MN that did them, to
a file the test reads.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlalchemy import select

from mn.db import Database
from mn.db.models.flow_chain import FlowChainVO
from mn.errors import OperationError
from mn.flow import FlowRecord, FlowState
from mn.ids import new_uuid
from mn.ring import Ring
from tests.support import flow_steps
from tests.support.cluster import REPO, MNProcess, start_cluster
from tests.support.flow_steps import FLOW_DIR, STEP_ERROR, FlowTestRunMsg, events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = "tests.support.flow_steps"
FIVE = ["StepA", "StepB", "StepC", "StepD", "StepE"]
#: The issue: another MN ends a killed MN's chain within ~15 s.
TAKEOVER_LIMIT = 15.0
HEARTBEAT = 1.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, mariadb_url, amqp_url):
    site = tmp_path_factory.mktemp("site")
    flow_steps.write_plugin_distribution(site, {"durable-audit": f"{S}:DURABLE_PLUGIN"})
    env = {"ZSTACK_FLOW_DIRS": str(FLOW_DIR), "PYTHONPATH": f"{REPO}{os.pathsep}{site}"}
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"), 3, db_url=mariadb_url, bus_url=amqp_url,
                          services=flow_steps.SPEC, heartbeat_interval=HEARTBEAT, extra_env=env)
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def db(mariadb_url, cluster):
    database = Database(mariadb_url, threads=2)
    yield database
    database.close()


async def records(db) -> list[FlowRecord]:
    return await db.run(lambda s: [FlowRecord.of(vo) for vo in s.scalars(select(FlowChainVO))])


async def test_plugin_step_inserted_by_entry_point_runs_in_its_place(cluster, client, db, tmp_path):
    journal = tmp_path / "journal"
    reply = await client.call(FlowTestRunMsg(chain="test.durable", resourceUuid=new_uuid(),
                                             data={"journal": str(journal)}), node=cluster[0].uuid)
    assert reply.data["ran"] == ["StepA", "StepB", "BlockStep", "PluginStep", "StepE"]
    assert events(journal) == ["run StepA", "run StepB", "run BlockStep", "run PluginStep", "run StepE",
                               "finally test.durable"]
    assert await records(db) == []


@pytest.mark.parametrize("failing", range(5))
async def test_five_step_chain_failing_at_each_step_rolls_back_the_completed_ones(cluster, client, db,
                                                                                  tmp_path, failing):
    journal = tmp_path / "journal"
    node = cluster[failing % len(cluster)]
    with pytest.raises(OperationError) as info:
        await client.call(FlowTestRunMsg(chain="test.five", resourceUuid=new_uuid(),
                                         data={"journal": str(journal), "fail_at": FIVE[failing]}),
                          node=node.uuid)
    ran = FIVE[:failing + 1]
    assert events(journal, node=True) == (
        [f"run {s} @{node.uuid}" for s in ran] + [f"rollback {s} @{node.uuid}" for s in reversed(ran)]
        + [f"error {STEP_ERROR} @{node.uuid}", f"finally test.five @{node.uuid}"])
    # Across the bus, the chain's error still carries the step's own error as its cause.
    assert info.value.error.code == "SYS.1006"
    assert info.value.error.cause.code == STEP_ERROR
    assert info.value.error.cause.details == f"{FIVE[failing]} failed as asked"
    assert await records(db) == []


async def wait_for_journal(journal, line: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while line not in events(journal):
        assert time.monotonic() < deadline, f"{line!r} not in {events(journal)}"
        await asyncio.sleep(0.1)


async def test_chains_of_a_killed_mn_are_ended_by_the_owner_of_their_resource(cluster, client, db, tmp_path):
    victim, survivors = cluster[2], cluster[:2]
    survivor_ring = Ring(n.uuid for n in survivors)
    rolled, resumed = new_uuid(), new_uuid()
    journals = {rolled: tmp_path / "rolled", resumed: tmp_path / "resumed"}
    for resource, chain in ((rolled, "test.durable"), (resumed, "test.resumable")):
        await client.call(FlowTestRunMsg(chain=chain, resourceUuid=resource, wait=False,
                                         data={"journal": str(journals[resource]), "block_seconds": 600}),
                          node=victim.uuid)
    for journal in journals.values():
        await wait_for_journal(journal, "run BlockStep", 10)

    by_resource = {r.resource_uuid: r for r in await records(db)}
    durable = by_resource[rolled]
    assert (durable.chain_name, durable.owner, durable.state) == ("test.durable", victim.uuid,
                                                                  FlowState.RUNNING)
    assert durable.completed_steps == [f"1/{S}.StepA", f"2/{S}.StepB"]
    assert durable.current_step == f"3/{S}.BlockStep"
    assert durable.data["ran"] == ["StepA", "StepB"]
    assert by_resource[resumed].completed_steps == [f"1/{S}.StepA"]

    killed_at = time.monotonic()
    victim.kill()
    await wait_for_journal(journals[rolled], "finally test.durable", TAKEOVER_LIMIT)
    await wait_for_journal(journals[resumed], "done test.resumable", TAKEOVER_LIMIT)
    print(f"\nchains of the killed MN ended {time.monotonic() - killed_at:.1f}s after kill -9")

    # The default: the survivor owning the resource rolls back from the record,
    # the step that was running first, then the completed ones in reverse.
    heir = survivor_ring.owner(rolled)
    assert events(journals[rolled], node=True) == [
        f"run StepA @{victim.uuid}", f"run StepB @{victim.uuid}", f"run BlockStep @{victim.uuid}",
        f"rollback BlockStep @{heir}", f"rollback StepB @{heir}", f"rollback StepA @{heir}",
        f"error SYS.1012 @{heir}", f"finally test.durable @{heir}"]
    # A resumable chain is finished instead.
    heir = survivor_ring.owner(resumed)
    assert events(journals[resumed], node=True)[2:] == [
        f"run BlockStep @{heir}", f"run StepC @{heir}", f"done test.resumable @{heir}"]

    deadline = time.monotonic() + 5
    while await records(db):
        assert time.monotonic() < deadline, await records(db)
        await asyncio.sleep(0.1)


def test_an_mn_process_with_a_bad_chain_does_not_start(tmp_path, mariadb_url, amqp_url):
    flows = tmp_path / "flows"
    flows.mkdir()
    bad = flows / "create.xml"
    bad.write_text('<chain name="test.bad-chain">\n  <include chain="vm.missing"/>\n</chain>\n')
    node = MNProcess(tmp_path / "mn", db_url=mariadb_url, bus_url=amqp_url,
                     extra_env={"ZSTACK_FLOW_DIRS": str(flows)})
    node.start()
    try:
        with pytest.raises(RuntimeError, match="MN exited") as info:
            node.wait_ready(30)
        assert f"{bad}:2: no chain is named 'vm.missing'" in str(info.value)
    finally:
        node.stop()
