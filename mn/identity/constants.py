"""Names and fixed values of the identity service, as ZStack has them."""

from __future__ import annotations

import enum

#: Service id of :class:`mn.identity.service.IdentityService` (ZStack's AccountConstant.SERVICE_ID).
SERVICE_ID = "identity"

#: The built-in admin account. Its uuid is ZStack's fixed one, which also
#: makes creating it idempotent: MNs starting together insert the same row.
ADMIN_ACCOUNT_UUID = "36c27e8ff05c4780bf6d2fa65700f22e"
ADMIN_ACCOUNT_NAME = "admin"
#: SHA-512 hex of "password": what a client sends to log in as the fresh admin.
ADMIN_INITIAL_PASSWORD = ("b109f3bbbc244eb82441917ed06d618b9008dd09b3befd1b5e07394c706a8bb9"
                          "80b1d7785e5976ec049b46df5f1326af5a2ea6d103fd07c95385ffab0cacbc86")


class AccountType(str, enum.Enum):
    """ZStack's AccountType (ThirdParty accounts are not supported)."""

    SystemAdmin = "SystemAdmin"
    Normal = "Normal"


class AccessKeyState(str, enum.Enum):
    Enabled = "Enabled"
    Disabled = "Disabled"


#: ``userType`` of an account's session (ZStack puts the VO class name there).
ACCOUNT_USER_TYPE = "AccountVO"
#: ``accountType`` of APILogInByAccountMsg meaning a plain account login.
ACCOUNT_LOGIN_TYPE = "account"

#: AccountResourceRefVO.permission values (ZStack's RESOURCE_PERMISSION_*).
PERMISSION_READ = 1
PERMISSION_WRITE = 2

#: Resource types recorded in AccountResourceRefVO for identity's own resources.
ACCOUNT_RESOURCE_TYPE = "AccountVO"
ACCESS_KEY_RESOURCE_TYPE = "AccessKeyVO"
