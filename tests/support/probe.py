"""A service loaded into real MN processes by tests (ZSTACK_SERVICES).

It lets a test observe routing from outside: which MN handled a message
about a resource, what each MN's ring says, which one-way messages arrived.
"""

from __future__ import annotations

import asyncio

from mn.bus import Message, Reply
from mn.errors import OperationError
from mn.service import Service, handles

SERVICE_ID = "test.probe"
SPEC = "tests.support.probe:ProbeService"


class ProbeEchoMsg(Message):
    """Routed to the owner of resourceUuid, which answers its own uuid."""

    SERVICE = SERVICE_ID
    ROUTE_BY = "resourceUuid"
    resourceUuid: str
    sleep: float = 0.0


class ProbeEchoReply(Reply):
    nodeUuid: str = ""


class ProbeRouteMsg(Message):
    """Sent to one MN: it routes a ProbeEchoMsg per uuid by its own ring."""

    SERVICE = SERVICE_ID
    resourceUuids: list[str]
    sleep: float = 0.0
    timeout: float = 30.0


class ProbeRouteReply(Reply):
    nodeUuid: str = ""
    owners: list[str | None] = []
    errors: list[dict | None] = []


class ProbeCountMsg(Message):
    """One-way, routed by resource; the receiving MN remembers seq."""

    SERVICE = SERVICE_ID
    ROUTE_BY = "resourceUuid"
    resourceUuid: str
    seq: int


class ProbeCountsMsg(Message):
    SERVICE = SERVICE_ID


class ProbeCountsReply(Reply):
    seqs: list[int] = []


class ProbeService(Service):
    SERVICE_ID = SERVICE_ID

    def __init__(self, node):
        super().__init__(node)
        self.seqs: list[int] = []

    @handles(ProbeEchoMsg)
    async def echo(self, msg: ProbeEchoMsg) -> ProbeEchoReply:
        if msg.sleep:
            await asyncio.sleep(msg.sleep)
        return ProbeEchoReply(nodeUuid=self.node.uuid)

    @handles(ProbeRouteMsg)
    async def route(self, msg: ProbeRouteMsg) -> ProbeRouteReply:
        async def one(uuid: str):
            try:
                reply = await self.node.bus.call(
                    ProbeEchoMsg(resourceUuid=uuid, sleep=msg.sleep), timeout=msg.timeout)
                return reply.nodeUuid, None
            except OperationError as exc:
                return None, exc.error.to_dict()

        results = await asyncio.gather(*(one(u) for u in msg.resourceUuids))
        return ProbeRouteReply(nodeUuid=self.node.uuid, owners=[r[0] for r in results],
                               errors=[r[1] for r in results])

    @handles(ProbeCountMsg)
    async def count(self, msg: ProbeCountMsg) -> None:
        self.seqs.append(msg.seq)

    @handles(ProbeCountsMsg)
    async def counts(self, msg: ProbeCountsMsg) -> ProbeCountsReply:
        return ProbeCountsReply(seqs=self.seqs)
