"""The global configuration APIs (ZStack's ``org.zstack.core.config``) and their service.

Queries run over GlobalConfigVO through the query engine. Updating and
resetting are for the admin only; they go through the node's
:class:`~mn.globalconfig.manager.GlobalConfigManager`, which validates,
stores and tells every MN.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator
from sqlalchemy import select

from mn.api.message import APIEvent, APIMessage, APIQueryMessage, APIQueryReply, APIReply, Rest
from mn.db.models.global_config import GlobalConfigVO
from mn.globalconfig import validators, values
from mn.globalconfig.definition import GlobalConfig
from mn.globalconfig.inventory import GlobalConfigInventory
from mn.service import Service, handles, intercepts

log = logging.getLogger(__name__)

SERVICE_ID = "globalConfig"
_PACKAGE = "org.zstack.core.config"


def _as_text(value: Any) -> Any:
    # ZStack reads "value" as a String whatever JSON type the client sent.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


class APIQueryGlobalConfigReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryGlobalConfigReply"


class APIQueryGlobalConfigMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryGlobalConfigMsg"
    SERVICE = SERVICE_ID
    # ZStack declares no /global-configurations/{uuid}: entries have no uuid.
    REST = Rest("GET", "/global-configurations", all_to="inventories")
    RESPONSE = APIQueryGlobalConfigReply
    INVENTORY = GlobalConfigInventory


class APIUpdateGlobalConfigEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateGlobalConfigEvent"
    inventory: GlobalConfigInventory | None = None


class APIUpdateGlobalConfigMsg(APIMessage):
    """Set one entry from text; refused values (SYS.1007) change nothing."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateGlobalConfigMsg"
    SERVICE = SERVICE_ID
    REST = Rest("PUT", "/global-configurations/{category}/{name}/actions", is_action=True)
    RESPONSE = APIUpdateGlobalConfigEvent
    ADMIN_ONLY = True

    category: str
    name: str
    value: Annotated[str | None, BeforeValidator(_as_text)] = None


class APIResetGlobalConfigEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIResetGlobalConfigEvent"


class APIResetGlobalConfigMsg(APIMessage):
    """Set every entry back to its default."""

    FULL_NAME = f"{_PACKAGE}.APIResetGlobalConfigMsg"
    SERVICE = SERVICE_ID
    REST = Rest("PUT", "/global-configurations/actions", is_action=True, all_to=None)
    RESPONSE = APIResetGlobalConfigEvent
    ADMIN_ONLY = True


class GlobalConfigOptions(BaseModel):
    """ZStack's GlobalConfigOptions: what values an entry accepts (absent: no such limit)."""

    validValue: list[str] | None = None
    numberGreaterThan: int | float | None = None
    numberLessThan: int | float | None = None
    numberGreaterThanOrEqual: int | float | None = None
    numberLessThanOrEqual: int | float | None = None


class APIGetGlobalConfigOptionsReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APIGetGlobalConfigOptionsReply"
    options: GlobalConfigOptions | None = None


class APIGetGlobalConfigOptionsMsg(APIMessage):
    """The valid values or number bounds of one entry, from its declared checks."""

    FULL_NAME = f"{_PACKAGE}.APIGetGlobalConfigOptionsMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/global-configurations/{category}/{name}", all_to=None, fields=("options",))
    RESPONSE = APIGetGlobalConfigOptionsReply

    category: str
    name: str


def options_of(entry: GlobalConfig) -> GlobalConfigOptions:
    """The options an entry's declared validators express; other checks are not shown."""
    options = GlobalConfigOptions()
    for check in entry.validators:
        if isinstance(check, validators.valid_values):
            options.validValue = [values.to_text(entry.value_type, v) for v in check.values]
        elif isinstance(check, validators.number_range):
            options.numberGreaterThanOrEqual = check.low
            options.numberLessThanOrEqual = check.high
        elif isinstance(check, validators.at_least):
            options.numberGreaterThanOrEqual = check.low
        elif isinstance(check, validators.at_most):
            options.numberLessThanOrEqual = check.high
    return options


class GlobalConfigService(Service):
    """ZStack's GlobalConfigFacade as a service: the non-query global config APIs."""

    SERVICE_ID = SERVICE_ID

    @intercepts(APIUpdateGlobalConfigMsg)
    async def check_update(self, msg: APIUpdateGlobalConfigMsg) -> None:
        # An unknown entry or a refused value is a 4xx before any job exists.
        entry = self.node.global_config.get(msg.category, msg.name)
        await entry.validate(entry.convert(msg.value))

    @handles(APIUpdateGlobalConfigMsg)
    async def update_global_config(self, msg: APIUpdateGlobalConfigMsg) -> APIUpdateGlobalConfigEvent:
        entry = await self.node.global_config.update(msg.category, msg.name, msg.value)
        return APIUpdateGlobalConfigEvent(inventory=await self._inventory(entry))

    @handles(APIResetGlobalConfigMsg)
    async def reset_global_config(self, msg: APIResetGlobalConfigMsg) -> APIResetGlobalConfigEvent:
        manager = self.node.global_config
        reset = [entry for entry in manager.entries() if entry.value != entry.default]
        for entry in reset:
            await manager.update_entry(entry, entry.default)
        log.info("global config reset: %d entries back to their defaults", len(reset))
        return APIResetGlobalConfigEvent()

    @handles(APIGetGlobalConfigOptionsMsg)
    async def get_global_config_options(self, msg: APIGetGlobalConfigOptionsMsg) -> APIGetGlobalConfigOptionsReply:
        entry = self.node.global_config.get(msg.category, msg.name)
        return APIGetGlobalConfigOptionsReply(options=options_of(entry))

    async def _inventory(self, entry: GlobalConfig) -> GlobalConfigInventory:
        """The entry's row (with its id), or its in-memory inventory if the row vanished."""

        def read(session) -> GlobalConfigInventory | None:
            vo = session.scalars(select(GlobalConfigVO).where(
                GlobalConfigVO.category == entry.category, GlobalConfigVO.name == entry.name)).first()
            return None if vo is None else GlobalConfigInventory.from_vo(vo)

        return await self.node.db.run(read) or GlobalConfigInventory.of(entry)
