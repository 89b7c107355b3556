"""Which VM instances depend on an L2 network in a cluster: those with a nic on
one of its L3 networks.

The VM tables belong to the VM service; they are read by name from the
metadata, so this module does not depend on it (and finds no VM in a build
without it).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models import Base
from mn.db.models.network import L3NetworkVO


def vms_using_l2_in_cluster(session: Session, l2_network_uuid: str, cluster_uuid: str) -> list[str]:
    """Uuids of VM instances of the cluster with a nic on an L3 network of the L2 network."""
    tables = Base.metadata.tables
    nic, vm = tables.get("VmNicVO"), tables.get("VmInstanceVO")
    if nic is None or vm is None:
        return []
    if "clusterUuid" in vm.c:
        in_cluster = vm.c.clusterUuid == cluster_uuid
    elif "hostUuid" in vm.c and "HostVO" in tables:
        host = tables["HostVO"]
        in_cluster = vm.c.hostUuid.in_(select(host.c.uuid).where(host.c.clusterUuid == cluster_uuid))
    else:
        return []
    l3_networks = select(L3NetworkVO.uuid).where(L3NetworkVO.l2NetworkUuid == l2_network_uuid)
    return list(session.scalars(
        select(vm.c.uuid).distinct()
        .join(nic, nic.c.vmInstanceUuid == vm.c.uuid)
        .where(nic.c.l3NetworkUuid.in_(l3_networks), in_cluster)
        .order_by(vm.c.uuid)))
