"""Inventories: what the API shows of a resource, and what queries can reach.

An inventory is a pydantic model over one table. Its plain fields are the
table's columns of the same name. ``RELATIONS`` names the other inventories
reachable from it, which is what nested query conditions walk
(``vmNics.l3Network.name``)::

    class VmNicInventory(Inventory):
        VO = VmNicVO
        RELATIONS = {"l3Network": Relation("L3NetworkInventory", "l3NetworkUuid", "uuid", many=False,
                                           expanded=True)}
        uuid: str
        vmInstanceUuid: str
        ip: str | None

A relation that is not ``expanded`` is also part of the inventory's JSON
(``VmInstanceInventory.vmNics`` is a list of nic inventories); an expanded one
is reachable by queries only, like ZStack's ``@ExpandedQuery``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

#: Inventory classes by class name, to resolve relations named as strings.
INVENTORIES: dict[str, type["Inventory"]] = {}


@dataclasses.dataclass(frozen=True)
class Relation:
    """A link from this inventory's table to another inventory's table:
    rows of ``target`` whose ``remote_key`` equals our ``local_key``."""

    target: str
    local_key: str
    remote_key: str
    many: bool = True
    expanded: bool = False

    def target_class(self) -> type["Inventory"]:
        try:
            return INVENTORIES[self.target]
        except KeyError:
            raise LookupError(f"unknown inventory {self.target!r}") from None


class Inventory(BaseModel):
    """Base of inventories. Subclasses set ``VO`` and may set ``RELATIONS``."""

    model_config = ConfigDict(extra="ignore")

    VO: ClassVar[type | None] = None
    RELATIONS: ClassVar[dict[str, Relation]] = {}
    #: Every account may query these (zones, clusters: the cloud's shape);
    #: others show a normal account only what it owns.
    READABLE_BY_ALL: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        INVENTORIES[cls.__name__] = cls

    @classmethod
    def resource_type(cls) -> str:
        """The table name, ZStack's resource type ("ZoneVO")."""
        return cls.VO.__tablename__

    @classmethod
    def column_fields(cls) -> list[str]:
        """Fields that are columns of ``VO`` (the rest are relations)."""
        return [name for name in cls.model_fields if name not in cls.RELATIONS]

    @classmethod
    def from_vo(cls, vo: Any, **related: Any) -> "Inventory":
        values = {name: getattr(vo, name) for name in cls.column_fields()}
        values.update(related)
        return cls(**values)
