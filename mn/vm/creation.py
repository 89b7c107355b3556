"""CreateVmInstance requests: ZStack's VmInstanceApiInterceptor checks, and the
data map of the ``vm.create`` chain.

:func:`creation_data` runs inside one transaction and either raises the
error a client should see (400 for a request that can never work, 409 for
one that cannot work now: a disabled image, offering, network, zone...) or
returns everything the chain needs, uuids of the rows it will create
included (so a rollback after a crash knows which rows are its own).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.cluster import ClusterVO
from mn.db.models.host import HOST_CONNECTED, HOST_ENABLED, HostVO
from mn.db.models.image import ImageVO
from mn.db.models.network import L3NetworkVO
from mn.db.models.offering import DiskOfferingVO, InstanceOfferingVO
from mn.db.models.vm import USER_VM_TYPE, VmInstanceVO
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.image import constants as image_constants
from mn.vm.config import UNIQUE_VM_NAME
from mn.vm.messages import INSTANT_START, APICreateVmInstanceMsg
from mn.vm.tags import static_ips_of

ENABLED = "Enabled"


def invalid(details: str) -> OperationError:
    """A request that can never work (HTTP 400)."""
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def refused(details: str) -> OperationError:
    """A request that cannot work now (HTTP 409), ZStack's ``operr``."""
    return OperationError.of(SysErrors.OPERATION_ERROR, details)


def creation_data(session: Session, msg: APICreateVmInstanceMsg, vm_uuid: str) -> dict:
    """Check ``msg`` and return the ``vm.create`` data map for the VM ``vm_uuid``."""
    if msg.imageUuid is None:
        raise invalid("imageUuid is required: a vm is created from an image")
    image = session.get(ImageVO, msg.imageUuid)
    if image is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"image[uuid:{msg.imageUuid}] is not found")
    vm_type = msg.type or USER_VM_TYPE
    _check_image(image, msg, vm_type)
    compute = _compute(session, msg)
    l3_uuids = list(msg.l3NetworkUuids or [])
    default_l3 = _check_networks(session, msg, l3_uuids, vm_type)
    zone_uuid, cluster_uuid, host_uuid = _scope(session, msg, l3_uuids)
    if UNIQUE_VM_NAME.value and session.scalar(select(VmInstanceVO.uuid).where(VmInstanceVO.name == msg.name)):
        raise refused(f"could not create vm, a vm with the name [{msg.name}] already exists")

    root_size = _root_disk_size(session, msg, image)
    data_sizes = _data_disk_sizes(session, msg)
    static_ips = static_ips_of(msg.systemTags)
    stray = sorted(set(static_ips) - set(l3_uuids))
    if stray:
        raise invalid(f"staticIp system tags name L3 networks {', '.join(stray)} that are not in l3NetworkUuids")
    root = {"uuid": new_uuid(), "name": f"ROOT-for-{msg.name}", "size": root_size,
            "description": f"Root volume for VM[uuid:{vm_uuid}]",
            "diskOfferingUuid": msg.rootDiskOfferingUuid, "format": image.format}
    data_volumes = [{"uuid": new_uuid(), "name": f"DATA-for-{msg.name}", "size": size,
                     "diskOfferingUuid": offering, "format": "qcow2"} for offering, size in data_sizes]
    return {
        "vmUuid": vm_uuid, "api": msg.model_dump(mode="json"),
        "name": msg.name, "description": msg.description, "type": vm_type,
        **compute,
        "platform": msg.platform or image.platform, "guestOsType": msg.guestOsType or image.guestOsType,
        "architecture": msg.architecture or image.architecture,
        "imageUuid": image.uuid,
        "zoneUuid": zone_uuid, "clusterUuid": cluster_uuid, "requestedHostUuid": host_uuid,
        "l3NetworkUuids": l3_uuids, "defaultL3NetworkUuid": default_l3,
        "nicUuids": [new_uuid() for _ in l3_uuids], "staticIps": static_ips,
        "rootVolume": root, "dataVolumes": data_volumes,
        "primaryStorageUuidForRootVolume": msg.primaryStorageUuidForRootVolume,
        "primaryStorageUuid": msg.primaryStorageUuidForRootVolume,
        "requiredDiskSize": root_size + sum(size for _, size in data_sizes),
        "strategy": msg.strategy or INSTANT_START,
    }


def _check_image(image: ImageVO, msg: APICreateVmInstanceMsg, vm_type: str) -> None:
    if image.state != image_constants.ENABLED:
        raise refused(f"image[uuid:{image.uuid}] is Disabled, can't create vm from it")
    if image.status != image_constants.READY:
        raise refused(f"image[uuid:{image.uuid}] is not ready yet, can't create vm from it")
    if image.mediaType not in (image_constants.ROOT_VOLUME_TEMPLATE, image_constants.ISO):
        raise invalid(f"image[uuid:{image.uuid}] is of mediaType: {image.mediaType}, only RootVolumeTemplate "
                      f"and ISO can be used to create vm")
    if image.system and vm_type == USER_VM_TYPE:
        raise invalid(f"image[uuid:{image.uuid}] is system image, can't be used to create user vm")
    if image.mediaType == image_constants.ISO and msg.rootDiskOfferingUuid is None and msg.rootDiskSize is None:
        raise invalid("image mediaType is ISO but missing root disk settings: give rootDiskOfferingUuid "
                      "or rootDiskSize")


