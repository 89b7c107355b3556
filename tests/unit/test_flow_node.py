"""The flow engine inside a ManagementNode: loaded at start, stopped with the node."""

from __future__ import annotations

import re

import pytest

from mn.config import Settings
from mn.flow import FlowDefinitionError, FlowEngine
from mn.node import ManagementNode
from tests.support.flow_steps import FLOW_DIR, events


async def test_a_bad_chain_stops_start_up_before_anything_else(tmp_path):
    flows = tmp_path / "flows"
    (flows / "vm").mkdir(parents=True)
    (flows / "vm" / "create.xml").write_text('<chain name="vm.create">\n  <step class="nope:Nope"/>\n</chain>\n')
    node = ManagementNode(Settings(var_dir=tmp_path / "var", bus_url="memory://", flow_dirs=str(flows)),
                          exit_process=lambda: None)
    with pytest.raises(FlowDefinitionError,
                       match=re.escape(f"{flows / 'vm' / 'create.xml'}:2: cannot import module 'nope'")):
        await node.start()
    assert (node.db, node.bus, node.flows) == (None, None, None)
    assert not (tmp_path / "var" / "zstack.db").exists()


async def test_a_started_node_runs_chains_and_stops_them(tmp_path):
    fenced = []
    node = ManagementNode(Settings(var_dir=tmp_path / "var", bus_url="memory://", flow_dirs=str(FLOW_DIR),
                                   heartbeat_interval=0.2), exit_process=lambda: fenced.append(True))
    await node.start()
    try:
        assert isinstance(node.flows, FlowEngine)
        assert node.flows.on_node_left in node.membership._left_listeners
        journal = tmp_path / "journal"
        data = await node.flows.run("test.five", {"journal": str(journal)}, resource_uuid=node.uuid)
        assert data["ran"] == ["StepA", "StepB", "StepC", "StepD", "StepE"]
        assert events(journal, node=True)[0] == f"run StepA @{node.uuid}"
    finally:
        await node.stop()
    assert node.flows._stopping and fenced == []
