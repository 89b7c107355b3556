"""Account rows: the built-in admin, creation, changes and deletion.

Functions take the SQLAlchemy session of the caller's transaction (run them
with ``node.db.run``). Password hashing is slow and happens before, outside
the transaction; these functions receive finished hashes.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from mn.api.message import SessionInfo
from mn.db.models.identity import AccessKeyVO, AccountResourceRefVO, AccountVO
from mn.errors import OperationError, SysErrors
from mn.identity import ownership, sessions
from mn.identity.constants import (ACCOUNT_RESOURCE_TYPE, ADMIN_ACCOUNT_NAME, ADMIN_ACCOUNT_UUID,
                                   PERMISSION_WRITE, AccountType)
from mn.identity.errors import permission_denied
from mn.tags import TagManager

_INSERT_IGNORE = {
    "mysql": lambda table: insert(table).prefix_with("IGNORE"),
    "sqlite": lambda table: insert(table).prefix_with("OR IGNORE"),
}


def ensure_admin(sql_session: Session, password_hash: str) -> bool:
    """Create the built-in admin account unless it exists; True if this call created it.

    Insert-or-ignore on ZStack's fixed admin uuid: MNs starting together
    all succeed and exactly one row (and one ownership row) results.
    """
    insert_ignore = _INSERT_IGNORE[_dialect(sql_session)]
    created = sql_session.execute(insert_ignore(AccountVO.__table__), [{
        "uuid": ADMIN_ACCOUNT_UUID, "name": ADMIN_ACCOUNT_NAME, "description": None,
        "password": password_hash, "type": AccountType.SystemAdmin.value,
    }]).rowcount > 0
    sql_session.execute(insert_ignore(AccountResourceRefVO.__table__), [{
        "accountUuid": ADMIN_ACCOUNT_UUID, "ownerAccountUuid": ADMIN_ACCOUNT_UUID,
        "resourceUuid": ADMIN_ACCOUNT_UUID, "resourceType": ACCOUNT_RESOURCE_TYPE,
        "concreteResourceType": ACCOUNT_RESOURCE_TYPE, "permission": PERMISSION_WRITE,
        "isShared": False,
    }])
    return created


def admin_exists(sql_session: Session) -> bool:
    return sql_session.get(AccountVO, ADMIN_ACCOUNT_UUID) is not None


def find_by_name(sql_session: Session, name: str) -> AccountVO | None:
    return sql_session.scalar(select(AccountVO).where(AccountVO.name == name))


def check_new_name(sql_session: Session, name: str) -> None:
    """SYS.1007 if an account is already called ``name``."""
    if find_by_name(sql_session, name) is not None:
        raise _invalid(f"unable to create an account. An account already called {name}")


def create(sql_session: Session, tags: TagManager, *, uuid: str | None, name: str,
           password_hash: str, account_type: str, description: str | None,
           system_tags: list[str] | None, user_tags: list[str] | None) -> AccountVO:
    """Insert an account, its tags and its ownership row (an account owns itself,
    so a normal account finds itself in queries)."""
    check_new_name(sql_session, name)
    vo = AccountVO(name=name, password=password_hash, type=account_type, description=description)
    if uuid:
        if sql_session.get(AccountVO, uuid) is not None:
            raise _invalid(f"an account with uuid {uuid} already exists")
        vo.uuid = uuid
    sql_session.add(vo)
    sql_session.flush()
    tags.attach_at_create(sql_session, vo.uuid, ACCOUNT_RESOURCE_TYPE, system_tags, user_tags)
    ownership.own(sql_session, vo.uuid, vo.uuid, ACCOUNT_RESOURCE_TYPE)
    return vo


def check_update(sql_session: Session, caller: SessionInfo, uuid: str, *, name: str | None,
                 changes_password: bool) -> AccountVO:
    """The account to update, after ZStack's rules; raises if the update is not allowed.

    * a normal account changes only itself (ID.1002);
    * a new name must be free (SYS.1007);
    * the built-in admin keeps its name (SYS.1006);
    * an admin account's password is changed by itself or the built-in admin (ID.1002).
    """
    account = sql_session.get(AccountVO, uuid)
    if account is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"AccountVO[uuid:{uuid}] is not found")
    if not caller.isAdmin and caller.accountUuid != uuid:
        raise permission_denied(f"the normal account {caller.accountUuid} cannot update "
                                f"another account[uuid:{uuid}]")
    if name is not None and name != account.name:
        if uuid == ADMIN_ACCOUNT_UUID:
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    "the name of admin account cannot be updated")
        if find_by_name(sql_session, name) is not None:
            raise _invalid(f"unable to update name. An account already called {name}")
    if (changes_password and account.type == AccountType.SystemAdmin.value
            and caller.accountUuid not in (uuid, ADMIN_ACCOUNT_UUID)):
        raise permission_denied(f"only the admin account[uuid:{ADMIN_ACCOUNT_UUID}] can update "
                                f"the password of the admin account[uuid:{uuid}]")
    return account


def update(sql_session: Session, caller: SessionInfo, uuid: str, *, name: str | None,
           description: str | None, password_hash: str | None,
           verified_against: str | None) -> AccountVO:
    """Apply an update checked by :func:`check_update` (checked again here).

    ``verified_against`` is the stored hash the caller's ``oldPassword`` was
    verified against: if the password changed since, the update is refused.
    """
    account = check_update(sql_session, caller, uuid, name=name,
                           changes_password=password_hash is not None)
    if verified_against is not None and account.password != verified_against:
        raise OperationError.of(SysErrors.OPERATION_ERROR,
                                f"the password of account[uuid: {uuid}] changed while it was "
                                "being updated; try again")
    if name is not None:
        account.name = name
    if description is not None:
        account.description = description
    if password_hash is not None:
        account.password = password_hash
    sql_session.flush()
    return account


def check_delete(sql_session: Session, caller: SessionInfo, uuid: str) -> AccountVO | None:
    """The account to delete (None if there is none); SYS.1007 for the built-in
    admin or the caller's own account."""
    if uuid == ADMIN_ACCOUNT_UUID:
        raise _invalid("cannot delete builtin admin account.")
    if uuid == caller.accountUuid:
        raise _invalid("account cannot delete itself")
    return sql_session.get(AccountVO, uuid)


def delete_account(sql_session: Session, caller: SessionInfo, uuid: str) -> bool:
    """Delete an account with its sessions, AccessKeys, tags and ownership row;
    hand what it owned to the admin account. False if it did not exist."""
    account = check_delete(sql_session, caller, uuid)
    if account is None:
        return False
    key_uuids = list(sql_session.scalars(select(AccessKeyVO.uuid).where(AccessKeyVO.accountUuid == uuid)))
    gone = [uuid, *key_uuids]
    ownership.delete_refs(sql_session, gone)
    ownership.hand_over(sql_session, uuid, ADMIN_ACCOUNT_UUID)
    TagManager.delete_tags_of_in_session(sql_session, gone)
    if key_uuids:
        sql_session.execute(delete(AccessKeyVO).where(AccessKeyVO.uuid.in_(key_uuids)))
    sessions.close_sessions_of(sql_session, uuid)
    sql_session.delete(account)
    return True


def _dialect(sql_session: Session) -> str:
    name = sql_session.get_bind().dialect.name
    return "mysql" if name in ("mysql", "mariadb") else name


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)
