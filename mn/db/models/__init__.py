"""All tables. Importing this package fills ``Base.metadata`` completely."""

from mn.db.models.api_job import ApiJobVO
from mn.db.models.base import Base, ResourceMixin
from mn.db.models.cluster import ClusterVO
from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.garbage_collector import GarbageCollectorVO
from mn.db.models.global_config import GlobalConfigVO
from mn.db.models.host import HostCapacityVO, HostVO, KVMHostVO, SimulatorHostVO
from mn.db.models.identity import AccessKeyVO, AccountResourceRefVO, AccountVO, SessionVO
from mn.db.models.image import ImageBackupStorageRefVO, ImageVO
from mn.db.models.management_node import ManagementNodeVO
from mn.db.models.network import (IpRangeVO, L2NetworkClusterRefVO, L2NetworkVO, L2VlanNetworkVO, L3NetworkDnsVO,
                                   L3NetworkVO, UsedIpVO)
from mn.db.models.offering import DiskOfferingVO, InstanceOfferingVO
from mn.db.models.storage import (BackupStorageVO, BackupStorageZoneRefVO, LocalStorageHostRefVO,
                                  LocalStorageResourceRefVO, PrimaryStorageCapacityVO,
                                  PrimaryStorageClusterRefVO, PrimaryStorageVO)
from mn.db.models.tag import SystemTagVO, UserTagVO
from mn.db.models.vm import VmInstanceSequenceNumberVO, VmInstanceVO, VmNicVO
from mn.db.models.volume import VolumeVO
from mn.db.models.zone import ZoneVO

__all__ = [
    "AccessKeyVO",
    "AccountResourceRefVO",
    "AccountVO",
    "ApiJobVO",
    "BackupStorageVO",
    "BackupStorageZoneRefVO",
    "Base",
    "ClusterVO",
    "DiskOfferingVO",
    "FlowChainVO",
    "GarbageCollectorVO",
    "GlobalConfigVO",
    "HostCapacityVO",
    "HostVO",
    "ImageBackupStorageRefVO",
    "ImageVO",
    "KVMHostVO",
    "InstanceOfferingVO",
    "IpRangeVO",
    "L2NetworkClusterRefVO",
    "L2NetworkVO",
    "L2VlanNetworkVO",
    "L3NetworkDnsVO",
    "L3NetworkVO",
    "LocalStorageHostRefVO",
    "LocalStorageResourceRefVO",
    "ManagementNodeVO",
    "PrimaryStorageCapacityVO",
    "PrimaryStorageClusterRefVO",
    "PrimaryStorageVO",
    "ResourceMixin",
    "SessionVO",
    "SimulatorHostVO",
    "SystemTagVO",
    "UsedIpVO",
    "UserTagVO",
    "VmInstanceSequenceNumberVO",
    "VmInstanceVO",
    "VmNicVO",
    "VolumeVO",
    "ZoneVO",
]
