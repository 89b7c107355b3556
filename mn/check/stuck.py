"""Work that should have ended: resources stuck in a transitional state, jobs
and chains of management nodes that are gone."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from mn.check.base import CheckContext, Problem, check
from mn.db.models.api_job import JOB_PROCESSING, ApiJobVO
from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.host import HOST_CONNECTING, HostVO
from mn.db.models.management_node import ManagementNodeVO
from mn.db.models.vm import VmInstanceVO
from mn.db.models.volume import CREATING, VolumeVO
from mn.flow.persistence import FlowState
from mn.vm import state as vm_state

TRANSITIONS = "transitional-states"
OWNERS = "dead-owners"

#: VM states only a running chain holds: the intermediate states, plus
#: Created (only while ``vm.create`` runs: its rollback deletes the row)
#: and Expunging (only while ``vm.expunge`` runs: it ends with the row gone).
VM_TRANSITIONAL = vm_state.INTERMEDIATE_STATES | {vm_state.CREATED, vm_state.EXPUNGING}
#: Volume statuses only a running chain holds.
VOLUME_TRANSITIONAL = frozenset({CREATING})
#: Host statuses only a running connect holds.
HOST_TRANSITIONAL = frozenset({HOST_CONNECTING})

_TABLES = (
    (VmInstanceVO, VmInstanceVO.state, VM_TRANSITIONAL, "vm"),
    (VolumeVO, VolumeVO.status, VOLUME_TRANSITIONAL, "volume"),
    (HostVO, HostVO.status, HOST_TRANSITIONAL, "host"),
)


@check(TRANSITIONS)
def transitional_states(ctx: CheckContext) -> Iterator[Problem]:
    """No resource stays in a transitional state longer than the timeout.

    VMs in an intermediate state (Starting, Stopping, Rebooting,
    Destroying, Migrating, Pausing, Resuming, VolumeMigrating,
    VolumeRecovering) or in Created or Expunging, volumes in Creating and
    hosts Connecting whose lastOpDate is older than --transition-timeout
    seconds (default: the api/timeout global config, 1800). No API job
    runs longer, so nothing should still be on its way there.
    """
    cutoff, seconds = ctx.older_than_timeout()
    for model, column, states, what in _TABLES:
        rows = ctx.session.execute(select(model.uuid, column, model.lastOpDate)
                                   .where(column.in_(states), model.lastOpDate < cutoff).order_by(model.uuid))
        for uuid, state, last_op in rows:
            age = (ctx.now - last_op).total_seconds()
            yield Problem(TRANSITIONS, model.__tablename__, uuid,
                          f"{what} {uuid} has been {state} since {last_op.isoformat(sep=' ')} UTC "
                          f"({age:.0f}s, timeout {seconds:g}s)")


@check(OWNERS)
def dead_owners(ctx: CheckContext) -> Iterator[Problem]:
    """Every unfinished API job and flow chain belongs to a live management node.

    An ApiJobVO in Processing and a FlowChainVO in Running, RollingBack,
    Done or RolledBack name in managementNodeUuid an MN present in
    ManagementNodeVO. (MNs fail the jobs and take over the chains of a
    node that leaves, and at their start; Failed chain records, kept for
    an operator, are not looked at.)
    """
    live = set(ctx.session.scalars(select(ManagementNodeVO.uuid)))
    jobs = ctx.session.execute(select(ApiJobVO.uuid, ApiJobVO.apiName, ApiJobVO.managementNodeUuid,
                                      ApiJobVO.createDate)
                               .where(ApiJobVO.state == JOB_PROCESSING).order_by(ApiJobVO.uuid))
    for uuid, api_name, owner, created in jobs:
        if owner not in live:
            yield Problem(OWNERS, "ApiJobVO", uuid,
                          f"api job {uuid} ({api_name}, since {created.isoformat(sep=' ')} UTC) is Processing on "
                          f"management node {owner}, which is not in ManagementNodeVO")
    chains = ctx.session.execute(select(FlowChainVO.uuid, FlowChainVO.chainName, FlowChainVO.state,
                                        FlowChainVO.managementNodeUuid, FlowChainVO.resourceUuid)
                                 .where(FlowChainVO.state.in_(FlowState.UNFINISHED)).order_by(FlowChainVO.uuid))
    for uuid, chain_name, state, owner, resource in chains:
        if owner not in live:
            yield Problem(OWNERS, "FlowChainVO", uuid,
                          f"flow chain {uuid} ({chain_name} on {resource}) is {state} on management node "
                          f"{owner}, which is not in ManagementNodeVO")
