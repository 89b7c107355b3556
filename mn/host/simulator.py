"""Simulator hosts: no agent, so adding or reconnecting one always succeeds.

The capacity a Simulator host reports is what it was added with
(ZStack's SimulatorConnection): ``cpuCapacity`` CPUs and
``memoryCapacity`` bytes, nothing used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from mn.db.models.host import HostVO, SimulatorHostVO
from mn.host.capacity import capacity_row
from mn.host.factory import HostFactory
from mn.host.messages import APIAddSimulatorHostMsg

if TYPE_CHECKING:
    from mn.node import ManagementNode

#: ZStack's SimulatorConstant.SIMULATOR_HYPERVISOR_TYPE.
SIMULATOR_HYPERVISOR_TYPE = "Simulator"


class SimulatorHostFactory(HostFactory):
    """ZStack's SimulatorFactory."""

    hypervisor_type = SIMULATOR_HYPERVISOR_TYPE
    architecture = "x86_64"

    def create_rows(self, session: Session, host: HostVO, msg: APIAddSimulatorHostMsg) -> None:
        session.add(SimulatorHostVO(uuid=host.uuid, memoryCapacity=msg.memoryCapacity,
                                    cpuCapacity=msg.cpuCapacity))
        session.add(capacity_row(host.uuid, cpu_num=msg.cpuCapacity, memory_size=msg.memoryCapacity))
        session.flush()

    async def connect(self, node: "ManagementNode", host_uuid: str) -> None:
        # No agent: the host is reachable by definition, and its capacity was
        # recorded when it was added (reporting it again would forget what
        # the VMs on it use).
        return None
