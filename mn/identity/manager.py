"""IdentityManager (``node.identity``): who is calling, and what they may see.

* **Start**: create the built-in admin account (``admin`` / ``password``)
  unless it exists; MNs starting together create it once. Then sweep
  expired sessions every ``identity/session.cleanup.interval`` seconds.
* **Authenticate** a REST request from its ``Authorization`` (and, for
  AccessKeys, ``Date``) header, or a legacy RPC call from its session uuid,
  into a :class:`~mn.api.message.SessionInfo`; failures raise
  OperationError with the codes listed in :mod:`mn.identity.errors`.
  Every check reads the database (one primary-key lookup), so a logout or
  a disabled key on one MN counts on every MN at once. A session in use
  has its expiry pushed to now + ``identity/session.timeout``, written at
  most once a minute per session.
* **Ownership**: record who owns a new resource, filter queries to what the
  caller may see, find the uuids a caller may not touch, forget the owners
  of deleted resources (see :mod:`mn.identity.ownership`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import ColumnElement
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mn.api.message import SessionInfo
from mn.identity import accesskeys, accounts, ownership, sessions
from mn.identity.config import (CHECK_TIME_ZONE, SESSION_CLEANUP_INTERVAL, SESSION_MAX_CONCURRENT,
                                SESSION_TIMEOUT)
from mn.identity.constants import ACCOUNT_LOGIN_TYPE, ADMIN_ACCOUNT_NAME, ADMIN_INITIAL_PASSWORD
from mn.identity.errors import authentication_error, invalid_session, permission_denied
from mn.identity.inventory import SessionInventory
from mn.identity.password import burn_time, hash_password, verify_password
from mn.identity.signature import (SessionCredential, check_request_time, parse_authorization,
                                   signature_matches, string_to_sign)

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: MariaDB may pick one of two MNs writing the same rows as a deadlock
#: victim; the transaction is simply run again.
DEADLOCK_ATTEMPTS = 3
_RETRYABLE_MYSQL_ERRORS = (1205, 1213)  # lock wait timeout, deadlock
WRONG_NAME_OR_PASSWORD = "wrong account name or password"


class IdentityManager:
    """Accounts, sessions, AccessKeys and resource ownership for one MN.

    ``node`` needs ``.db`` (a started :class:`~mn.db.Database`) by the time
    :meth:`start` runs; the global config entries of :mod:`mn.identity.config`
    are read from memory and follow ``node.global_config`` when it runs.
    """

    def __init__(self, node: "ManagementNode"):
        self.node = node
        self._sweeper: asyncio.Task | None = None

    # -- life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Create the admin account if missing, then start sweeping expired sessions."""
        await self._ensure_admin()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="identity-session-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _ensure_admin(self) -> None:
        if await self.node.db.run(accounts.admin_exists):
            return
        password_hash = await asyncio.to_thread(hash_password, ADMIN_INITIAL_PASSWORD)
        if await self._run(accounts.ensure_admin, password_hash):
            log.info("created the %s account with the initial password", ADMIN_ACCOUNT_NAME)

    # -- who calls ------------------------------------------------------------------

    async def authenticate(self, authorization: str | None, date: str | None, method: str,
                           path: str) -> SessionInfo:
        """The caller of a REST request.

        ``authorization`` and ``date`` are the headers as received (None if
        absent); ``method`` is the HTTP method and ``path`` the request's
        percent-decoded URL path (``/zstack/v1/...`` or ``/v1/...``, any query
        string is ignored). An AccessKey caller's ``SessionInfo.uuid`` is the
        AccessKey's uuid (there is no session row).
        """
        credential = parse_authorization(authorization)
        if isinstance(credential, SessionCredential):
            return await self.session_info(credential.session_uuid)
        check_request_time(date, check_time_zone=CHECK_TIME_ZONE.value)
        key_id = credential.access_key_id
        key = await self.node.db.run(accesskeys.find_signing_key, key_id)
        if key is None:
            raise authentication_error(f"AccessKey[AccessKeyID:{key_id}] is not found")
        if not key.enabled:
            raise authentication_error(f"AccessKey[AccessKeyID:{key_id}] is Disabled")
        if not signature_matches(key.secret, credential.signature, method, date, path):
            raise authentication_error(
                f"the signature of AccessKey[AccessKeyID:{key_id}] does not match: expected "
                f"base64(HMAC-SHA1(AccessKeySecret, {string_to_sign(method, date, path)!r}))")
        return SessionInfo(uuid=key.uuid, accountUuid=key.account_uuid, userUuid=key.user_uuid,
                           isAdmin=key.is_admin)

    async def session_info(self, session_uuid: str | None) -> SessionInfo:
        """The caller owning the live session ``session_uuid`` (renewed if due); ID.1001 if none."""
        if not session_uuid:
            raise invalid_session("session uuid is null")
        live = await self.node.db.run(sessions.use_session, session_uuid, SESSION_TIMEOUT.value)
        if live is None:
            raise invalid_session()
        return SessionInfo(uuid=live.vo.uuid, accountUuid=live.vo.accountUuid,
                           userUuid=live.vo.userUuid, isAdmin=live.is_admin)

    # -- sessions ---------------------------------------------------------------------

    async def login(self, account_name: str, password: str, *,
                    account_type: str | None = None) -> SessionInventory:
        """Open a session for the account; ``password`` is the client's SHA-512 hex.

        ID.1000 for a wrong name or password (one message for both, and the
        same time spent), ID.1006 when the account has too many sessions.
        """
        found = None
        if account_type in (None, ACCOUNT_LOGIN_TYPE):
            found = await self.node.db.run(_name_to_credentials, account_name)
        if found is None:
            await asyncio.to_thread(burn_time, password)
            raise authentication_error(WRONG_NAME_OR_PASSWORD)
        account_uuid, stored = found
        if not await asyncio.to_thread(verify_password, password, stored):
            raise authentication_error(WRONG_NAME_OR_PASSWORD)
        vo = await self._run(sessions.open_session, account_uuid, SESSION_TIMEOUT.value,
                             SESSION_MAX_CONCURRENT.value)
        if vo is None:  # deleted while we checked the password
            raise authentication_error(WRONG_NAME_OR_PASSWORD)
        return SessionInventory.from_vo(vo)

    async def logout(self, session_uuid: str) -> bool:
        """End a session; False if it did not exist."""
        return await self.node.db.run(sessions.close_session, session_uuid)

    async def validate_session(self, session_uuid: str) -> bool:
        """Whether the session exists and has not expired (without renewing it)."""
        return await self.node.db.run(sessions.check_session, session_uuid) is not None

    async def renew_session(self, caller: SessionInfo, session_uuid: str,
                            seconds: int | None = None) -> SessionInventory:
        """Expire the session ``seconds`` (default: session.timeout) from now.

        ID.1001 if it is not live; ID.1002 if it is another account's and
        the caller is not admin.
        """
        seconds = seconds or SESSION_TIMEOUT.value

        def renew(sql_session: Session) -> SessionInventory | None:
            live = sessions.check_session(sql_session, session_uuid)
            if live is None:
                return None
            if not caller.isAdmin and live.vo.accountUuid != caller.accountUuid:
                raise permission_denied(f"the account {caller.accountUuid} cannot renew a session "
                                        "of another account")
            return SessionInventory.from_vo(sessions.renew_session(sql_session, session_uuid, seconds))

        inventory = await self.node.db.run(renew)
        if inventory is None:
            raise invalid_session()
        return inventory

    async def sweep_expired_sessions(self) -> int:
        """Delete expired sessions now; returns how many."""
        return await self.node.db.run(sessions.delete_expired)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SESSION_CLEANUP_INTERVAL.value)
            try:
                swept = await self.sweep_expired_sessions()
                if swept:
                    log.info("deleted %d expired session(s)", swept)
            except Exception as exc:
                log.warning("sweeping expired sessions failed: %s", exc)

    # -- ownership ------------------------------------------------------------------

    def own_in_session(self, sql_session: Session, session: SessionInfo | None, resource_uuid: str,
                       resource_type: str) -> None:
        """Record the caller's account (the admin if ``session`` is None) as the
        owner of a resource created in ``sql_session``'s transaction."""
        ownership.own(sql_session, ownership.owner_of(session), resource_uuid, resource_type)

    def visible_condition(self, session: SessionInfo, uuid_column: ColumnElement) -> ColumnElement[bool]:
        """A WHERE condition keeping the rows (by ``uuid_column``) the caller may see:
        an EXISTS over AccountResourceRefVO for a normal account, TRUE for an admin."""
        return ownership.visible_condition(session, uuid_column)

    async def check_visible(self, session: SessionInfo, resource_type: str,
                            uuids: Iterable[str]) -> list[str]:
        """The ``uuids`` the caller may not see (none for an admin).

        Ownership is looked up by uuid alone (uuids are unique across
        types), so ``resource_type`` only names the resources in logs.
        """
        if session.isAdmin:
            return []
        hidden = await self.node.db.run(ownership.invisible, session, list(uuids))
        if hidden:
            log.debug("account %s may not see %s %s", session.accountUuid, resource_type, hidden)
        return hidden

    def delete_refs_in_session(self, sql_session: Session, uuids: Iterable[str]) -> int:
        """Forget the owners of resources deleted in ``sql_session``'s transaction."""
        return ownership.delete_refs(sql_session, uuids)

    # -- internals ----------------------------------------------------------------------

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return await self.node.db.run(fn, *args)
            except DBAPIError as exc:
                if attempt == DEADLOCK_ATTEMPTS or not _retryable(exc):
                    raise
                log.info("identity: %s, trying again", exc.orig)
                await asyncio.sleep(0.05 * attempt)


def _name_to_credentials(sql_session: Session, name: str) -> tuple[str, str] | None:
    account = accounts.find_by_name(sql_session, name)
    return None if account is None else (account.uuid, account.password)


def _retryable(exc: DBAPIError) -> bool:
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in _RETRYABLE_MYSQL_ERRORS
