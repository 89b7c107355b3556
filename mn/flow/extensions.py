"""Plugin steps: added at named insertion points of a chain, without editing its XML.

A plugin declares an entry point in the ``zstack.flow_extensions`` group
whose object is a :class:`FlowExtension` (or a list of them)::

    # the plugin's setup.cfg
    [options.entry_points]
    zstack.flow_extensions =
        ceph-vm-create = zstack_ceph.flows:VM_CREATE_STEPS

    # zstack_ceph/flows.py
    VM_CREATE_STEPS = [
        FlowExtension(chain="vm.create", point="after-allocate-volume",
                      step="zstack_ceph.flows:PrepareCephVolumeFlow"),
    ]

Extensions are applied when the flows are loaded, at MN start-up: an
extension naming an unknown chain, an unknown insertion point or a class
that is not a step stops the start-up like a bad XML file does.
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import EntryPoint, entry_points
from typing import Iterable

from mn.flow.base import Flow
from mn.flow.definition import check_flow_class, class_name, import_class
from mn.flow.errors import FlowDefinitionError

#: Entry point group scanned for plugin steps.
ENTRY_POINT_GROUP = "zstack.flow_extensions"


@dataclasses.dataclass(frozen=True)
class FlowExtension:
    """A step a plugin puts at the insertion point ``point`` of chain ``chain``.

    Several steps at one point run by ascending ``order``, then by entry
    point name, then in list order. ``when``/``unless`` work as on
    ``<step>``.
    """

    chain: str
    point: str
    #: The step class, or its name as ``"package.module:Class"``.
    step: type[Flow] | str
    order: int = 0
    when: str | None = None
    unless: str | None = None


@dataclasses.dataclass(frozen=True)
class LoadedExtension:
    """An extension with its step class imported and where it came from."""

    extension: FlowExtension
    cls: type[Flow]
    #: ``entry point NAME (VALUE)``: for error messages and step sources.
    where: str
    sort_key: tuple


def load_entry_point_extensions(group: str = ENTRY_POINT_GROUP) -> list[LoadedExtension]:
    """Every extension declared by the installed distributions."""
    loaded: list[LoadedExtension] = []
    for ep in sorted(entry_points(group=group), key=lambda ep: (ep.name, ep.value)):
        loaded.extend(_from_entry_point(ep))
    return loaded


def resolve(extensions: Iterable[FlowExtension], where: str = "extension") -> list[LoadedExtension]:
    """Extensions given in code (tests, embedding); ``where`` names their source."""
    return [_loaded(ext, f"{where} #{i}", (where, i)) for i, ext in enumerate(extensions, 1)]


def _from_entry_point(ep: EntryPoint) -> list[LoadedExtension]:
    where = f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})"
    try:
        obj = ep.load()
    except Exception as exc:
        raise FlowDefinitionError(f"cannot load: {type(exc).__name__}: {exc}", where=where) from None
    items = [obj] if isinstance(obj, FlowExtension) else obj
    try:
        items = list(items)
    except TypeError:
        raise FlowDefinitionError(f"is a {type(obj).__name__}, not a FlowExtension or a list of them",
                                  where=where) from None
    return [_loaded(ext, where, (ep.name, i)) for i, ext in enumerate(items)]


def _loaded(ext: object, where: str, tiebreak: tuple) -> LoadedExtension:
    if not isinstance(ext, FlowExtension):
        raise FlowDefinitionError(f"{ext!r} is not a FlowExtension", where=where)
    spec = ext.step if isinstance(ext.step, str) else class_name(ext.step)
    try:
        cls = import_class(ext.step) if isinstance(ext.step, str) else ext.step
        check_flow_class(cls, spec)
    except (ValueError, TypeError) as exc:
        raise FlowDefinitionError(str(exc), where=where) from None
    return LoadedExtension(extension=ext, cls=cls, where=where, sort_key=(ext.order, *tiebreak))
