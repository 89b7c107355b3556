"""Deleting a volume's file on its host once nothing needs it, durably.

A volume leaves its primary storage (:func:`mn.volume.placement.unplace_volume`:
expunged, or a failed create rolled back) in a transaction; the deletion of
its file on the host is queued as a GC job in that same transaction, so it
is done exactly when the volume is gone, survives a crash of the MN, and is
retried until the host answers (at once when it reconnects). Hypervisors
whose volumes have no files (the Simulator) queue nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.host import HOST_CONNECTED, HostVO
from mn.db.models.storage import LocalStorageResourceRefVO, PrimaryStorageVO
from mn.db.models.vm import VmInstanceVO
from mn.db.models.volume import VolumeVO
from mn.errors import OperationError
from mn.gc import GarbageCollector, GCContext
from mn.gc.manager import job_row
from mn.host.messages import HostStatusChangedEvent
from mn.vm.hypervisor import hypervisor_for

log = logging.getLogger(__name__)


class DeleteVolumeBitsGC(GarbageCollector):
    """Delete one volume file on one host; idempotent (a missing file is fine)."""

    NAME = "delete-volume-bits"
    TRIGGER_EVENTS = (HostStatusChangedEvent,)
    RETRY_INTERVAL = 30.0

    def event_matches(self, event: Any, context: dict[str, Any]) -> bool:
        return event.hostUuid == context["hostUuid"] and event.newStatus == HOST_CONNECTED

    async def collect(self, ctx: GCContext, context: dict[str, Any]) -> None:
        host_uuid = context["hostUuid"]
        host_type = await ctx.node.db.run(lambda s: s.scalar(
            select(HostVO.hypervisorType).where(HostVO.uuid == host_uuid)))
        if host_type is None:
            return  # the host is gone, and its disk with it
        await hypervisor_for(host_type).delete_volume_bits(ctx.node, host_uuid, context["installPath"],
                                                           context["storagePath"])


def volume_host(session: Session, volume: VolumeVO) -> str | None:
    """The host holding the volume's file: its LocalStorage host, else its VM's host."""
    host_uuid = session.scalar(select(LocalStorageResourceRefVO.hostUuid)
                               .where(LocalStorageResourceRefVO.resourceUuid == volume.uuid))
    if host_uuid is None and volume.vmInstanceUuid:
        row = session.execute(select(VmInstanceVO.hostUuid, VmInstanceVO.lastHostUuid)
                              .where(VmInstanceVO.uuid == volume.vmInstanceUuid)).first()
        host_uuid = row and (row.hostUuid or row.lastHostUuid)
    return host_uuid


def queue_bits_deletion(session: Session, volume: VolumeVO, ps_uuid: str) -> bool:
    """In the transaction taking ``volume`` off storage ``ps_uuid``: queue the deletion
    of its file, if its host's hypervisor keeps files. Call before the volume's
    LocalStorage record is removed. Whether a job was queued."""
    if not volume.installPath:
        return False
    host_uuid = volume_host(session, volume)
    host_type = host_uuid and session.scalar(select(HostVO.hypervisorType).where(HostVO.uuid == host_uuid))
    if not host_type:
        return False
    try:
        if not hypervisor_for(host_type).keeps_volume_bits:
            return False
    except OperationError:
        return False
    ps = session.get(PrimaryStorageVO, ps_uuid)
    storage_path = (ps.mountPath or ps.url) if ps is not None else ""
    session.add(job_row(DeleteVolumeBitsGC, {"hostUuid": host_uuid, "installPath": volume.installPath,
                                             "storagePath": storage_path, "volumeUuid": volume.uuid}, delay=0))
    log.debug("queued the deletion of %s on host %s", volume.installPath, host_uuid)
    return True