def _compute(session: Session, msg: APICreateVmInstanceMsg) -> dict:
    """CPU, memory and allocator strategy, from the offering or the request."""
    if msg.instanceOfferingUuid is not None:
        offering = session.get(InstanceOfferingVO, msg.instanceOfferingUuid)
        if offering is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                    f"instance offering[uuid:{msg.instanceOfferingUuid}] is not found")
        if offering.state != ENABLED:
            raise refused(f"instance offering[uuid:{offering.uuid}] is {offering.state}, can't create vm from it")
        return {"instanceOfferingUuid": offering.uuid, "cpuNum": msg.cpuNum or offering.cpuNum,
                "cpuSpeed": offering.cpuSpeed, "memorySize": msg.memorySize or offering.memorySize,
                "reservedMemorySize": msg.reservedMemorySize or offering.reservedMemorySize,
                "allocatorStrategy": offering.allocatorStrategy}
    if msg.cpuNum is None or msg.memorySize is None:
        raise invalid("either instanceOfferingUuid or both cpuNum and memorySize must be given")
    return {"instanceOfferingUuid": None, "cpuNum": msg.cpuNum, "cpuSpeed": 0, "memorySize": msg.memorySize,
            "reservedMemorySize": msg.reservedMemorySize or 0, "allocatorStrategy": None}


def _check_networks(session: Session, msg: APICreateVmInstanceMsg, l3_uuids: list[str], vm_type: str) -> str | None:
    """The default L3 network, after ZStack's checks of the L3 networks."""
    duplicated = sorted({u for u in l3_uuids if l3_uuids.count(u) > 1})
    if duplicated:
        raise refused(f"Can't add same uuid in the l3Network,uuid: {duplicated[0]}")
    for l3 in session.scalars(select(L3NetworkVO).where(L3NetworkVO.uuid.in_(l3_uuids))):
        if l3.state != ENABLED:
            raise refused(f"l3Network[uuid:{l3.uuid}] is Disabled, can not create vm on it")
        if l3.system and vm_type == USER_VM_TYPE:
            raise refused(f"l3Network[uuid:{l3.uuid}] is system network, can not create user vm on it")
    default = msg.defaultL3NetworkUuid
    if default is None:
        if len(l3_uuids) > 1:
            raise invalid("there are more than one L3 network specified in l3NetworkUuids, but "
                          "defaultL3NetworkUuid is null")
        return l3_uuids[0] if l3_uuids else None
    if default not in l3_uuids:
        raise invalid(f"defaultL3NetworkUuid[uuid:{default}] is not in l3NetworkUuids{l3_uuids}")
    return default


def _scope(session: Session, msg: APICreateVmInstanceMsg, l3_uuids: list[str]) -> tuple[str | None, ...]:
    """(zone, cluster, host) the VM must go to; the smallest given wins, as in ZStack."""
    host_uuid, cluster_uuid, zone_uuid = msg.hostUuid, msg.clusterUuid, msg.zoneUuid
    if host_uuid is not None:
        host = _existing(session, HostVO, host_uuid, "host")
        if host.state != HOST_ENABLED:
            raise refused(f"host[uuid:{host_uuid}] is specified but it's {host.state}, can not create vm from it")
        if host.status != HOST_CONNECTED:
            raise refused(f"host[uuid:{host_uuid}] is specified but it's connection status is {host.status}, "
                          f"can not create vm from it")
        cluster_uuid, zone_uuid = host.clusterUuid, host.zoneUuid
    elif cluster_uuid is not None:
        zone_uuid = _existing(session, ClusterVO, cluster_uuid, "cluster").zoneUuid
    for what, model, uuid in (("zone", ZoneVO, zone_uuid), ("cluster", ClusterVO, cluster_uuid)):
        if uuid is not None and _existing(session, model, uuid, what).state != ENABLED:
            raise refused(f"{what}[uuid:{uuid}] is specified but it's Disabled, can not create vm from it")
    l3_zones = set(session.scalars(select(L3NetworkVO.zoneUuid).where(L3NetworkVO.uuid.in_(l3_uuids))))
    if len(l3_zones) > 1:
        raise invalid(f"the L3 networks {l3_uuids} are in different zones {sorted(l3_zones)}")
    if l3_zones:
        l3_zone = l3_zones.pop()
        if zone_uuid is not None and zone_uuid != l3_zone:
            raise invalid(f"the L3 networks are in zone[uuid:{l3_zone}], not in zone[uuid:{zone_uuid}] where "
                          f"the vm is asked to be")
        zone_uuid = l3_zone
    if zone_uuid is None:
        # ZStack answers this with operr; it is a missing parameter, so a 400 here.
        raise invalid("could not create vm, because at least one of field (l3NetworkUuids,zoneUuid,clusterUuid,"
                      "hostUuid) should be set")
    return zone_uuid, cluster_uuid, host_uuid


def _existing(session: Session, model, uuid: str, what: str):
    row = session.get(model, uuid)
    if row is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"{what}[uuid:{uuid}] is not found")
    return row


def _root_disk_size(session: Session, msg: APICreateVmInstanceMsg, image: ImageVO) -> int:
    if image.mediaType != image_constants.ISO:
        return image.size
    if msg.rootDiskOfferingUuid is not None:
        return _disk_offering(session, msg.rootDiskOfferingUuid).diskSize
    return msg.rootDiskSize


def _data_disk_sizes(session: Session, msg: APICreateVmInstanceMsg) -> list[tuple[str | None, int]]:
    """(disk offering uuid, size) of each data volume, offerings first."""
    sizes = [(uuid, _disk_offering(session, uuid).diskSize) for uuid in msg.dataDiskOfferingUuids or []]
    return sizes + [(None, size) for size in msg.dataDiskSizes or []]


def _disk_offering(session: Session, uuid: str) -> DiskOfferingVO:
    offering = session.get(DiskOfferingVO, uuid)
    if offering is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"disk offering[uuid:{uuid}] is not found")
    if offering.state != ENABLED:
        raise refused(f"disk offerings[uuids:{[uuid]}] are Disabled, can not create vm from it")
    return offering
