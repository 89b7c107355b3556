"""Session rows: open, look up (renewing as they are used), close, sweep.

Every function takes the SQLAlchemy session of the caller's transaction
(run them with ``node.db.run``). Times are naive UTC (``mn.db.types``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mn.db.models.identity import AccountVO, SessionVO
from mn.db.types import utcnow
from mn.identity.constants import AccountType
from mn.identity.errors import max_sessions_exceeded

#: A session in use is renewed (its expiredDate moved to now + timeout) at
#: most this often, so a busy client costs a write a minute, not one a request.
RENEW_GRANULARITY = timedelta(seconds=60)


@dataclass(frozen=True)
class LiveSession:
    """A valid session and what the API layer needs to know of its account."""

    vo: SessionVO
    is_admin: bool


def open_session(sql_session: Session, account_uuid: str, timeout: int,
                 max_sessions: int) -> SessionVO | None:
    """A new session of the account expiring ``timeout`` seconds from now;
    None if the account is gone.

    ID.1006 if the account already has ``max_sessions`` live sessions. The
    account row is locked first (MariaDB) and the session inserted before
    counting (SQLite takes its write lock there), so logins of one account
    racing on several MNs cannot overshoot the limit.
    """
    name = sql_session.scalar(select(AccountVO.name).where(AccountVO.uuid == account_uuid)
                              .with_for_update())
    if name is None:
        return None
    now = utcnow()
    vo = SessionVO(accountUuid=account_uuid, userUuid=account_uuid, createDate=now,
                   expiredDate=now + timedelta(seconds=timeout))
    sql_session.add(vo)
    sql_session.flush()
    live = sql_session.scalar(select(func.count()).select_from(SessionVO).where(
        SessionVO.accountUuid == account_uuid, SessionVO.expiredDate > now))
    if live > max_sessions:
        raise max_sessions_exceeded(
            f"Login sessions hit limit of max allowed concurrent login sessions: the account "
            f"{name} already has {max_sessions} sessions")
    return vo


def use_session(sql_session: Session, session_uuid: str, timeout: int) -> LiveSession | None:
    """The live session ``session_uuid``, renewed if due; None if there is none.

    An expired session is deleted on the way, as ZStack does.
    """
    live = _find_live(sql_session, session_uuid)
    if live is not None:
        renewed = utcnow() + timedelta(seconds=timeout)
        if renewed - live.vo.expiredDate >= RENEW_GRANULARITY:
            live.vo.expiredDate = renewed
    return live


def check_session(sql_session: Session, session_uuid: str) -> LiveSession | None:
    """Like :func:`use_session` without renewing."""
    return _find_live(sql_session, session_uuid)


def renew_session(sql_session: Session, session_uuid: str, seconds: int) -> SessionVO | None:
    """Set a live session's expiry to now + ``seconds``; None if it is not live."""
    live = _find_live(sql_session, session_uuid)
    if live is None:
        return None
    live.vo.expiredDate = utcnow() + timedelta(seconds=seconds)
    return live.vo


def close_session(sql_session: Session, session_uuid: str) -> bool:
    """Delete a session; False if there was none."""
    return sql_session.execute(delete(SessionVO).where(SessionVO.uuid == session_uuid)).rowcount > 0


def close_sessions_of(sql_session: Session, account_uuid: str) -> int:
    return sql_session.execute(delete(SessionVO).where(SessionVO.accountUuid == account_uuid)).rowcount


def delete_expired(sql_session: Session, now: datetime | None = None) -> int:
    """Sweep sessions whose expiry has passed; returns how many went."""
    return sql_session.execute(
        delete(SessionVO).where(SessionVO.expiredDate <= (now or utcnow()))).rowcount


def _find_live(sql_session: Session, session_uuid: str) -> LiveSession | None:
    row = sql_session.execute(
        select(SessionVO, AccountVO.type).join(AccountVO, AccountVO.uuid == SessionVO.accountUuid)
        .where(SessionVO.uuid == session_uuid)).first()
    if row is None:
        return None
    vo, account_type = row
    if vo.expiredDate <= utcnow():
        sql_session.delete(vo)
        return None
    return LiveSession(vo, account_type == AccountType.SystemAdmin.value)
