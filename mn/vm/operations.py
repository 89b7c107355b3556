"""What each VM operation starts from: checks of the VM as it is now, and the
data map of the chain that carries the operation out.

Each ``*_data`` function runs in one transaction, in the VM's work queue,
and returns None when there is nothing to do (starting a Running VM
succeeds at once, as in ZStack).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.network import L2NetworkClusterRefVO, L3NetworkVO
from mn.db.models.storage import PrimaryStorageClusterRefVO
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.models.volume import DATA, NOT_INSTANTIATED, READY, ROOT, VolumeVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.vm import state as vm_state
from mn.vm.records import find_vm
from mn.vm.state import Event
from mn.volume.placement import is_local, local_host_of

ENABLED = "Enabled"


def refused(details: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR, details)


def _base(vm: VmInstanceVO, event: str, done_event: str | None = None) -> dict:
    return {"vmUuid": vm.uuid, "originState": vm.state, "event": event, "doneEvent": done_event,
            "cpuNum": vm.cpuNum, "memorySize": vm.memorySize}


def _not_being_created(vm: VmInstanceVO) -> None:
    if vm.state == vm_state.CREATED:
        raise refused(f"vm instance[uuid:{vm.uuid}] is still being created")


def _root_volume(session: Session, vm_uuid: str) -> VolumeVO | None:
    return session.scalar(select(VolumeVO).where(VolumeVO.vmInstanceUuid == vm_uuid, VolumeVO.type == ROOT))


def _l3_uuids(session: Session, vm_uuid: str) -> list[str]:
    return [u for u in session.scalars(select(VmNicVO.l3NetworkUuid).where(VmNicVO.vmInstanceUuid == vm_uuid)
                                       .order_by(VmNicVO.deviceId)) if u is not None]


def check(session: Session, vm_uuid: str, operation: str) -> VmInstanceVO:
    """The VM, if ``operation`` may start in its state (else SYS.1006 caused by VM.1010)."""
    vm = find_vm(session, vm_uuid)
    vm_state.check_operation(operation, vm.state, vm_uuid)
    return vm


def start_data(session: Session, vm_uuid: str, host_uuid: str | None = None,
               cluster_uuid: str | None = None) -> dict | None:
    vm = check(session, vm_uuid, vm_state.START)
    _not_being_created(vm)
    if vm.state == vm_state.RUNNING:
        return None
    data = _base(vm, Event.starting, Event.running)
    root = _root_volume(session, vm_uuid)
    if root is not None and is_local(session, root.primaryStorageUuid):
        # Its disk is on one host's local storage: it can run only there.
        local_host = local_host_of(session, root.uuid)
        if host_uuid is not None and host_uuid != local_host:
            raise refused(f"vm instance[uuid:{vm_uuid}] has its root volume on the local storage of "
                          f"host[uuid:{local_host}]; it cannot start on host[uuid:{host_uuid}]")
        host_uuid = local_host
    data.update({
        "l3NetworkUuids": _l3_uuids(session, vm_uuid), "zoneUuid": vm.zoneUuid, "clusterUuid": cluster_uuid,
        "requestedHostUuid": host_uuid, "allocatorStrategy": vm.allocatorStrategy,
        "hypervisorType": vm.hypervisorType,
        "primaryStorageUuid": root.primaryStorageUuid if root is not None else None,
        "nicsWithoutIp": list(session.scalars(select(VmNicVO.uuid).where(VmNicVO.vmInstanceUuid == vm_uuid,
                                                                          VmNicVO.usedIpUuid.is_(None)))),
    })
    return data


def stop_data(session: Session, vm_uuid: str, stop_type: str, *, cascade: bool = False) -> dict | None:
    vm = find_vm(session, vm_uuid)
    if cascade and not vm_state.is_allowed(vm_state.STOP, vm.state):
        return None  # as ZStack: a cascade stops only what may be stopped
    vm_state.check_operation(vm_state.STOP, vm.state, vm_uuid)
    if vm.state == vm_state.STOPPED:
        return None
    return {**_base(vm, Event.stopping, Event.stopped), "stopType": stop_type}


def simple_data(session: Session, vm_uuid: str, operation: str, event: str, done_event: str) -> dict:
    """Reboot, pause, resume: a state check and the events."""
    return _base(check(session, vm_uuid, operation), event, done_event)


def destroy_data(session: Session, vm_uuid: str) -> dict | None:
    vm = session.get(VmInstanceVO, vm_uuid)
    if vm is None or vm.state == vm_state.DESTROYED:
        return None  # ZStack: destroying what is gone or destroyed succeeds
    _not_being_created(vm)
    vm_state.check_operation(vm_state.DESTROY, vm.state, vm_uuid)
    return _base(vm, Event.destroying, Event.destroyed)


def migrate_data(session: Session, vm_uuid: str, host_uuid: str | None) -> dict:
    vm = check(session, vm_uuid, vm_state.MIGRATE)
    if vm.hostUuid is None:
        raise refused(f"vm instance[uuid:{vm_uuid}] is on no host")
    if host_uuid == vm.hostUuid:
        raise refused(f"the vm[uuid:{vm_uuid}] is already on host[uuid:{host_uuid}]")
    root = _root_volume(session, vm_uuid)
    if root is not None and is_local(session, root.primaryStorageUuid):
        raise refused(f"vm instance[uuid:{vm_uuid}] has its root volume on local primary storage"
                      f"[uuid:{root.primaryStorageUuid}]; it cannot be live-migrated to another host")
    return {**_base(vm, Event.migrating), "sourceHostUuid": vm.hostUuid, "requestedHostUuid": host_uuid,
            "avoidHostUuids": [vm.hostUuid], "l3NetworkUuids": _l3_uuids(session, vm_uuid),
            "zoneUuid": vm.zoneUuid, "hypervisorType": vm.hypervisorType,
            "allocatorStrategy": vm.allocatorStrategy,
            "primaryStorageUuid": root.primaryStorageUuid if root is not None else None}


def attach_nic_data(session: Session, vm_uuid: str, l3_uuid: str, static_ip: str | None, mac: str | None,
                    driver_type: str | None) -> dict:
    vm = find_vm(session, vm_uuid)
    if not vm_state.is_allowed(vm_state.ATTACH_L3, vm.state):
        raise refused(f"unable to attach a L3 network. The vm[uuid: {vm_uuid}] is not Running or Stopped; "
                      f"the current state is {vm.state}")
    l3 = session.get(L3NetworkVO, l3_uuid)
    if l3 is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"L3 network[uuid:{l3_uuid}] is not found")
    if l3.state != ENABLED:
        raise refused(f"unable to attach a L3 network. The L3 network[uuid:{l3_uuid}] is disabled")
    if l3_uuid in _l3_uuids(session, vm_uuid):
        raise refused(f"unable to attach a L3 network. The L3 network[uuid:{l3_uuid}] is already attached to "
                      f"the vm[uuid: {vm_uuid}]")
    if vm.clusterUuid is not None and session.scalar(
            select(L2NetworkClusterRefVO.id).where(L2NetworkClusterRefVO.l2NetworkUuid == l3.l2NetworkUuid,
                                                   L2NetworkClusterRefVO.clusterUuid == vm.clusterUuid)) is None:
        raise refused(f"unable to attach a L3 network. The L2 network[uuid:{l3.l2NetworkUuid}] of L3 network"
                      f"[uuid:{l3_uuid}] is not attached to cluster[uuid:{vm.clusterUuid}] of the vm")
    return {"vmUuid": vm_uuid, "l3NetworkUuid": l3_uuid, "nicUuid": new_uuid(), "staticIp": static_ip,
            "mac": mac.lower() if mac else None, "driverType": driver_type}


def check_volume_attachable(session: Session, vm_uuid: str, volume_uuid: str) -> None:
    """ZStack's checks of AttachDataVolumeToVm, against the rows as they are now."""
    vm = find_vm(session, vm_uuid)
    if not vm_state.is_allowed(vm_state.ATTACH_VOLUME, vm.state):
        raise refused(f"vm[uuid:{vm_uuid}] can only attach volume when state is Running or Stopped, current "
                      f"state is {vm.state}")
    volume = session.get(VolumeVO, volume_uuid)
    if volume is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"volume[uuid:{volume_uuid}] is not found")
    if volume.type != DATA:
        raise refused(f"the volume[uuid:{volume_uuid}] is a {volume.type} volume; only data volumes can be "
                      f"attached")
    if volume.vmInstanceUuid is not None:
        raise refused(f"data volume[uuid:{volume_uuid}] has been attached to some vm, can't attach again")
    if volume.state != "Enabled":
        raise refused(f"data volume[uuid:{volume_uuid}] is Disabled, can't attach")
    if volume.status not in (READY, NOT_INSTANTIATED):
        raise refused(f"data volume can only be attached when status is [Ready, NotInstantiated], "
                      f"current is {volume.status}")
    if volume.status == READY:
        if session.scalar(select(PrimaryStorageClusterRefVO.id).where(
                PrimaryStorageClusterRefVO.primaryStorageUuid == volume.primaryStorageUuid,
                PrimaryStorageClusterRefVO.clusterUuid == vm.clusterUuid)) is None:
            raise refused(f"the primary storage[uuid:{volume.primaryStorageUuid}] of volume[uuid:{volume_uuid}] "
                          f"is not attached to cluster[uuid:{vm.clusterUuid}] of vm[uuid:{vm_uuid}]")
        local_host = local_host_of(session, volume_uuid)
        vm_host = vm.hostUuid or vm.lastHostUuid
        if local_host is not None and local_host != vm_host:
            raise refused(f"volume[uuid:{volume_uuid}] is on the local storage of host[uuid:{local_host}], "
                          f"but vm[uuid:{vm_uuid}] is on host[uuid:{vm_host}]")

