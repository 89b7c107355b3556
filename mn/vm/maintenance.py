"""Emptying a host that enters maintenance (ZStack's HostBase maintenance with
``host/host.maintenance.policy``): its VMs migrate away; a VM that cannot
migrate is stopped (StopVmOnMigrationFailure, ZStack's default) or fails the
maintenance (JustMigrate).

Registered with the host service, which runs it while the host is
PreMaintenance (so the allocator never picks it as a destination).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from mn.db.models.vm import VmInstanceVO
from mn.errors import OperationError, SysErrors, error
from mn.globalconfig import GlobalConfig, valid_values
from mn.vm.messages import MigrateVmMsg, StopVmInstanceMsg, call_vm_owner

log = logging.getLogger(__name__)

JUST_MIGRATE = "JustMigrate"
STOP_VM_ON_MIGRATION_FAILURE = "StopVmOnMigrationFailure"

MAINTENANCE_POLICY = GlobalConfig(
    "host", "host.maintenance.policy", str, STOP_VM_ON_MIGRATION_FAILURE,
    validators=[valid_values(JUST_MIGRATE, STOP_VM_ON_MIGRATION_FAILURE)],
    description="the behavior of maintain a host, options are [JustMigrate, StopVmOnMigrationFailure]. "
                "JustMigrate: just try to migrate all vm on the host, if there is any migration failure, host "
                "will fail to change to maintenance state; StopVmOnMigrationFailure: when migrate vm from "
                "current host fail, try to stop vm on the host.")


class VmHostMaintenance:
    """The host service's ``before_maintenance`` hook, for VMs."""

    def __init__(self, node: Any):
        self.node = node

    async def before_maintenance(self, host_uuid: str) -> None:
        def on_host(session) -> list[str]:
            return list(session.scalars(select(VmInstanceVO.uuid).where(VmInstanceVO.hostUuid == host_uuid)
                                        .order_by(VmInstanceVO.uuid)))

        for vm_uuid in await self.node.db.run(on_host):
            await self._empty(host_uuid, vm_uuid)

    async def _empty(self, host_uuid: str, vm_uuid: str) -> None:
        try:
            await call_vm_owner(self.node, MigrateVmMsg(vmInstanceUuid=vm_uuid))
            return
        except OperationError as exc:
            if MAINTENANCE_POLICY.value == JUST_MIGRATE:
                raise OperationError(error(SysErrors.OPERATION_ERROR,
                                           f"vm[uuid:{vm_uuid}] cannot migrate from host[uuid:{host_uuid}]",
                                           exc.error)) from exc
            log.info("vm %s cannot migrate from host %s entering maintenance (%s); stopping it", vm_uuid,
                     host_uuid, exc.error.details)
        await call_vm_owner(self.node, StopVmInstanceMsg(vmInstanceUuid=vm_uuid, type="cold"))
