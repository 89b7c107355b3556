"""IdentityService: the handlers of the identity APIs.

Every check a request can fail runs twice: in an interceptor (``@intercepts``),
which the API layer runs before answering or queueing the request (so a
refusal is an immediate error, not a failed job), and again inside the
transaction that writes, where it is authoritative (two MNs may race).
Session logic lives in :class:`~mn.identity.manager.IdentityManager`
(``node.identity``); this class turns API messages into calls to it and to
the row functions of :mod:`mn.identity.accounts` and :mod:`mn.identity.accesskeys`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from mn.api.message import APIMessage, SessionInfo
from mn.db.models.identity import AccountVO
from mn.errors import OperationError, SysErrors
from mn.identity import accesskeys, accounts
from mn.identity.constants import (ACCESS_KEY_RESOURCE_TYPE, ACCOUNT_RESOURCE_TYPE, SERVICE_ID,
                                   AccountType)
from mn.identity.errors import invalid_session, permission_denied
from mn.identity.inventory import AccessKeyInventory, AccountInventory, NewAccessKeyInventory
from mn.identity.messages import (APIChangeAccessKeyStateEvent, APIChangeAccessKeyStateMsg,
                                  APICreateAccessKeyEvent, APICreateAccessKeyMsg, APICreateAccountEvent,
                                  APICreateAccountMsg, APIDeleteAccessKeyEvent, APIDeleteAccessKeyMsg,
                                  APIDeleteAccountEvent, APIDeleteAccountMsg, APILogInByAccountMsg,
                                  APILogInReply, APILogOutMsg, APILogOutReply, APIRenewSessionEvent,
                                  APIRenewSessionMsg, APIUpdateAccountEvent, APIUpdateAccountMsg,
                                  APIValidateSessionMsg, APIValidateSessionReply)
from mn.identity.password import hash_password, verify_password
from mn.service import Service, handles, intercepts

if TYPE_CHECKING:
    from mn.identity.manager import IdentityManager


class IdentityService(Service):
    """Log in and out, accounts and AccessKeys (queries are the query engine's)."""

    SERVICE_ID = SERVICE_ID

    @property
    def identity(self) -> "IdentityManager":
        return self.node.identity

    # -- sessions ---------------------------------------------------------------------

    @handles(APILogInByAccountMsg)
    async def log_in_by_account(self, msg: APILogInByAccountMsg) -> APILogInReply:
        session = await self.identity.login(msg.accountName, msg.password,
                                            account_type=msg.accountType)
        return APILogInReply(inventory=session)

    @handles(APILogOutMsg)
    async def log_out(self, msg: APILogOutMsg) -> APILogOutReply:
        if msg.sessionUuid:
            await self.identity.logout(msg.sessionUuid)
        return APILogOutReply()

    @handles(APIValidateSessionMsg)
    async def validate_session(self, msg: APIValidateSessionMsg) -> APIValidateSessionReply:
        return APIValidateSessionReply(validSession=await self.identity.validate_session(msg.sessionUuid))

    @handles(APIRenewSessionMsg)
    async def renew_session(self, msg: APIRenewSessionMsg) -> APIRenewSessionEvent:
        inventory = await self.identity.renew_session(_caller(msg), msg.sessionUuid, msg.duration)
        return APIRenewSessionEvent(inventory=inventory)

    # -- accounts ---------------------------------------------------------------------

    @intercepts(APICreateAccountMsg)
    async def _check_create_account(self, msg: APICreateAccountMsg) -> None:
        _admin(msg)
        self._check_tags(ACCOUNT_RESOURCE_TYPE, msg)
        await self.node.db.run(accounts.check_new_name, msg.name)

    @handles(APICreateAccountMsg)
    async def create_account(self, msg: APICreateAccountMsg) -> APICreateAccountEvent:
        _admin(msg)
        password_hash = await asyncio.to_thread(hash_password, msg.password)
        vo = await self._write(
            accounts.create, self.node.tags, uuid=msg.resourceUuid, name=msg.name,
            password_hash=password_hash, account_type=msg.type or AccountType.Normal.value,
            description=msg.description, system_tags=msg.systemTags, user_tags=msg.userTags,
            conflict=f"unable to create an account. An account already called {msg.name}")
        return APICreateAccountEvent(inventory=AccountInventory.from_vo(vo))

    @intercepts(APIUpdateAccountMsg)
    async def _check_update_account(self, msg: APIUpdateAccountMsg) -> None:
        await self._verified_password(msg)
        await self.node.db.run(accounts.check_update, _caller(msg), msg.uuid, name=msg.name,
                               changes_password=msg.password is not None)

    @handles(APIUpdateAccountMsg)
    async def update_account(self, msg: APIUpdateAccountMsg) -> APIUpdateAccountEvent:
        caller = _caller(msg)
        verified_against = await self._verified_password(msg)
        password_hash = None
        if msg.password is not None:
            password_hash = await asyncio.to_thread(hash_password, msg.password)
        vo = await self._write(
            accounts.update, caller, msg.uuid, name=msg.name, description=msg.description,
            password_hash=password_hash, verified_against=verified_against,
            conflict=f"unable to update name. An account already called {msg.name}")
        return APIUpdateAccountEvent(inventory=AccountInventory.from_vo(vo))

    async def _verified_password(self, msg: APIUpdateAccountMsg) -> str | None:
        """The stored hash ``msg.oldPassword`` matches (None without oldPassword);
        SYS.1006 if it does not match."""
        if msg.oldPassword is None:
            return None
        stored = await self.node.db.run(_password_of, msg.uuid)
        if stored is None or not await asyncio.to_thread(verify_password, msg.oldPassword, stored):
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    "old password is not equal to the original password, cannot "
                                    f"update the password of account[uuid: {msg.uuid}]")
        return stored

    @intercepts(APIDeleteAccountMsg)
    async def _check_delete_account(self, msg: APIDeleteAccountMsg) -> None:
        await self.node.db.run(accounts.check_delete, _admin(msg), msg.uuid)

    @handles(APIDeleteAccountMsg)
    async def delete_account(self, msg: APIDeleteAccountMsg) -> APIDeleteAccountEvent:
        await self.node.db.run(accounts.delete_account, _admin(msg), msg.uuid)
        return APIDeleteAccountEvent()

    # -- AccessKeys -------------------------------------------------------------------

    @intercepts(APICreateAccessKeyMsg)
    async def _check_create_access_key(self, msg: APICreateAccessKeyMsg) -> None:
        _key_and_secret(msg)
        self._check_tags(ACCESS_KEY_RESOURCE_TYPE, msg)
        await self.node.db.run(accesskeys.check_create, _caller(msg), account_uuid=msg.accountUuid,
                               user_uuid=msg.userUuid, access_key_id=msg.AccessKeyID)

    @handles(APICreateAccessKeyMsg)
    async def create_access_key(self, msg: APICreateAccessKeyMsg) -> APICreateAccessKeyEvent:
        key_id, secret = _key_and_secret(msg)
        vo = await self._write(
            accesskeys.create, self.node.tags, _caller(msg), uuid=msg.resourceUuid,
            account_uuid=msg.accountUuid, user_uuid=msg.userUuid, description=msg.description,
            access_key_id=key_id, secret=secret, system_tags=msg.systemTags,
            user_tags=msg.userTags,
            conflict=f"an AccessKey with AccessKeyID {key_id} already exists")
        return APICreateAccessKeyEvent(inventory=NewAccessKeyInventory.from_vo(vo))

    @intercepts(APIChangeAccessKeyStateMsg, APIDeleteAccessKeyMsg)
    async def _check_access_key(self, msg: APIChangeAccessKeyStateMsg | APIDeleteAccessKeyMsg) -> None:
        await self.node.db.run(accesskeys.get_for, _caller(msg), msg.uuid)

    @handles(APIChangeAccessKeyStateMsg)
    async def change_access_key_state(self, msg: APIChangeAccessKeyStateMsg) -> APIChangeAccessKeyStateEvent:
        vo = await self.node.db.run(accesskeys.change_state, _caller(msg), msg.uuid, msg.stateEvent)
        return APIChangeAccessKeyStateEvent(inventory=AccessKeyInventory.from_vo(vo))

    @handles(APIDeleteAccessKeyMsg)
    async def delete_access_key(self, msg: APIDeleteAccessKeyMsg) -> APIDeleteAccessKeyEvent:
        await self.node.db.run(accesskeys.delete_key, _caller(msg), msg.uuid)
        return APIDeleteAccessKeyEvent()

    # -- helpers ------------------------------------------------------------------------

    def _check_tags(self, resource_type: str, msg: APIMessage) -> None:
        if msg.systemTags:
            self.node.tags.validate_system_tags(resource_type, msg.systemTags)
        if msg.userTags:
            self.node.tags.validate_user_tags(msg.userTags)

    async def _write(self, fn, *args: Any, conflict: str, **kwargs: Any) -> Any:
        """Run a row function; a unique key violated by a concurrent writer is
        reported as SYS.1007 ``conflict``, as the check that lost the race would have."""
        try:
            return await self.node.db.run(fn, *args, **kwargs)
        except IntegrityError:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, conflict) from None


def _caller(msg: APIMessage) -> SessionInfo:
    """Who sent ``msg``; identity APIs that are not public need a caller."""
    if msg.session is None:
        raise invalid_session(f"{msg.api_name()} needs a session")
    return msg.session


def _admin(msg: APIMessage) -> SessionInfo:
    """The caller of an admin-only API (the API layer checks it first; so do we)."""
    caller = _caller(msg)
    if not caller.isAdmin:
        raise permission_denied(f"only the admin account may call {msg.api_name()}")
    return caller


def _key_and_secret(msg: APICreateAccessKeyMsg) -> tuple[str, str]:
    """The AccessKeyID and secret asked for, or new ones; both or neither may be given."""
    if (msg.AccessKeyID is None) != (msg.AccessKeySecret is None):
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                "If a specified Accesskey is expected, the AccesskeyId and the "
                                "AccesskeySecret must be provided at the same time.")
    if msg.AccessKeyID is not None:
        return msg.AccessKeyID, msg.AccessKeySecret
    return accesskeys.new_access_key_id(), accesskeys.new_access_key_secret()


def _password_of(sql_session, account_uuid: str) -> str | None:
    account = sql_session.get(AccountVO, account_uuid)
    return None if account is None else account.password
