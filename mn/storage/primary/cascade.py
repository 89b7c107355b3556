"""Primary storage in cascade deletions.

* ``PrimaryStorageVO`` is a child of ``ZoneVO`` (ZStack's
  PrimaryStorageCascadeExtension): deleting a zone deletes its primary
  storage, after what is on them (volumes register under
  ``PrimaryStorageVO``). Its capacity row, cluster refs and host shares go
  with the row (foreign keys ON DELETE CASCADE).
* ``LocalStorageHostRefVO`` is a child of ``HostVO``: deleting a host takes
  its shares out of their LocalStorage, whose capacity drops accordingly,
  before the host row goes (ZStack's LocalStorageFactory.beforeDeleteHost).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.cascade import CascadeContext, CascadeExtension
from mn.db.models.storage import LocalStorageHostRefVO, PrimaryStorageVO
from mn.storage.primary.local import remove_host_share
from mn.zone.cascade import TableCascade

_SEPARATOR = "/"


def primary_storage_cascade() -> TableCascade:
    """Primary storage under zones."""
    return TableCascade(PrimaryStorageVO, {"ZoneVO": "zoneUuid"})


def share_key(host_uuid: str, ps_uuid: str) -> str:
    """The cascade's name of one host share (a share has no uuid of its own)."""
    return f"{host_uuid}{_SEPARATOR}{ps_uuid}"


class LocalStorageHostShareCascade(CascadeExtension):
    """Hosts' shares of LocalStorage, under hosts."""

    resource_type = LocalStorageHostRefVO.__tablename__
    parents = ("HostVO",)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        share = LocalStorageHostRefVO

        def find(session: Session) -> list[str]:
            rows = session.execute(select(share.hostUuid, share.primaryStorageUuid)
                                   .where(share.hostUuid.in_(parent_uuids))
                                   .order_by(share.hostUuid, share.primaryStorageUuid))
            return [share_key(host, ps) for host, ps in rows]

        return await ctx.node.db.run(find)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        by_storage: dict[str, list[str]] = defaultdict(list)
        for key in uuids:
            host, _, ps = key.partition(_SEPARATOR)
            by_storage[ps].append(host)

        def remove(session: Session) -> None:
            # Storage in uuid order: the lock order of every capacity change.
            for ps in sorted(by_storage):
                for host in sorted(by_storage[ps]):
                    remove_host_share(session, ps, host)

        await ctx.node.db.run(remove)
