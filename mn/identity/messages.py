"""Identity APIs, named, routed and shaped as ZStack's.

Accounts and sessions are ``org.zstack.header.identity``; AccessKeys are
ZStack's ``org.zstack.accessKey`` plugin (its REST shape is known from the
ZStack SDK: ``/accesskeys``). Log in, log out and session validation are
public and synchronous (ZStack's ``APISessionMessage``); queries run in the
query engine; everything else is an asynchronous API job.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mn.api.message import (
    APICreateMessage,
    APIDeleteMessage,
    APIEvent,
    APIMessage,
    APIQueryMessage,
    APIQueryReply,
    APIReply,
    Ref,
    Rest,
    UuidParam,
    query_rest,
)
from mn.identity.constants import ACCESS_KEY_RESOURCE_TYPE, ACCOUNT_RESOURCE_TYPE, SERVICE_ID
from mn.identity.inventory import (AccessKeyInventory, AccountInventory, NewAccessKeyInventory,
                                   SessionInventory)

_IDENTITY = "org.zstack.header.identity."
_ACCESS_KEY = "org.zstack.accessKey."

Uuid = UuidParam
AccountUuid = Annotated[str, Ref(ACCOUNT_RESOURCE_TYPE)]
AccessKeyUuid = Annotated[str, Ref(ACCESS_KEY_RESOURCE_TYPE)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Password = Annotated[str, Field(min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=2048)]


# -- sessions ----------------------------------------------------------------------

class APILogInReply(APIReply):
    FULL_NAME = _IDENTITY + "APILogInReply"
    inventory: SessionInventory | None = None


class APILogInByAccountMsg(APIMessage):
    """Log in with an account's name and the SHA-512 hex of its password.

    ``captchaUuid``, ``verifyCode`` and ``clientInfo`` are accepted for
    ZStack clients and not used (no captcha, no login audit); an
    ``accountType`` other than ``account`` names a kind of login this
    service does not have, so it fails like a wrong password.
    """

    FULL_NAME = _IDENTITY + "APILogInByAccountMsg"
    SERVICE = SERVICE_ID
    REST = Rest("PUT", "/accounts/login", is_action=True)
    RESPONSE = APILogInReply
    SYNC = True
    PUBLIC = True
    SENSITIVE = ("password",)

    accountName: str
    password: str
    accountType: str | None = None
    captchaUuid: str | None = None
    verifyCode: str | None = None
    clientInfo: dict[str, str] | None = None


class APILogOutReply(APILogInReply):
    FULL_NAME = _IDENTITY + "APILogOutReply"


class APILogOutMsg(APIMessage):
    """End a session; ending one that does not exist (any more) succeeds."""

    FULL_NAME = _IDENTITY + "APILogOutMsg"
    SERVICE = SERVICE_ID
    REST = Rest("DELETE", "/accounts/sessions/{sessionUuid}", all_to=None)
    RESPONSE = APILogOutReply
    SYNC = True
    PUBLIC = True

    sessionUuid: str | None = None
    clientInfo: dict[str, str] | None = None


class APIValidateSessionReply(APIReply):
    FULL_NAME = _IDENTITY + "APIValidateSessionReply"
    validSession: bool = False


class APIValidateSessionMsg(APIMessage):
    """Whether a session exists and has not expired (it is not renewed)."""

    FULL_NAME = _IDENTITY + "APIValidateSessionMsg"
    SERVICE = SERVICE_ID
    # ZStack's @RestResponse(fieldsTo = {"valid=validSession"}): body {"valid": <validSession>}.
    REST = Rest("GET", "/accounts/sessions/{sessionUuid}/valid", all_to=None,
                fields=("valid=validSession",))
    RESPONSE = APIValidateSessionReply
    SYNC = True
    PUBLIC = True

    sessionUuid: str


class APIRenewSessionEvent(APIEvent):
    FULL_NAME = _IDENTITY + "APIRenewSessionEvent"
    inventory: SessionInventory | None = None


class APIRenewSessionMsg(APIMessage):
    """Push a session's expiry to now + ``duration`` seconds (default: session.timeout)."""

    FULL_NAME = _IDENTITY + "APIRenewSessionMsg"
    SERVICE = SERVICE_ID
    REST = Rest("PUT", "/accounts/sessions/{sessionUuid}/renew", is_action=True)
    RESPONSE = APIRenewSessionEvent

    sessionUuid: str
    duration: Annotated[int | None, Field(ge=60, le=31536000)] = None


# -- accounts ----------------------------------------------------------------------

class APICreateAccountEvent(APIEvent):
    FULL_NAME = _IDENTITY + "APICreateAccountEvent"
    inventory: AccountInventory | None = None


class APICreateAccountMsg(APICreateMessage):
    """Create an account; ``password`` is the SHA-512 hex of the password."""

    RESOURCE_TYPE = "AccountVO"

    FULL_NAME = _IDENTITY + "APICreateAccountMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/accounts")
    RESPONSE = APICreateAccountEvent
    ADMIN_ONLY = True
    SENSITIVE = ("password",)

    name: Name
    password: Password
    type: Literal["SystemAdmin", "Normal"] | None = None
    description: Description | None = None


