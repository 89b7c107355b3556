"""HostInventory: a host as the API shows it."""

from __future__ import annotations

from datetime import datetime

from mn.api.inventory import Inventory, Relation
from mn.db.models.host import HostVO


class HostInventory(Inventory):
    """ZStack's HostInventory.

    The capacity fields come from HostCapacityVO (column properties of
    HostVO), so ``availableMemoryCapacity>1073741824`` is a query like any
    other. ``zone`` and ``cluster`` are ZStack's expanded queries
    (``cluster.name=c1``); ``vmInstance`` joins when VmInstanceInventory
    exists. ZStack's IPMI and hardware-monitor fields have no table here and
    are not shown.
    """

    VO = HostVO
    RELATIONS = {
        "zone": Relation("ZoneInventory", "zoneUuid", "uuid", many=False, expanded=True),
        "cluster": Relation("ClusterInventory", "clusterUuid", "uuid", many=False, expanded=True),
    }

    zoneUuid: str
    name: str
    uuid: str
    clusterUuid: str
    description: str | None = None
    managementIp: str
    hypervisorType: str
    state: str
    status: str
    totalCpuCapacity: int | None = None
    availableCpuCapacity: int | None = None
    cpuSockets: int | None = None
    totalMemoryCapacity: int | None = None
    availableMemoryCapacity: int | None = None
    cpuNum: int | None = None
    architecture: str | None = None
    createDate: datetime
    lastOpDate: datetime
