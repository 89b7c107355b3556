"""Volumes in cascade deletions: a primary storage deleted takes its volumes with it.

A root volume goes with its VM: if the VM is still there, the VM is
expunged (its owner does it, in the VM's queue). A data volume attached to
a VM is detached first (the same way); then its storage is given back and
its row deleted. The VM extension (VmInstanceVO under PrimaryStorageVO)
usually expunges the VMs first; what it left is handled here.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.cascade import CascadeContext, CascadeExtension
from mn.db.models.vm import VmInstanceVO
from mn.db.models.volume import ROOT, VolumeVO
from mn.vm.cascade import each_bounded
from mn.vm.messages import DetachDataVolumeFromVmMsg, ExpungeVmMsg, call_vm_owner
from mn.vm.records import run_tx
from mn.volume.placement import expunge_volume

PRIMARY_STORAGE = "PrimaryStorageVO"


class VolumeCascade(CascadeExtension):
    """VolumeVO under PrimaryStorageVO."""

    resource_type = VolumeVO.__tablename__
    parents = (PRIMARY_STORAGE,)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        def find(session: Session) -> list[str]:
            return list(session.scalars(select(VolumeVO.uuid).where(VolumeVO.primaryStorageUuid.in_(parent_uuids))
                                        .order_by(VolumeVO.uuid)))

        return await ctx.node.db.run(find)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        def attachments(session: Session) -> list[tuple[str, str | None, str]]:
            rows = session.execute(select(VolumeVO.uuid, VolumeVO.vmInstanceUuid, VolumeVO.type)
                                   .where(VolumeVO.uuid.in_(uuids))).all()
            existing = set(session.scalars(select(VmInstanceVO.uuid).where(
                VmInstanceVO.uuid.in_([r.vmInstanceUuid for r in rows if r.vmInstanceUuid]))))
            return [(r.uuid, r.vmInstanceUuid if r.vmInstanceUuid in existing else None, r.type) for r in rows]

        volumes = await ctx.node.db.run(attachments)

        async def let_go(volume: tuple[str, str | None, str]) -> None:
            uuid, vm_uuid, volume_type = volume
            if vm_uuid is not None and volume_type == ROOT:
                await call_vm_owner(ctx.node, ExpungeVmMsg(vmInstanceUuid=vm_uuid))
            elif vm_uuid is not None:
                await call_vm_owner(ctx.node, DetachDataVolumeFromVmMsg(vmInstanceUuid=vm_uuid, volumeUuid=uuid))
            await run_tx(ctx.node, expunge_volume, ctx.node, uuid)

        await each_bounded(ctx, volumes, let_go, "delete volumes")
