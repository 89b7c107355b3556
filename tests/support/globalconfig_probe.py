"""A service loaded into real MN processes to watch global config from outside.

It declares a test entry, as a real service declares its own, and answers
bus messages that update an entry through the MN's manager and report the
value the MN holds in memory (what its services would read).
"""

from __future__ import annotations

from mn.bus import Message, Reply
from mn.globalconfig import GlobalConfig, GlobalConfigManager, number_range
from mn.service import Service, handles

SERVICE_ID = "test.globalconfig"
SPEC = "tests.support.globalconfig_probe:GlobalConfigProbeService"
CATEGORY = "test.globalconfig"

#: The entry the cluster tests change.
PROBE_LIMIT = GlobalConfig(CATEGORY, "probe.limit", int, 10,
                           description="a setting only the global config tests use",
                           validators=[number_range(1, 1000)])


class GlobalConfigProbeUpdateMsg(Message):
    """Update an entry on the MN this is sent to, as the API would (text)."""

    SERVICE = SERVICE_ID
    category: str = CATEGORY
    name: str
    value: str


class GlobalConfigProbeReadMsg(Message):
    """Ask one MN for the value it holds in memory."""

    SERVICE = SERVICE_ID
    category: str = CATEGORY
    name: str


class GlobalConfigProbeReply(Reply):
    nodeUuid: str = ""
    #: The entry's in-memory value on that MN, as text.
    value: str = ""
    #: (old, new) of every change of PROBE_LIMIT its listener saw on that MN.
    changes: list[tuple[int, int]] = []


class GlobalConfigProbeService(Service):
    SERVICE_ID = SERVICE_ID

    def __init__(self, node):
        super().__init__(node)
        self.changes: list[tuple[int, int]] = []
        self.manager: GlobalConfigManager = node.global_config
        self._stop_listening = None

    async def start(self) -> None:
        self._stop_listening = PROBE_LIMIT.on_change(lambda old, new: self.changes.append((old, new)))

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()

    def _reply(self, category: str, name: str) -> GlobalConfigProbeReply:
        entry = self.manager.get(category, name)
        return GlobalConfigProbeReply(nodeUuid=self.node.uuid, value=entry.text, changes=self.changes)

    @handles(GlobalConfigProbeUpdateMsg)
    async def update(self, msg: GlobalConfigProbeUpdateMsg) -> GlobalConfigProbeReply:
        await self.manager.update(msg.category, msg.name, msg.value)
        return self._reply(msg.category, msg.name)

    @handles(GlobalConfigProbeReadMsg)
    async def read(self, msg: GlobalConfigProbeReadMsg) -> GlobalConfigProbeReply:
        return self._reply(msg.category, msg.name)
