"""The agent's command bodies, built from the MN's records (ZStack's KVMAgentCommands).

Paths and field names are the kvmagent's (``agents/kvm/PROTOCOL.md``).
Functions taking a session read what a :class:`~mn.vm.hypervisor.VmSpec`
does not carry (the L2 network behind each nic, primary storage paths); the
others are pure.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.network import L2_VLAN_NETWORK_TYPE, L2NetworkClusterRefVO, L2NetworkVO, L3NetworkVO
from mn.db.models.storage import LOCAL_STORAGE_TYPE, PrimaryStorageClusterRefVO, PrimaryStorageVO
from mn.vm.hypervisor import NicSpec, VmSpec, VolumeSpec

CONNECT = "/host/connect"
PING = "/host/ping"
ECHO = "/host/echo"
CAPACITY = "/host/capacity"
START_VM = "/vm/start"
STOP_VM = "/vm/stop"
REBOOT_VM = "/vm/reboot"
PAUSE_VM = "/vm/pause"
RESUME_VM = "/vm/resume"
DESTROY_VM = "/vm/destroy"
VM_SYNC = "/vm/vmsync"
ATTACH_VOLUME = "/vm/attachdatavolume"
DETACH_VOLUME = "/vm/detachdatavolume"
CREATE_NOVLAN_BRIDGE = "/network/l2novlan/createbridge"
CREATE_VLAN_BRIDGE = "/network/l2vlan/createbridge"
LOCAL_STORAGE_INIT = "/localstorage/init"
CREATE_EMPTY_VOLUME = "/localstorage/volume/createempty"
DELETE_BITS = "/localstorage/delete"

#: What agents send on their own (``commandpath`` of ``/asyncrest/sendcommand``).
REPORT_VM_STATE = "/kvm/reportvmstate"
RECONNECT_ME = "/kvm/reconnectme"

#: kvmagent VM states -> VmInstanceState names (ZStack's KVMConstant.KvmVmState).
AGENT_VM_STATES = {"Running": "Running", "Shutdown": "Stopped", "Paused": "Paused", "Crashed": "Crashed",
                   "NoState": "NoState"}


@dataclasses.dataclass(frozen=True)
class Bridge:
    """A Linux bridge an L2 network needs on a host."""

    l2NetworkUuid: str
    physicalInterface: str
    vlan: int | None

    @property
    def name(self) -> str:
        # ZStack's KVMRealizeL2NoVlanNetworkBackend / L2VlanNetworkBackend names.
        base = f"br_{self.physicalInterface.replace('.', '_')}"
        return f"{base}_{self.vlan}" if self.vlan is not None else base

    @property
    def path(self) -> str:
        return CREATE_VLAN_BRIDGE if self.vlan is not None else CREATE_NOVLAN_BRIDGE

    def command(self) -> dict[str, Any]:
        cmd = {"physicalInterfaceName": self.physicalInterface, "bridgeName": self.name,
               "l2NetworkUuid": self.l2NetworkUuid, "mtu": 1500}
        if self.vlan is not None:
            cmd["vlan"] = self.vlan
        return cmd


def _bridge(l2: L2NetworkVO) -> Bridge:
    vlan = l2.virtualNetworkId if l2.type == L2_VLAN_NETWORK_TYPE else None
    return Bridge(l2.uuid, l2.physicalInterface, vlan)


def bridges_of_cluster(session: Session, cluster_uuid: str) -> list[Bridge]:
    """The bridges of every L2 network attached to the cluster."""
    rows = session.scalars(select(L2NetworkVO).join(L2NetworkClusterRefVO,
                                                    L2NetworkClusterRefVO.l2NetworkUuid == L2NetworkVO.uuid)
                           .where(L2NetworkClusterRefVO.clusterUuid == cluster_uuid)
                           .order_by(L2NetworkVO.uuid))
    return [_bridge(l2) for l2 in rows]


def bridges_of_l3(session: Session, l3_uuids: list[str]) -> dict[str, Bridge]:
    """L3 network uuid -> the bridge of its L2 network."""
    if not l3_uuids:
        return {}
    rows = session.execute(select(L3NetworkVO.uuid, L2NetworkVO)
                           .join(L2NetworkVO, L2NetworkVO.uuid == L3NetworkVO.l2NetworkUuid)
                           .where(L3NetworkVO.uuid.in_(l3_uuids))).all()
    return {l3_uuid: _bridge(l2) for l3_uuid, l2 in rows}


def local_storage_paths(session: Session, cluster_uuid: str) -> list[tuple[str, str]]:
    """``(uuid, path)`` of every LocalStorage attached to the cluster."""
    rows = session.execute(select(PrimaryStorageVO.uuid, PrimaryStorageVO.mountPath, PrimaryStorageVO.url)
                           .join(PrimaryStorageClusterRefVO,
                                 PrimaryStorageClusterRefVO.primaryStorageUuid == PrimaryStorageVO.uuid)
                           .where(PrimaryStorageClusterRefVO.clusterUuid == cluster_uuid,
                                  PrimaryStorageVO.type == LOCAL_STORAGE_TYPE)).all()
    return [(uuid, mount_path or url) for uuid, mount_path, url in rows]


def storage_paths(session: Session, ps_uuids: list[str]) -> dict[str, str]:
    """Primary storage uuid -> its path on the host."""
    rows = session.execute(select(PrimaryStorageVO.uuid, PrimaryStorageVO.mountPath, PrimaryStorageVO.url)
                           .where(PrimaryStorageVO.uuid.in_(ps_uuids))).all()
    return {uuid: mount_path or url for uuid, mount_path, url in rows}


def volume_to(volume: VolumeSpec) -> dict[str, Any]:
    """ZStack's VolumeTO."""
    return {"volumeUuid": volume.uuid, "installPath": volume.installPath, "deviceId": volume.deviceId or 0,
            "deviceType": "file", "type": volume.type, "format": volume.format or "qcow2", "useVirtio": True,
            "cacheMode": "none", "primaryStorageType": LOCAL_STORAGE_TYPE}


