"""Identity: accounts, sessions, AccessKeys and who owns which resource.

* :class:`IdentityManager` (``node.identity``): authenticates API callers
  (``Authorization: OAuth <session>`` or ``ZStack <AccessKeyID>:<signature>``
  with a ``Date``), logs in and out, and records and checks resource ownership;
* :class:`IdentityService` (service id ``identity``): the identity APIs
  (:mod:`mn.identity.messages`);
* :mod:`mn.identity.signature`: the AccessKey signature, byte for byte as
  ZStack's SDKs compute it;
* :mod:`mn.identity.password`: how account passwords are stored;
* :mod:`mn.identity.errors`: error codes and the HTTP status of each.
"""

from mn.identity.constants import (ADMIN_ACCOUNT_NAME, ADMIN_ACCOUNT_UUID, ADMIN_INITIAL_PASSWORD,
                                   SERVICE_ID, AccessKeyState, AccountType)
from mn.identity.errors import REQUEST_TIME_TOO_SKEWED, IdentityErrors
from mn.identity.inventory import AccessKeyInventory, AccountInventory, SessionInventory
from mn.identity.manager import IdentityManager
from mn.identity.service import IdentityService

__all__ = [
    "ADMIN_ACCOUNT_NAME",
    "ADMIN_ACCOUNT_UUID",
    "ADMIN_INITIAL_PASSWORD",
    "REQUEST_TIME_TOO_SKEWED",
    "SERVICE_ID",
    "AccessKeyInventory",
    "AccessKeyState",
    "AccountInventory",
    "AccountType",
    "IdentityErrors",
    "IdentityManager",
    "IdentityService",
    "SessionInventory",
]
