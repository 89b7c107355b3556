"""A small cloud written straight into the database, for VM and volume unit tests.

The rows are what the zone, cluster, host, storage, image, offering and
network services would have made (their models and capacity helpers),
without running those services: a VM test then exercises only the VM and
volume code. :func:`build_world` returns the uuids; :func:`totals` reads
what the capacity accounting says, to compare with what the VMs hold.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mn.db.models.cluster import ClusterVO
from mn.db.models.host import HostCapacityVO, HostVO, SimulatorHostVO
from mn.db.models.image import ImageBackupStorageRefVO, ImageVO
from mn.db.models.network import IpRangeVO, L2NetworkClusterRefVO, L2NetworkVO, L3NetworkVO, UsedIpVO
from mn.db.models.offering import DiskOfferingVO, InstanceOfferingVO
from mn.db.models.storage import (
    BackupStorageVO,
    BackupStorageZoneRefVO,
    LocalStorageHostRefVO,
    PrimaryStorageCapacityVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.models.volume import VolumeVO
from mn.db.models.zone import ZoneVO
from mn.host.capacity import capacity_row
from mn.ids import new_uuid

GIB = 1 << 30


@dataclasses.dataclass
class World:
    zone: str
    cluster: str
    hosts: list[str]
    ps: str
    bs: str
    image: str
    offering: str
    disk_offering: str
    l2: str
    l3: str
    ip_range: str


def build_world(session: Session, *, hosts: int = 2, host_cpu: int = 8, host_memory: int = 16 * GIB,
                ps_capacity: int = 1000 * GIB, ps_type: str = "SimulatorPrimaryStorage",
                ip_count: int = 50, image_size: int = 10 * GIB, vm_cpu: int = 1, vm_memory: int = 1 * GIB,
                disk_size: int = 5 * GIB) -> World:
    """Zone, cluster, Simulator hosts, one primary storage, a backup storage
    with a Ready image, offerings, and an L3 network of ``ip_count`` addresses."""
    zone = ZoneVO(name="zone", state="Enabled", type="zstack")
    session.add(zone)
    session.flush()
    cluster = ClusterVO(name="cluster", zoneUuid=zone.uuid, state="Enabled", hypervisorType="Simulator")
    session.add(cluster)
    session.flush()
    host_uuids = []
    for i in range(hosts):
        host = HostVO(name=f"host{i}", zoneUuid=zone.uuid, clusterUuid=cluster.uuid,
                      managementIp=f"10.0.0.{i + 1}-{new_uuid()[:6]}", hypervisorType="Simulator",
                      state="Enabled", status="Connected")
        session.add(host)
        session.flush()
        session.add(capacity_row(host.uuid, host_cpu, host_memory))
        session.add(SimulatorHostVO(uuid=host.uuid, memoryCapacity=host_memory, cpuCapacity=host_cpu))
        host_uuids.append(host.uuid)
    ps = PrimaryStorageVO(name="ps", zoneUuid=zone.uuid, url="/ps", type=ps_type, mountPath="/ps",
                          state="Enabled", status="Connected")
    session.add(ps)
    session.flush()
    total = ps_capacity * (hosts if ps_type == "LocalStorage" else 1)
    session.add(PrimaryStorageCapacityVO(uuid=ps.uuid, totalCapacity=total, availableCapacity=total,
                                         totalPhysicalCapacity=total, availablePhysicalCapacity=total))
    session.add(PrimaryStorageClusterRefVO(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid))
    if ps_type == "LocalStorage":
        for host_uuid in host_uuids:
            session.add(LocalStorageHostRefVO(hostUuid=host_uuid, primaryStorageUuid=ps.uuid,
                                              totalCapacity=ps_capacity, availableCapacity=ps_capacity,
                                              totalPhysicalCapacity=ps_capacity,
                                              availablePhysicalCapacity=ps_capacity))
    bs = BackupStorageVO(name="bs", url="/bs", totalCapacity=1000 * GIB, availableCapacity=1000 * GIB,
                         type="SimulatorBackupStorage", state="Enabled", status="Connected")
    session.add(bs)
    session.flush()
    session.add(BackupStorageZoneRefVO(backupStorageUuid=bs.uuid, zoneUuid=zone.uuid))
    image = ImageVO(name="image", status="Ready", state="Enabled", size=image_size, actualSize=image_size // 10,
                    platform="Linux", type="zstack", format="qcow2", mediaType="RootVolumeTemplate",
                    guestOsType="Linux", architecture="x86_64")
    session.add(image)
    session.flush()
    session.add(ImageBackupStorageRefVO(imageUuid=image.uuid, backupStorageUuid=bs.uuid, status="Ready",
                                        installPath=f"/bs/{image.uuid}.qcow2"))
    offering = InstanceOfferingVO(name="small", cpuNum=vm_cpu, cpuSpeed=0, memorySize=vm_memory, state="Enabled",
                                  type="UserVm", allocatorStrategy="DefaultHostAllocatorStrategy")
    disk_offering = DiskOfferingVO(name="disk", diskSize=disk_size, state="Enabled", type="zstack")
    session.add_all([offering, disk_offering])
    l2 = L2NetworkVO(name="l2", zoneUuid=zone.uuid, physicalInterface="eth0")
    session.add(l2)
    session.flush()
    session.add(L2NetworkClusterRefVO(clusterUuid=cluster.uuid, l2NetworkUuid=l2.uuid))
    l3 = L3NetworkVO(name="l3", zoneUuid=zone.uuid, l2NetworkUuid=l2.uuid, state="Enabled")
    session.add(l3)
    session.flush()
    network = ipaddress.IPv4Network("192.168.0.0/16")
    start, end = network.network_address + 10, network.network_address + 9 + ip_count
    ip_range = IpRangeVO(name="range", l3NetworkUuid=l3.uuid, startIp=str(start), endIp=str(end),
                         netmask=str(network.netmask), gateway=str(network.network_address + 1),
                         networkCidr=str(network), prefixLen=network.prefixlen)
    session.add(ip_range)
    session.flush()
    return World(zone=zone.uuid, cluster=cluster.uuid, hosts=host_uuids, ps=ps.uuid, bs=bs.uuid,
                 image=image.uuid, offering=offering.uuid, disk_offering=disk_offering.uuid, l2=l2.uuid,
                 l3=l3.uuid, ip_range=ip_range.uuid)


@dataclasses.dataclass
class Totals:
    """Capacity in use according to the accounting tables, and what rows hold it."""

    host_cpu_used: int
    host_memory_used: int
    ps_used: int
    ips_used: int
    vms: int
    nics: int
    volumes: int
    #: What the VM and volume rows say they hold.
    vm_cpu_on_hosts: int
    vm_memory_on_hosts: int
    volume_bytes_placed: int
    nics_with_ip: int


def totals(session: Session, world: World) -> Totals:
    cap = session.execute(select(func.coalesce(func.sum(HostCapacityVO.totalCpu - HostCapacityVO.availableCpu), 0),
                                 func.coalesce(func.sum(HostCapacityVO.totalMemory - HostCapacityVO.availableMemory),
                                               0))
                          .where(HostCapacityVO.uuid.in_(world.hosts))).one()
    ps = session.execute(select(PrimaryStorageCapacityVO.totalCapacity - PrimaryStorageCapacityVO.availableCapacity)
                         .where(PrimaryStorageCapacityVO.uuid == world.ps)).scalar() or 0
    on_hosts = session.execute(select(func.coalesce(func.sum(VmInstanceVO.cpuNum), 0),
                                      func.coalesce(func.sum(VmInstanceVO.memorySize), 0))
                               .where(VmInstanceVO.hostUuid.is_not(None))).one()
    count = lambda stmt: session.scalar(stmt) or 0  # noqa: E731
    return Totals(
        host_cpu_used=int(cap[0]), host_memory_used=int(cap[1]), ps_used=int(ps),
        ips_used=count(select(func.count()).select_from(UsedIpVO)),
        vms=count(select(func.count()).select_from(VmInstanceVO)),
        nics=count(select(func.count()).select_from(VmNicVO)),
        volumes=count(select(func.count()).select_from(VolumeVO)),
        vm_cpu_on_hosts=int(on_hosts[0]), vm_memory_on_hosts=int(on_hosts[1]),
        volume_bytes_placed=count(select(func.sum(VolumeVO.size)).where(VolumeVO.primaryStorageUuid == world.ps)),
        nics_with_ip=count(select(func.count()).select_from(VmNicVO).where(VmNicVO.usedIpUuid.is_not(None))))


def assert_consistent(t: Totals) -> None:
    """The accounting equals what the rows hold (memory overcommit ratio 1)."""
    assert (t.host_cpu_used, t.host_memory_used) == (t.vm_cpu_on_hosts, t.vm_memory_on_hosts), t
    assert t.ps_used == t.volume_bytes_placed, t
    assert t.ips_used == t.nics_with_ip, t


async def start_vm_node(db_url: str, *extra_services: type):
    """A SmallNode with the VM and volume services and a flow engine over ``flows/``.

    Global configs are served from the process-wide registry, so tests can
    change them with ``await entry.update(...)``.
    """
    from mn.flow import FlowEngine, load_flows
    from mn.globalconfig import REGISTRY
    from mn.vm.service import VmInstanceService
    from mn.volume.service import VolumeService
    from tests.support.small_node import SmallNode

    node = SmallNode(db_url, registry=REGISTRY)
    await node.start(VmInstanceService, VolumeService, *extra_services)
    node.flows = FlowEngine(node, load_flows())
    return node


async def stop_vm_node(node) -> None:
    await node.flows.stop()
    await node.stop()
