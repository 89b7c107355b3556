"""Cascade extensions of resources whose deletion is the deletion of their rows.

Zones and clusters (and later any resource with nothing to undo outside the
database) take part in cascades as a :class:`TableCascade`: found under
their parents by a column, deleted with one statement per batch. Their
tags and ownership records go with them (the cascade facade deletes those
of every deleted resource).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select

from mn.cascade import CascadeContext, CascadeExtension


class TableCascade(CascadeExtension):
    """Rows of ``model`` in cascades.

    ``parent_keys`` maps each parent resource type to the column of
    ``model`` holding that parent's uuid: ``{"ZoneVO": "zoneUuid"}``.
    """

    def __init__(self, model: Any, parent_keys: Mapping[str, str] | None = None):
        self.model = model
        self.resource_type = model.__tablename__
        self.parent_keys = dict(parent_keys or {})
        self.parents = tuple(self.parent_keys)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        model, column = self.model, getattr(self.model, self.parent_keys[parent_type])

        def find(session) -> list[str]:
            return list(session.scalars(select(model.uuid).where(column.in_(parent_uuids))
                                        .order_by(model.uuid)))

        return await ctx.node.db.run(find)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        model = self.model

        def remove(session) -> None:
            session.execute(delete(model).where(model.uuid.in_(uuids)),
                            execution_options={"synchronize_session": False})

        await ctx.node.db.run(remove)
