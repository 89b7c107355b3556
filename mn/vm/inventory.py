"""VmInstanceInventory and VmNicInventory: VMs and nics as the API shows them."""

from __future__ import annotations

from datetime import datetime
from pydantic import field_validator

# The inventories our relations name are imported so that they are registered
# wherever VM inventories are used (relations resolve them by name).
import mn.cluster.inventory  # noqa: F401
import mn.host.inventory  # noqa: F401
import mn.image.inventory  # noqa: F401
import mn.offering.inventory  # noqa: F401
import mn.zone.inventory  # noqa: F401
from mn.api.inventory import Inventory, Relation
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.network.l3.inventory import UsedIpInventory
from mn.volume.inventory import VolumeInventory


class VmNicInventory(Inventory):
    """ZStack's VmNicInventory (``usedIpUuid`` is @APINoSee there, and here).

    ``usedIps`` (shown) are the nic's UsedIpInventory rows; ``l3Network``,
    ``vmInstance`` and ``usedIp`` are ZStack's expanded queries.
    """

    VO = VmNicVO
    RELATIONS = {
        "usedIps": Relation("UsedIpInventory", "uuid", "vmNicUuid", many=True),
        "vmInstance": Relation("VmInstanceInventory", "vmInstanceUuid", "uuid", many=False, expanded=True),
        "l3Network": Relation("L3NetworkInventory", "l3NetworkUuid", "uuid", many=False, expanded=True),
        "usedIp": Relation("UsedIpInventory", "uuid", "vmNicUuid", many=False, expanded=True),
    }

    uuid: str
    vmInstanceUuid: str | None = None
    l3NetworkUuid: str | None = None
    ip: str | None = None
    mac: str
    hypervisorType: str | None = None
    netmask: str | None = None
    gateway: str | None = None
    metaData: str | None = None
    ipVersion: int | None = None
    driverType: str | None = None
    usedIps: list[UsedIpInventory] = []
    internalName: str | None = None
    deviceId: int
    type: str
    state: str
    createDate: datetime
    lastOpDate: datetime


class VmInstanceInventory(Inventory):
    """ZStack's VmInstanceInventory.

    ``vmNics`` and ``allVolumes`` are shown (part of the JSON); zone,
    cluster, host, image, instanceOffering and rootVolume are ZStack's
    expanded queries (``host.name=h1``). ``internalId`` is @APINoSee in
    ZStack and not shown; ``vmCdRoms`` (CD-ROM devices) are not modelled.
    """

    VO = VmInstanceVO
    RELATIONS = {
        "vmNics": Relation("VmNicInventory", "uuid", "vmInstanceUuid", many=True),
        "allVolumes": Relation("VolumeInventory", "uuid", "vmInstanceUuid", many=True),
        "zone": Relation("ZoneInventory", "zoneUuid", "uuid", many=False, expanded=True),
        "cluster": Relation("ClusterInventory", "clusterUuid", "uuid", many=False, expanded=True),
        "host": Relation("HostInventory", "hostUuid", "uuid", many=False, expanded=True),
        "image": Relation("ImageInventory", "imageUuid", "uuid", many=False, expanded=True),
        "instanceOffering": Relation("InstanceOfferingInventory", "instanceOfferingUuid", "uuid", many=False,
                                     expanded=True),
        "rootVolume": Relation("VolumeInventory", "rootVolumeUuid", "uuid", many=False, expanded=True),
    }

    uuid: str
    name: str
    description: str | None = None
    zoneUuid: str | None = None
    clusterUuid: str | None = None
    imageUuid: str | None = None
    hostUuid: str | None = None
    lastHostUuid: str | None = None
    instanceOfferingUuid: str | None = None
    rootVolumeUuid: str | None = None
    platform: str | None = None
    architecture: str | None = None
    defaultL3NetworkUuid: str | None = None
    type: str
    hypervisorType: str | None = None
    memorySize: int
    reservedMemorySize: int | None = None
    cpuNum: int
    cpuSpeed: int
    allocatorStrategy: str | None = None
    createDate: datetime
    lastOpDate: datetime
    state: str
    vmNics: list[VmNicInventory] = []
    allVolumes: list[VolumeInventory] = []
    guestOsType: str | None = None

    @field_validator("reservedMemorySize")
    @classmethod
    def _zero_is_absent(cls, value: int | None) -> int | None:
        # ZStack shows no reservedMemorySize rather than 0.
        return value or None
