"""LocalStorage follows hosts joining clusters (ZStack's LocalStorage host-add hook).

Registered with the host service when the primary storage service starts:
once a host is added (and Connected), it gets its share of every
LocalStorage attached to its cluster. The host service may also call
:func:`~mn.storage.primary.local.ensure_local_storage_refs` inside the
transaction that adds the host, so no moment exists when the host is there
without its shares; this hook then finds them made and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from mn.storage.primary.local import ensure_local_storage_refs

log = logging.getLogger(__name__)


class LocalStorageHostExtension:
    """The ``after_add_host`` hook of the host service (mn.host.extensions)."""

    def __init__(self, node: Any):
        self.node = node

    async def after_add_host(self, host: Any) -> None:
        added = await self.node.db.run(ensure_local_storage_refs, host.uuid)
        if added:
            log.info("host %s got its share of local storage %s", host.uuid, ", ".join(added))