def nic_to(nic: NicSpec, bridge: Bridge | None) -> dict[str, Any]:
    """ZStack's NicTO."""
    return {"uuid": nic.uuid, "mac": nic.mac, "ips": [nic.ip] if nic.ip else [],
            "bridgeName": bridge.name if bridge else None,
            "physicalInterface": bridge.physicalInterface if bridge else None,
            "nicInternalName": nic.internalName, "deviceId": nic.deviceId, "useVirtio": True, "mtu": 1500,
            "driverType": nic.driverType or "virtio", "l2NetworkUuid": bridge.l2NetworkUuid if bridge else None,
            "vlanId": bridge.vlan if bridge else None}


def start_vm_command(vm: VmSpec, bridges: dict[str, Bridge], timeout: int) -> dict[str, Any]:
    """ZStack's StartVmCmd of ``vm``; ``bridges`` maps its nics' L3 networks to bridges."""
    root = next((v for v in vm.volumes if v.type == "Root"), None)
    data = [v for v in vm.volumes if v.type != "Root" and v.installPath]
    return {
        "vmInstanceUuid": vm.uuid, "vmInternalId": vm.internalId, "vmName": vm.name,
        "memory": vm.memorySize, "cpuNum": vm.cpuNum, "cpuSpeed": vm.cpuSpeed,
        "socketNum": 1, "cpuOnSocket": vm.cpuNum, "bootDev": ["hd"],
        "rootVolume": volume_to(root) if root else None, "dataVolumes": [volume_to(v) for v in data],
        "nics": [nic_to(n, bridges.get(n.l3NetworkUuid)) for n in vm.nics],
        "imagePlatform": vm.platform, "imageArchitecture": vm.architecture, "timeout": timeout,
    }


def create_empty_volume_command(host_uuid: str, volume: VolumeSpec, storage_path: str) -> dict[str, Any]:
    return {"hostUuid": host_uuid, "storagePath": storage_path, "installUrl": volume.installPath,
            "size": volume.size, "volumeUuid": volume.uuid, "name": volume.uuid}
