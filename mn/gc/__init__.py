"""Garbage collection jobs: deferred cleanups stored durably and retried until done.

A service that cannot finish a cleanup now (the host is down) submits a
job instead of failing::

    class DeleteVolumeOnHostGC(GarbageCollector):
        TRIGGER_EVENTS = (HostReconnectedEvent,)

        def event_matches(self, event, context):
            return event.hostUuid == context["hostUuid"]

        async def collect(self, ctx, context):
            await ctx.node.bus.call(DeleteVolumeOnHostMsg(**context))

    await node.gc.submit(DeleteVolumeOnHostGC, {"hostUuid": h, "path": p})
"""

from mn.db.models.garbage_collector import GarbageCollectorType, GarbageCollectorVO, GCStatus
from mn.gc.collector import GarbageCollector, GCContext, resolve_runner, runner_name
from mn.gc.manager import GCManager

__all__ = [
    "GCContext",
    "GCManager",
    "GCStatus",
    "GarbageCollector",
    "GarbageCollectorType",
    "GarbageCollectorVO",
    "resolve_runner",
    "runner_name",
]
