"""Building what a hypervisor backend is told about a VM, from the database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.host import HostVO
from mn.db.models.vm import VmNicVO
from mn.db.models.volume import VolumeVO
from mn.errors import OperationError, SysErrors
from mn.vm.hypervisor import NicSpec, VmSpec, VolumeSpec
from mn.vm.records import find_vm
from mn.vm.tags import hostname_of


def volume_spec(vo: VolumeVO) -> VolumeSpec:
    return VolumeSpec(uuid=vo.uuid, type=vo.type, deviceId=vo.deviceId, size=vo.size,
                      installPath=vo.installPath, format=vo.format, primaryStorageUuid=vo.primaryStorageUuid)


def nic_spec(vo: VmNicVO) -> NicSpec:
    return NicSpec(uuid=vo.uuid, l3NetworkUuid=vo.l3NetworkUuid, mac=vo.mac, ip=vo.ip, netmask=vo.netmask,
                   gateway=vo.gateway, deviceId=vo.deviceId, internalName=vo.internalName,
                   driverType=vo.driverType)


def build_vm_spec(session: Session, vm_uuid: str, host_uuid: str | None = None) -> VmSpec:
    """The VM as its host's backend sees it, on ``host_uuid`` (default: where it is or was)."""
    vm = find_vm(session, vm_uuid)
    host_uuid = host_uuid or vm.hostUuid or vm.lastHostUuid
    host = session.get(HostVO, host_uuid) if host_uuid else None
    if host is None:
        raise OperationError.of(SysErrors.OPERATION_ERROR,
                                f"vm instance[uuid:{vm_uuid}] is on no host (host[uuid:{host_uuid}] is gone)")
    volumes = session.scalars(select(VolumeVO).where(VolumeVO.vmInstanceUuid == vm_uuid)
                              .order_by(VolumeVO.deviceId, VolumeVO.createDate)).all()
    nics = session.scalars(select(VmNicVO).where(VmNicVO.vmInstanceUuid == vm_uuid)
                           .order_by(VmNicVO.deviceId)).all()
    return VmSpec(uuid=vm.uuid, name=vm.name, internalId=vm.internalId, hostUuid=host.uuid,
                  hypervisorType=host.hypervisorType, cpuNum=vm.cpuNum, cpuSpeed=vm.cpuSpeed,
                  memorySize=vm.memorySize, platform=vm.platform, architecture=vm.architecture,
                  imageUuid=vm.imageUuid, hostname=hostname_of(session, vm_uuid),
                  volumes=[volume_spec(v) for v in volumes], nics=[nic_spec(n) for n in nics])