class APIQueryAccountReply(APIQueryReply):
    FULL_NAME = _IDENTITY + "APIQueryAccountReply"


class APIQueryAccountMsg(APIQueryMessage):
    """A normal account finds only itself; the admin finds every account."""

    FULL_NAME = _IDENTITY + "APIQueryAccountMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/accounts")
    RESPONSE = APIQueryAccountReply
    INVENTORY = AccountInventory


class APIUpdateAccountEvent(APIEvent):
    FULL_NAME = _IDENTITY + "APIUpdateAccountEvent"
    inventory: AccountInventory | None = None


class APIUpdateAccountMsg(APIMessage):
    """Rename, describe or change the password of an account.

    A normal account may change only itself; ``oldPassword``, when given,
    must be the current password. The admin account keeps its name.
    """

    FULL_NAME = _IDENTITY + "APIUpdateAccountMsg"
    SERVICE = SERVICE_ID
    REST = Rest("PUT", "/accounts/{uuid}", is_action=True)
    RESPONSE = APIUpdateAccountEvent
    SENSITIVE = ("password", "oldPassword")

    uuid: AccountUuid
    password: Password | None = None
    name: Name | None = None
    description: Description | None = None
    oldPassword: Password | None = None


class APIDeleteAccountEvent(APIEvent):
    FULL_NAME = _IDENTITY + "APIDeleteAccountEvent"


class APIDeleteAccountMsg(APIDeleteMessage):
    """Delete a normal account (deleting one that does not exist succeeds).

    Its sessions and AccessKeys go with it; the resources it owns are handed
    to the admin account, so nothing is left without an owner.
    """

    FULL_NAME = _IDENTITY + "APIDeleteAccountMsg"
    SERVICE = SERVICE_ID
    REST = Rest("DELETE", "/accounts/{uuid}", all_to=None)
    RESPONSE = APIDeleteAccountEvent
    ADMIN_ONLY = True

    uuid: Uuid


# -- AccessKeys ----------------------------------------------------------------------

class APICreateAccessKeyEvent(APIEvent):
    FULL_NAME = _ACCESS_KEY + "APICreateAccessKeyEvent"
    inventory: NewAccessKeyInventory | None = None


class APICreateAccessKeyMsg(APICreateMessage):
    """Create an AccessKey for an account (``userUuid`` is the account's uuid too).

    ``AccessKeyID`` and ``AccessKeySecret`` are generated unless both are
    given. The reply is the only place the secret is ever shown.
    """

    RESOURCE_TYPE = "AccessKeyVO"

    FULL_NAME = _ACCESS_KEY + "APICreateAccessKeyMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/accesskeys")
    RESPONSE = APICreateAccessKeyEvent
    SENSITIVE = ("AccessKeySecret",)

    accountUuid: Annotated[str, Field(max_length=32), Ref(ACCOUNT_RESOURCE_TYPE)]
    userUuid: Annotated[str, Field(max_length=32)]
    description: Description | None = None
    # Printable ASCII; the ID may not hold ':' (it ends the ID in the header).
    AccessKeyID: Annotated[str | None, Field(min_length=10, max_length=20,
                                             pattern=r"^[!-9;-~]+$")] = None
    AccessKeySecret: Annotated[str | None, Field(min_length=10, max_length=40,
                                                 pattern=r"^[!-~]+$")] = None


class APIQueryAccessKeyReply(APIQueryReply):
    FULL_NAME = _ACCESS_KEY + "APIQueryAccessKeyReply"


class APIQueryAccessKeyMsg(APIQueryMessage):
    """AccessKeys without their secrets; a normal account finds only its own."""

    FULL_NAME = _ACCESS_KEY + "APIQueryAccessKeyMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/accesskeys")
    RESPONSE = APIQueryAccessKeyReply
    INVENTORY = AccessKeyInventory


class APIChangeAccessKeyStateEvent(APIEvent):
    FULL_NAME = _ACCESS_KEY + "APIChangeAccessKeyStateEvent"
    inventory: AccessKeyInventory | None = None


class APIChangeAccessKeyStateMsg(APIMessage):
    """Enable or disable an AccessKey; requests signed by a disabled key get ID.1000."""

    FULL_NAME = _ACCESS_KEY + "APIChangeAccessKeyStateMsg"
    SERVICE = SERVICE_ID
    REST = Rest("PUT", "/accesskeys/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeAccessKeyStateEvent

    uuid: AccessKeyUuid
    stateEvent: Literal["enable", "disable"]


class APIDeleteAccessKeyEvent(APIEvent):
    FULL_NAME = _ACCESS_KEY + "APIDeleteAccessKeyEvent"


class APIDeleteAccessKeyMsg(APIDeleteMessage):
    FULL_NAME = _ACCESS_KEY + "APIDeleteAccessKeyMsg"
    SERVICE = SERVICE_ID
    REST = Rest("DELETE", "/accesskeys/{uuid}", all_to=None)
    RESPONSE = APIDeleteAccessKeyEvent

    uuid: AccessKeyUuid
