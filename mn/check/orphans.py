"""Orphans: nics and volumes whose VM is gone.

``VmNicVO.vmInstanceUuid`` cascades, but SQLite without ``foreign_keys=ON``
or a hand edit can still leave nics behind; ``VolumeVO.vmInstanceUuid`` has
no foreign key at all (ZStack's schema), so only the VM code keeps it
right: root volumes are deleted with their VM, data volumes detached.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from mn.check.base import CheckContext, Problem, check
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.models.volume import ROOT, VolumeVO

NAME = "orphans"


@check(NAME)
def orphans(ctx: CheckContext) -> Iterator[Problem]:
    """No nic or volume outlives its VM.

    Every VmNicVO has a vmInstanceUuid naming an existing VM; every root
    volume has a vmInstanceUuid naming an existing VM; a data volume with a
    vmInstanceUuid names an existing VM.
    """
    session = ctx.session
    vms = set(session.scalars(select(VmInstanceVO.uuid)))
    for nic_uuid, vm_uuid, ip in session.execute(select(VmNicVO.uuid, VmNicVO.vmInstanceUuid, VmNicVO.ip)
                                                 .order_by(VmNicVO.uuid)):
        if vm_uuid not in vms:
            yield Problem(NAME, "VmNicVO", nic_uuid,
                          f"nic {nic_uuid} (ip {ip}) belongs to vm {vm_uuid}, which does not exist"
                          if vm_uuid else f"nic {nic_uuid} (ip {ip}) belongs to no vm")
    rows = session.execute(select(VolumeVO.uuid, VolumeVO.type, VolumeVO.vmInstanceUuid, VolumeVO.status,
                                  VolumeVO.primaryStorageUuid, VolumeVO.size).order_by(VolumeVO.uuid))
    for uuid, volume_type, vm_uuid, status, ps_uuid, size in rows:
        if vm_uuid in vms or (vm_uuid is None and volume_type != ROOT):
            continue
        where = f"{size} bytes on primary storage {ps_uuid}" if ps_uuid else "on no primary storage"
        owner = f"vm {vm_uuid}, which does not exist" if vm_uuid else "no vm"
        yield Problem(NAME, "VolumeVO", uuid,
                      f"{volume_type.lower()} volume {uuid} ({status}, {where}) belongs to {owner}")
