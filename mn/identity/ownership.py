"""Resource ownership: one AccountResourceRefVO row per resource names its account.

A normal account sees and changes only the resources whose row names it;
an admin (an account of type SystemAdmin) sees every resource. Everything
here is synchronous and runs inside the caller's transaction, so a
resource and its ownership are written (and deleted) together.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, delete, exists, select, true, update
from sqlalchemy.orm import Session

from mn.api.message import SessionInfo
from mn.db.models.identity import AccountResourceRefVO
from mn.identity.constants import ADMIN_ACCOUNT_UUID, PERMISSION_WRITE

Ref = AccountResourceRefVO


def owner_of(session: SessionInfo | None) -> str:
    """The account that owns what ``session`` creates; the admin when there is no session
    (resources the system creates by itself)."""
    return session.accountUuid if session is not None else ADMIN_ACCOUNT_UUID


def own(sql_session: Session, account_uuid: str, resource_uuid: str, resource_type: str) -> None:
    """Record ``account_uuid`` as the owner of a new resource."""
    sql_session.add(Ref(accountUuid=account_uuid, ownerAccountUuid=account_uuid,
                        resourceUuid=resource_uuid, resourceType=resource_type,
                        concreteResourceType=resource_type, permission=PERMISSION_WRITE,
                        isShared=False))


def visible_condition(session: SessionInfo, uuid_column: ColumnElement) -> ColumnElement[bool]:
    """A WHERE condition keeping the rows whose ``uuid_column`` the session may see."""
    if session.isAdmin:
        return true()
    return exists().where(Ref.resourceUuid == uuid_column,
                          Ref.accountUuid == session.accountUuid)


def invisible(sql_session: Session, session: SessionInfo, uuids: Iterable[str]) -> list[str]:
    """The ``uuids`` the session may not see, in the order given."""
    uuids = list(dict.fromkeys(uuids))
    if session.isAdmin or not uuids:
        return []
    owned = set(sql_session.scalars(select(Ref.resourceUuid).where(
        Ref.resourceUuid.in_(uuids), Ref.accountUuid == session.accountUuid)))
    return [uuid for uuid in uuids if uuid not in owned]


def delete_refs(sql_session: Session, uuids: Iterable[str]) -> int:
    """Forget the owners of deleted resources; returns how many rows went."""
    uuids = list(uuids)
    if not uuids:
        return 0
    return sql_session.execute(delete(Ref).where(Ref.resourceUuid.in_(uuids))).rowcount


def hand_over(sql_session: Session, from_account: str, to_account: str) -> int:
    """Give every resource of ``from_account`` to ``to_account``; returns how many."""
    return sql_session.execute(
        update(Ref).where(Ref.accountUuid == from_account)
        .values(accountUuid=to_account, ownerAccountUuid=to_account)).rowcount
