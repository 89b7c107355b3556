"""VM nics and their addresses, inside the caller's transaction.

A nic row and the address it holds are created together and given back
together: :func:`add_nic` allocates the address (``allocate_ip``) and
inserts the nic in one transaction, :func:`remove_nic` releases and deletes
in one. A destroyed VM keeps its nics without addresses
(:func:`release_nic_ip`); they get new ones when it starts again
(:func:`give_nic_ip`).
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.identity import ownership
from mn.ids import new_uuid
from mn.network.ipam import allocate_ip, release_ip
from mn.vm.records import forget, owner_of

_random = random.SystemRandom()

#: ZStack's VmNicVO resource type (ownership, tags).
NIC_RESOURCE_TYPE = VmNicVO.__tablename__


def new_mac() -> str:
    """A random locally administered unicast MAC in ZStack's ``fa:`` prefix."""
    return "fa:" + ":".join(f"{_random.randrange(256):02x}" for _ in range(5))


def internal_name(vm_internal_id: int | None, device_id: int) -> str:
    """ZStack's nic name on the hypervisor: ``vnic<vm internal id>.<device id>``."""
    return f"vnic{vm_internal_id}.{device_id}"


def next_device_id(session: Session, vm_uuid: str) -> int:
    """The lowest device id none of the VM's nics uses."""
    used = set(session.scalars(select(VmNicVO.deviceId).where(VmNicVO.vmInstanceUuid == vm_uuid)))
    device_id = 0
    while device_id in used:
        device_id += 1
    return device_id


def add_nic(node: Any, session: Session, vm: VmInstanceVO, l3_network_uuid: str, device_id: int, *,
            nic_uuid: str | None = None, static_ip: str | None = None, mac: str | None = None,
            driver_type: str | None = None, account_uuid: str | None = None) -> VmNicVO:
    """Insert a nic of ``vm`` on the L3 network with a newly allocated address.

    The address is ``static_ip`` if given; allocation failures (no free
    address, address taken) raise OperationError and, since the caller's
    transaction then rolls back, leave nothing behind. ``account_uuid``,
    the VM's owner, saves reading it when the caller knows it.
    """
    nic_uuid = nic_uuid or new_uuid()
    # The address first, so the nic row is written once, already holding it
    # (UsedIpVO.vmNicUuid has no foreign key for this reason).
    used = allocate_ip(session, l3_network_uuid, ip=static_ip, vm_nic_uuid=nic_uuid)
    nic = VmNicVO(uuid=nic_uuid, vmInstanceUuid=vm.uuid, l3NetworkUuid=l3_network_uuid, mac=mac or new_mac(),
                  hypervisorType=vm.hypervisorType, deviceId=device_id,
                  internalName=internal_name(vm.internalId, device_id), driverType=driver_type,
                  usedIpUuid=used.uuid, ip=used.ip, netmask=used.netmask, gateway=used.gateway,
                  ipVersion=used.ipVersion)
    session.add(nic)
    session.flush()
    account = account_uuid or owner_of(session, vm.uuid)
    if account is not None:
        # A nic belongs to the VM's account (ZStack's VmNicVO is OwnedByAccount).
        ownership.own(session, account, nic.uuid, NIC_RESOURCE_TYPE)
    return nic


def give_nic_ip(session: Session, nic: VmNicVO, static_ip: str | None = None) -> None:
    """Allocate an address of the nic's L3 network to a nic that has none."""
    used = allocate_ip(session, nic.l3NetworkUuid, ip=static_ip, vm_nic_uuid=nic.uuid)
    nic.usedIpUuid, nic.ip, nic.netmask, nic.gateway, nic.ipVersion = (
        used.uuid, used.ip, used.netmask, used.gateway, used.ipVersion)
    session.flush()


def release_nic_ip(session: Session, nic_uuid: str) -> bool:
    """Give the nic's address back, keeping the nic; False if it held none."""
    used_ip_uuid = session.scalar(select(VmNicVO.usedIpUuid).where(VmNicVO.uuid == nic_uuid))
    if used_ip_uuid is None:
        return False
    result = session.execute(
        update(VmNicVO).where(VmNicVO.uuid == nic_uuid, VmNicVO.usedIpUuid == used_ip_uuid)
        .values(usedIpUuid=None, ip=None, netmask=None, gateway=None),
        execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False
    release_ip(session, used_ip_uuid)
    return True


def remove_nic(node: Any, session: Session, nic_uuid: str) -> bool:
    """Give the nic's address back and delete it (with its tags and owner); False if gone."""
    release_nic_ip(session, nic_uuid)
    nic = session.get(VmNicVO, nic_uuid)
    if nic is None:
        return False
    session.delete(nic)
    session.flush()
    forget(node, session, [nic_uuid])
    return True


def nics_of(session: Session, vm_uuid: str) -> list[VmNicVO]:
    return list(session.scalars(select(VmNicVO).where(VmNicVO.vmInstanceUuid == vm_uuid)
                                .order_by(VmNicVO.deviceId)))
