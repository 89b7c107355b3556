"""Test-only resource tables and their cascade extensions.

The tree mirrors ZStack's (zone, cluster, host, primary storage, VM)::

    SampleZoneVO ─┬─ SampleClusterVO ── SampleHostVO ─┬─ SampleVmVO
                  ├─ SamplePrimaryStorageVO           └─ SampleHostNicVO (opt-in)
                  └──────────────────────────────────────── SampleVmVO

A VM depends on its zone *and* its host, so it is reachable from a zone by
two paths of different lengths. Every child has a real foreign key to its
parents, so the database itself refuses a parent deleted before its children.

The tables live in their own MetaData (``SampleBase.metadata``), out of the
MN's models and migrations; tests create them with ``create_all``.
"""

from __future__ import annotations

import itertools
from typing import Optional

from sqlalchemy import ForeignKey, delete, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mn.cascade import CascadeContext, CascadeExtension, DeletionRefused
from mn.db import ResourceMixin
from mn.ids import new_uuid


class SampleBase(DeclarativeBase):
    """Keeps the sample tables out of ``mn.db.Base.metadata``."""


class SampleZoneVO(ResourceMixin, SampleBase):
    __tablename__ = "SampleZoneVO"


class SampleClusterVO(ResourceMixin, SampleBase):
    __tablename__ = "SampleClusterVO"
    zoneUuid: Mapped[str] = mapped_column(ForeignKey("SampleZoneVO.uuid"))


class SamplePrimaryStorageVO(ResourceMixin, SampleBase):
    __tablename__ = "SamplePrimaryStorageVO"
    zoneUuid: Mapped[str] = mapped_column(ForeignKey("SampleZoneVO.uuid"))


class SampleHostVO(ResourceMixin, SampleBase):
    __tablename__ = "SampleHostVO"
    clusterUuid: Mapped[str] = mapped_column(ForeignKey("SampleClusterVO.uuid"))


class SampleVmVO(ResourceMixin, SampleBase):
    __tablename__ = "SampleVmVO"
    zoneUuid: Mapped[str] = mapped_column(ForeignKey("SampleZoneVO.uuid"))
    hostUuid: Mapped[Optional[str]] = mapped_column(ForeignKey("SampleHostVO.uuid"))


class SampleHostNicVO(ResourceMixin, SampleBase):
    __tablename__ = "SampleHostNicVO"
    hostUuid: Mapped[str] = mapped_column(ForeignKey("SampleHostVO.uuid"))


#: Every sample model, parents before children.
MODELS = (SampleZoneVO, SampleClusterVO, SamplePrimaryStorageVO, SampleHostVO, SampleVmVO, SampleHostNicVO)


class TableCascade(CascadeExtension):
    """Cascade extension of one sample table: its parents are its foreign key columns.

    Every call is appended to ``journal`` as ``(action, resource type,
    uuids)``; ``refuse`` maps uuids to the reason ``check`` refuses them with.
    """

    def __init__(self, model, parent_columns: dict[str, str], journal: list, refuse: dict[str, str] | None = None):
        self.model = model
        self.resource_type = model.__tablename__
        self.parent_columns = parent_columns
        self.parents = tuple(parent_columns)
        self.journal = journal
        self.refuse = refuse if refuse is not None else {}

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        column = getattr(self.model, self.parent_columns[parent_type])
        self.journal.append(("children", self.resource_type, tuple(parent_uuids)))
        return await ctx.node.db.run(
            lambda s: list(s.scalars(select(self.model.uuid).where(column.in_(parent_uuids)))))

    async def check(self, ctx: CascadeContext, uuids: list[str]) -> None:
        self.journal.append(("check", self.resource_type, tuple(uuids)))
        for uuid in uuids:
            if uuid in self.refuse:
                raise DeletionRefused(uuid, self.refuse[uuid])

    async def _delete_rows(self, ctx: CascadeContext, uuids: list[str]) -> None:
        await ctx.node.db.run(lambda s: s.execute(delete(self.model).where(self.model.uuid.in_(uuids))))

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        self.journal.append(("delete", self.resource_type, tuple(uuids)))
        await self._delete_rows(ctx, uuids)

    async def force_delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        self.journal.append(("force-delete", self.resource_type, tuple(uuids)))
        await self._delete_rows(ctx, uuids)

    async def cleanup(self, ctx: CascadeContext, uuids: list[str]) -> None:
        self.journal.append(("cleanup", self.resource_type, tuple(uuids)))


