"""A create cut short anywhere leaves a record another MN ends: everything the
create took is given back (or, cut after its last commit, the VM is whole).

The MN "dies" by stopping its flow engine, which cancels the chain where it
stands without rolling it back, as a killed process leaves it; a second
engine, with another MN uuid, then ends the chain from its record.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.vm import VmInstanceVO
from mn.flow import FlowEngine, FlowState, load_flows
from mn.ids import new_uuid
from mn.ring import Ring
from mn.vm.messages import APICreateVmInstanceMsg
from tests.support.vm_world import assert_consistent, build_world, start_vm_node, stop_vm_node, totals

STEPS = [step.cls for step in load_flows().get("vm.create").steps]


class Successor:
    """The node under another MN uuid: what a peer taking the chain over looks like."""

    def __init__(self, node):
        self._node = node
        self.uuid = new_uuid()
        self.ring = Ring([self.uuid])

    def __getattr__(self, name):
        return getattr(self._node, name)


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url)
    yield node
    await stop_vm_node(node)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("cls", STEPS, ids=[cls.__name__ for cls in STEPS])
async def test_a_create_cut_short_at_any_step_is_ended_by_another_mn(node, monkeypatch, cls, when):
    world = await node.db.run(lambda s: build_world(s))
    original = cls.run
    reached = asyncio.Event()

    async def cut_short(self, ctx):
        if when == "after":
            await original(self, ctx)
        reached.set()
        await asyncio.sleep(3600)  # the MN dies here

    monkeypatch.setattr(cls, "run", cut_short)
    msg = APICreateVmInstanceMsg(name="vm1", instanceOfferingUuid=world.offering, imageUuid=world.image,
                                 l3NetworkUuids=[world.l3])
    create = asyncio.ensure_future(node.intercept_and_call(msg))
    await asyncio.wait_for(reached.wait(), 10)
    await node.flows.stop()
    with pytest.raises(Exception):
        await create
    monkeypatch.setattr(cls, "run", original)

    records = await node.db.run(lambda s: list(s.scalars(select(FlowChainVO.uuid))))
    vms = await node.db.run(lambda s: list(s.scalars(select(VmInstanceVO.state))))
    if cls is STEPS[-1] and when == "after":
        # Its commit ended the chain: the record went with it, the VM is whole.
        assert (records, vms) == ([], ["Running"])
    else:
        successor = FlowEngine(Successor(node), node.flows.registry)
        try:
            outcomes = [await successor.recover(uuid) for uuid in records]
        finally:
            await successor.stop()
        assert outcomes == [FlowState.ROLLED_BACK] * len(records)
        t = await node.db.run(lambda s: totals(s, world))
        assert (t.vms, t.nics, t.volumes, t.ips_used, t.host_cpu_used, t.host_memory_used, t.ps_used) == (
            0, 0, 0, 0, 0, 0, 0)
    t = await node.db.run(lambda s: totals(s, world))
    assert_consistent(t)
    assert await node.db.run(lambda s: list(s.scalars(select(FlowChainVO.uuid)))) == []
