"""InstanceOfferingInventory and DiskOfferingInventory: offerings as the API shows them."""

from __future__ import annotations

from datetime import datetime

from mn.api.inventory import Inventory
from mn.db.models.offering import DiskOfferingVO, InstanceOfferingVO


class InstanceOfferingInventory(Inventory):
    """ZStack's InstanceOfferingInventory. ZStack's ``vmInstance`` expanded query
    (the VMs made with it) joins once VMs exist."""

    VO = InstanceOfferingVO

    uuid: str
    name: str
    description: str | None = None
    cpuNum: int
    cpuSpeed: int = 0
    memorySize: int
    reservedMemorySize: int = 0
    type: str
    allocatorStrategy: str | None = None
    sortKey: int = 0
    createDate: datetime
    lastOpDate: datetime
    state: str


class DiskOfferingInventory(Inventory):
    """ZStack's DiskOfferingInventory. ZStack's ``volume`` expanded query (the
    volumes made with it) joins once volumes exist."""

    VO = DiskOfferingVO

    uuid: str
    name: str
    description: str | None = None
    diskSize: int
    sortKey: int = 0
    state: str
    type: str
    createDate: datetime
    lastOpDate: datetime
    allocatorStrategy: str | None = None
