"""What the API shows of accounts, sessions and AccessKeys (ZStack's inventories)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from mn.api.inventory import Inventory
from mn.db.models.identity import AccessKeyVO, AccountVO, SessionVO
from mn.identity.constants import ACCOUNT_USER_TYPE


class AccountInventory(Inventory):
    """ZStack's AccountInventory (never the password)."""

    VO = AccountVO

    uuid: str
    name: str
    description: str | None = None
    type: str
    createDate: datetime | None = None
    lastOpDate: datetime | None = None


class AccessKeyInventory(Inventory):
    """ZStack's AccessKeyInventory as queries show it: without the secret."""

    VO = AccessKeyVO

    uuid: str
    description: str | None = None
    accountUuid: str
    userUuid: str
    AccessKeyID: str
    state: str
    createDate: datetime | None = None
    lastOpDate: datetime | None = None


class NewAccessKeyInventory(BaseModel):
    """The AccessKey in the reply that creates it: the only time its secret is shown.

    A plain model, not an :class:`Inventory`, so no query can reach the secret.
    """

    uuid: str
    description: str | None = None
    accountUuid: str
    userUuid: str
    AccessKeyID: str
    AccessKeySecret: str
    state: str
    createDate: datetime | None = None
    lastOpDate: datetime | None = None

    @classmethod
    def from_vo(cls, vo: AccessKeyVO) -> "NewAccessKeyInventory":
        return cls(**AccessKeyInventory.from_vo(vo).model_dump(),
                   AccessKeySecret=vo.AccessKeySecret)


class SessionInventory(BaseModel):
    """ZStack's SessionInventory; ``uuid`` is the token of ``Authorization: OAuth``."""

    uuid: str
    accountUuid: str
    userUuid: str | None = None
    userType: str | None = None
    expiredDate: datetime | None = None
    createDate: datetime | None = None

    @classmethod
    def from_vo(cls, vo: SessionVO) -> "SessionInventory":
        return cls(uuid=vo.uuid, accountUuid=vo.accountUuid, userUuid=vo.userUuid,
                   userType=ACCOUNT_USER_TYPE, expiredDate=vo.expiredDate,
                   createDate=vo.createDate)
