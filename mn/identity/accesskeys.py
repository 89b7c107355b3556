"""AccessKey rows: creation, state, deletion, and the lookup that authenticates a request.

Functions take the SQLAlchemy session of the caller's transaction (run them
with ``node.db.run``).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.api.message import SessionInfo
from mn.db.models.identity import AccessKeyVO, AccountVO
from mn.errors import OperationError, SysErrors
from mn.identity import ownership
from mn.identity.constants import ACCESS_KEY_RESOURCE_TYPE, AccessKeyState, AccountType
from mn.identity.errors import permission_denied
from mn.tags import TagManager

#: Generated AccessKeyIDs: 20 upper-case letters and digits (within ZStack's 10..20).
ID_LENGTH = 20
ID_ALPHABET = string.ascii_uppercase + string.digits
#: Generated secrets: 40 letters and digits (ZStack's maximum), ~238 bits.
SECRET_LENGTH = 40
SECRET_ALPHABET = string.ascii_letters + string.digits

#: stateEvent -> the state it leads to.
STATE_EVENTS = {"enable": AccessKeyState.Enabled.value, "disable": AccessKeyState.Disabled.value}


def new_access_key_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_access_key_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


@dataclass(frozen=True)
class SigningKey:
    """What verifying a signed request needs to know of its AccessKey."""

    uuid: str
    account_uuid: str
    user_uuid: str
    secret: str
    enabled: bool
    is_admin: bool


def find_signing_key(sql_session: Session, access_key_id: str) -> SigningKey | None:
    row = sql_session.execute(
        select(AccessKeyVO, AccountVO.type).join(AccountVO, AccountVO.uuid == AccessKeyVO.accountUuid)
        .where(AccessKeyVO.AccessKeyID == access_key_id)).first()
    if row is None:
        return None
    vo, account_type = row
    return SigningKey(vo.uuid, vo.accountUuid, vo.userUuid, vo.AccessKeySecret,
                      vo.state == AccessKeyState.Enabled.value,
                      account_type == AccountType.SystemAdmin.value)


def check_create(sql_session: Session, caller: SessionInfo, *, account_uuid: str, user_uuid: str,
                 access_key_id: str | None) -> None:
    """Refuse what ZStack's AccessKeyApiInterceptor refuses.

    * a normal account creates keys for itself only (ID.1002);
    * the account must exist and ``userUuid`` must be it (there are no IAM
      users here) (SYS.1007);
    * a chosen AccessKeyID must be free (SYS.1007).
    """
    if not caller.isAdmin and caller.accountUuid != account_uuid:
        raise permission_denied(f"no permission to do the operation for [accountUuid:{account_uuid}, "
                                f"userUuid:{user_uuid}]")
    if sql_session.get(AccountVO, account_uuid) is None or user_uuid != account_uuid:
        raise _invalid(f"[accountId: {account_uuid}, userID: {user_uuid}] is not a valid account: "
                       "userUuid must be the uuid of the account")
    if access_key_id is not None and sql_session.scalar(
            select(AccessKeyVO.uuid).where(AccessKeyVO.AccessKeyID == access_key_id)) is not None:
        raise _invalid(f"an AccessKey with AccessKeyID {access_key_id} already exists")


def create(sql_session: Session, tags: TagManager, caller: SessionInfo, *, uuid: str | None,
           account_uuid: str, user_uuid: str, description: str | None, access_key_id: str,
           secret: str, system_tags: list[str] | None, user_tags: list[str] | None) -> AccessKeyVO:
    """Insert an enabled AccessKey, its tags and its ownership row (owned by
    the key's account, whoever created it)."""
    check_create(sql_session, caller, account_uuid=account_uuid, user_uuid=user_uuid,
                 access_key_id=access_key_id)
    vo = AccessKeyVO(accountUuid=account_uuid, userUuid=user_uuid, description=description,
                     AccessKeyID=access_key_id, AccessKeySecret=secret,
                     state=AccessKeyState.Enabled.value)
    if uuid:
        if sql_session.get(AccessKeyVO, uuid) is not None:
            raise _invalid(f"an AccessKey with uuid {uuid} already exists")
        vo.uuid = uuid
    sql_session.add(vo)
    sql_session.flush()
    tags.attach_at_create(sql_session, vo.uuid, ACCESS_KEY_RESOURCE_TYPE, system_tags, user_tags)
    ownership.own(sql_session, account_uuid, vo.uuid, ACCESS_KEY_RESOURCE_TYPE)
    return vo


def get_for(sql_session: Session, caller: SessionInfo, uuid: str) -> AccessKeyVO:
    """The AccessKey ``uuid`` if the caller may act on it: SYS.1003 if it does
    not exist, ID.1002 if it is another account's and the caller is not admin."""
    vo = sql_session.get(AccessKeyVO, uuid)
    if vo is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"AccessKeyVO[uuid:{uuid}] is not found")
    if not caller.isAdmin and vo.accountUuid != caller.accountUuid:
        raise permission_denied(f"the account {caller.accountUuid} has no access to "
                                f"AccessKeyVO[uuid:{uuid}]")
    return vo


def change_state(sql_session: Session, caller: SessionInfo, uuid: str, state_event: str) -> AccessKeyVO:
    vo = get_for(sql_session, caller, uuid)
    vo.state = STATE_EVENTS[state_event]
    sql_session.flush()
    return vo


def delete_key(sql_session: Session, caller: SessionInfo, uuid: str) -> None:
    vo = get_for(sql_session, caller, uuid)
    ownership.delete_refs(sql_session, [uuid])
    TagManager.delete_tags_of_in_session(sql_session, [uuid])
    sql_session.delete(vo)


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)