def tree_extensions(journal: list, refuse: dict[str, str] | None = None) -> list[TableCascade]:
    """Extensions of the zone/cluster/storage/host/VM tree (not the NICs), sharing ``journal``."""
    refuse = refuse if refuse is not None else {}
    return [
        TableCascade(SampleZoneVO, {}, journal, refuse),
        TableCascade(SampleClusterVO, {"SampleZoneVO": "zoneUuid"}, journal, refuse),
        TableCascade(SamplePrimaryStorageVO, {"SampleZoneVO": "zoneUuid"}, journal, refuse),
        TableCascade(SampleHostVO, {"SampleClusterVO": "clusterUuid"}, journal, refuse),
        TableCascade(SampleVmVO, {"SampleZoneVO": "zoneUuid", "SampleHostVO": "hostUuid"}, journal, refuse),
    ]


#: Calls of :class:`SampleHostNicCascade` instances, which take no arguments.
NIC_JOURNAL: list = []


class SampleHostNicCascade(TableCascade):
    """The NIC type, instantiable without arguments, as an entry point names it."""

    def __init__(self):
        super().__init__(SampleHostNicVO, {"SampleHostVO": "hostUuid"}, NIC_JOURNAL)


def populate(session, *, zones: int = 2, clusters: int = 2, storages: int = 1, hosts: int = 2,
             vms: int = 2, nics: int = 0) -> dict[str, dict[str, list[str]]]:
    """Insert ``zones`` trees (counts are per parent); returns ``{zone uuid: {type: uuids}}``."""
    trees: dict[str, dict[str, list[str]]] = {}
    serial = itertools.count()

    def add(model, **columns) -> str:
        uuid = new_uuid()
        kind = model.__tablename__[len("Sample"):-len("VO")].lower()
        session.add(model(uuid=uuid, name=f"{kind}-{next(serial)}", **columns))
        # Without relationships the session does not order inserts by
        # foreign key, so write each row before its children.
        session.flush()
        return uuid

    for _ in range(zones):
        zone = add(SampleZoneVO)
        tree = trees[zone] = {model.__tablename__: [] for model in MODELS}
        tree["SampleZoneVO"].append(zone)
        for _ in range(storages):
            tree["SamplePrimaryStorageVO"].append(add(SamplePrimaryStorageVO, zoneUuid=zone))
        for _ in range(clusters):
            cluster = add(SampleClusterVO, zoneUuid=zone)
            tree["SampleClusterVO"].append(cluster)
            for _ in range(hosts):
                host = add(SampleHostVO, clusterUuid=cluster)
                tree["SampleHostVO"].append(host)
                for _ in range(vms):
                    tree["SampleVmVO"].append(add(SampleVmVO, zoneUuid=zone, hostUuid=host))
                for _ in range(nics):
                    tree["SampleHostNicVO"].append(add(SampleHostNicVO, hostUuid=host))
        # A stopped VM has no host: only the zone path reaches it.
        tree["SampleVmVO"].append(add(SampleVmVO, zoneUuid=zone, hostUuid=None))
    return trees


def count_rows(session) -> dict[str, int]:
    """Rows per sample table."""
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) for model in MODELS}


def existing(session, model, uuids: list[str]) -> set[str]:
    """Which of ``uuids`` still have a row in ``model``'s table."""
    return set(session.scalars(select(model.uuid).where(model.uuid.in_(uuids))))
