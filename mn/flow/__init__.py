"""Flow chains (ZStack's FlowChain): steps with run and rollback, declared in XML, durable.

* ``base.py``: :class:`Flow` (a step), :class:`FlowHandler`, :class:`FlowContext`.
* ``xml_loader.py``: one ``flows/**/*.xml`` file -> a checked declaration.
* ``registry.py``: :func:`load_flows` -> :class:`FlowRegistry` of expanded chains.
* ``extensions.py``: plugin steps at insertion points (``zstack.flow_extensions``).
* ``engine.py``: :class:`FlowEngine`: run, rollback, take-over of a dead MN's chains.
* ``persistence.py``: the durable records in ``FlowChainVO``.

The XML format is described in ``flows/README.md``.
"""

from mn.flow.base import Flow, FlowContext, FlowHandler, NoRollbackFlow
from mn.flow.definition import Chain, Step
from mn.flow.engine import FlowEngine
from mn.flow.errors import FlowDefinitionError, FlowError
from mn.flow.extensions import ENTRY_POINT_GROUP, FlowExtension
from mn.flow.persistence import FlowRecord, FlowState, FlowStore
from mn.flow.registry import DEFAULT_FLOW_DIR, FlowRegistry, load_flows, split_dirs

__all__ = [
    "DEFAULT_FLOW_DIR",
    "ENTRY_POINT_GROUP",
    "Chain",
    "Flow",
    "FlowContext",
    "FlowDefinitionError",
    "FlowEngine",
    "FlowError",
    "FlowExtension",
    "FlowHandler",
    "FlowRecord",
    "FlowRegistry",
    "FlowState",
    "FlowStore",
    "NoRollbackFlow",
    "Step",
    "load_flows",
    "split_dirs",
]
