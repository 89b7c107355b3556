"""Reading and changing VM rows inside one transaction.

The functions taking a ``session`` run in the caller's transaction (``await
node.db.run(fn)``), so a VM's state, its host's capacity, its nics and its
addresses change together or not at all. Every change that gives something
back is conditional on the row still holding it (``UPDATE ... WHERE
hostUuid = :h``), so running it twice — a rollback retried after a crash —
gives back once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mn.api.query import build_inventories, inventory_schema
from mn.db.models.host import HostVO
from mn.db.models.identity import AccountResourceRefVO
from mn.db.models.vm import VmInstanceSequenceNumberVO, VmInstanceVO, VmNicVO
from mn.errors import OperationError, SysErrors
from mn.host.capacity import release_host_capacity
from mn.tags import TagManager
from mn.vm.inventory import VmInstanceInventory

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts of one transaction that keeps losing InnoDB deadlocks.
DEADLOCK_ATTEMPTS = 5
_RETRYABLE_MYSQL_ERRORS = (1205, 1213)  # lock wait timeout, deadlock


async def run_tx(node: "ManagementNode", fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``node.db.run(fn, *args, **kwargs)``, run again when InnoDB picks it as a deadlock victim.

    Capacity, addresses and volumes of concurrent creates are taken in one
    transaction each; InnoDB may roll one back to break a lock cycle, and
    running it again is safe because nothing of it was kept.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return await node.db.run(fn, *args, **kwargs)
        except DBAPIError as exc:
            code = (getattr(exc.orig, "args", None) or (None,))[0]
            if attempt == DEADLOCK_ATTEMPTS or code not in _RETRYABLE_MYSQL_ERRORS:
                raise
            log.info("vm transaction %s lost a lock race (%s), attempt %d", getattr(fn, "__name__", fn),
                     exc.orig, attempt)
            await asyncio.sleep(0.02 * attempt)
    raise AssertionError("unreachable")


def vm_not_found(vm_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                             f"unable to find vm instance[uuid:{vm_uuid}], it may have been deleted")


def find_vm(session: Session, vm_uuid: str) -> VmInstanceVO:
    """The VM's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(VmInstanceVO, vm_uuid, populate_existing=True)
    if vo is None:
        raise vm_not_found(vm_uuid)
    return vo


def inventory_of(session: Session, vm: VmInstanceVO) -> VmInstanceInventory:
    """The VM's inventory with its nics and volumes, as a query shows it."""
    session.flush()
    data = build_inventories(session, inventory_schema(VmInstanceInventory), [vm])[0]
    return VmInstanceInventory.model_validate(data)


def vm_inventory(session: Session, vm_uuid: str) -> VmInstanceInventory:
    return inventory_of(session, find_vm(session, vm_uuid))


def set_state(session: Session, vm_uuid: str, expected: str | Iterable[str], new_state: str,
              **values: Any) -> bool:
    """Move the VM to ``new_state`` (and set ``values``) only if it is in ``expected``.

    Returns False, changing nothing, when it is not (someone else moved it).
    """
    states = [expected] if isinstance(expected, str) else list(expected)
    result = session.execute(
        update(VmInstanceVO).where(VmInstanceVO.uuid == vm_uuid, VmInstanceVO.state.in_(states))
        .values(state=new_state, **values), execution_options={"synchronize_session": False})
    return result.rowcount == 1


def next_internal_id(session: Session) -> int:
    """A new VM internal id (ZStack's VmInstanceSequenceNumberVO)."""
    result = session.execute(insert(VmInstanceSequenceNumberVO).values())
    return int(result.inserted_primary_key[0])


def take_host(session: Session, vm_uuid: str, host_uuid: str) -> bool:
    """Record that the VM holds capacity on ``host_uuid`` (reserved by the allocator).

    Sets hostUuid and the host's cluster, zone and hypervisor type. Returns
    False if the VM row is gone, in which case the caller gives the
    capacity back.
    """
    # One statement, the host's columns read by primary key inside it; no
    # row is matched when either is gone.
    def of_host(column):
        return select(column).where(HostVO.uuid == host_uuid).scalar_subquery()

    result = session.execute(
        update(VmInstanceVO)
        .where(VmInstanceVO.uuid == vm_uuid, exists().where(HostVO.uuid == host_uuid))
        .values(hostUuid=host_uuid, clusterUuid=of_host(HostVO.clusterUuid), zoneUuid=of_host(HostVO.zoneUuid),
                hypervisorType=of_host(HostVO.hypervisorType)),
        execution_options={"synchronize_session": False})
    return result.rowcount == 1


def return_host(session: Session, vm_uuid: str, host_uuid: str, cpu_num: int, memory_size: int,
                **values: Any) -> bool:
    """Give back the VM's capacity on ``host_uuid`` if the VM still holds it there.

    Clears ``hostUuid`` (setting ``values`` too, e.g. the new state and
    ``lastHostUuid``) and releases the capacity in the same transaction.
    Returns whether anything was given back.
    """
    result = session.execute(
        update(VmInstanceVO).where(VmInstanceVO.uuid == vm_uuid, VmInstanceVO.hostUuid == host_uuid)
        .values(hostUuid=None, **values), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False
    release_host_capacity(session, host_uuid, cpu_num, memory_size)
    return True


def delete_vm_row(node: Any, session: Session, vm_uuid: str) -> bool:
    """Delete the VM's row, nics included, with the tags and owners of both.

    The caller has given back what they held (capacity, addresses, volumes).
    """
    nic_uuids = list(session.scalars(select(VmNicVO.uuid).where(VmNicVO.vmInstanceUuid == vm_uuid)))
    session.execute(delete(VmNicVO).where(VmNicVO.vmInstanceUuid == vm_uuid),
                    execution_options={"synchronize_session": False})
    result = session.execute(delete(VmInstanceVO).where(VmInstanceVO.uuid == vm_uuid),
                             execution_options={"synchronize_session": False})
    forget(node, session, [vm_uuid, *nic_uuids])
    return result.rowcount == 1


def owner_of(session: Session, resource_uuid: str) -> str | None:
    """The account owning a resource (None where ownership is not recorded)."""
    return session.scalar(select(AccountResourceRefVO.accountUuid)
                          .where(AccountResourceRefVO.resourceUuid == resource_uuid))


def forget(node: Any, session: Session, uuids: list[str]) -> None:
    """Delete the tags and ownership records of resources deleted in this transaction."""
    if not uuids:
        return
    TagManager.delete_tags_of_in_session(session, uuids)
    identity = getattr(node, "identity", None)
    if identity is not None:
        identity.delete_refs_in_session(session, uuids)
