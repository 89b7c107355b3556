"""Chain definitions: what XML declares, and the flat chains the engine runs.

The loader turns each XML file into a :class:`ChainDecl` (elements in file
order, each with the place it came from). The registry then expands every
declaration into a :class:`Chain`: a flat tuple of :class:`Step`, with
sub-chains inlined and plugin steps put at their insertion points.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Literal

from mn.flow.base import Flow, FlowContext, FlowHandler

HandlerKind = Literal["done", "error", "finally"]
HANDLER_KINDS: tuple[HandlerKind, ...] = ("done", "error", "finally")


def import_class(spec: str) -> type:
    """The class named by ``"package.module:Class"`` or ``"package.module.Class"``.

    Raises ValueError with a readable reason when it cannot be found.
    """
    if ":" in spec:
        module_name, _, attr_path = spec.partition(":")
    else:
        module_name, _, attr_path = spec.rpartition(".")
    if not module_name or not attr_path:
        raise ValueError(f"{spec!r} is not a class reference; write 'package.module:Class'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # an ImportError, or the module failing to import
        raise ValueError(f"cannot import module {module_name!r} for {spec!r}: "
                         f"{type(exc).__name__}: {exc}") from exc
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no {attr_path!r} (from {spec!r})") from None
    if not isinstance(obj, type):
        raise ValueError(f"{spec!r} is a {type(obj).__name__}, not a class")
    return obj


def class_name(cls: type) -> str:
    """``module.Qualname``: the stable name of a class in step ids and logs."""
    return f"{cls.__module__}.{cls.__qualname__}"


def check_flow_class(cls: type, spec: str) -> None:
    """Raise ValueError unless ``cls`` is a usable step class."""
    if not issubclass(cls, Flow):
        raise ValueError(f"{spec!r} is not a step: it does not subclass mn.flow.Flow")
    if cls.run is Flow.run:
        raise ValueError(f"step class {spec!r} does not implement run()")


def check_handler_class(cls: type, spec: str) -> None:
    if not issubclass(cls, FlowHandler):
        raise ValueError(f"{spec!r} is not a handler: it does not subclass mn.flow.FlowHandler")
    if cls.handle is FlowHandler.handle:
        raise ValueError(f"handler class {spec!r} does not implement handle()")


# -- what one XML file declares --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepDecl:
    """``<step class=... [when=...] [unless=...] [rollback=...]/>``."""

    cls: type[Flow]
    where: str
    when: str | None = None
    unless: str | None = None
    #: False when the XML says ``rollback="false"``.
    rollback: bool = True


@dataclasses.dataclass(frozen=True)
class IncludeDecl:
    """``<include chain=... [when=...] [unless=...]/>``: a sub-chain by reference."""

    chain: str
    where: str
    when: str | None = None
    unless: str | None = None


@dataclasses.dataclass(frozen=True)
class PointDecl:
    """``<insertion-point name=.../>``: where plugins may add steps."""

    name: str
    where: str


@dataclasses.dataclass(frozen=True)
class HandlerDecl:
    kind: HandlerKind
    cls: type[FlowHandler]
    where: str


@dataclasses.dataclass(frozen=True)
class ChainDecl:
    """One ``<chain>`` element as written, before expansion."""

    name: str
    where: str
    resumable: bool
    elements: tuple[StepDecl | IncludeDecl | PointDecl, ...]
    handlers: tuple[HandlerDecl, ...]

    def point(self, name: str) -> PointDecl | None:
        return next((e for e in self.elements if isinstance(e, PointDecl) and e.name == name), None)


# -- what the engine runs ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of an expanded chain.

    ``id`` is ``<position path>/<module.Class>``: the 1-based position of
    the element in its chain's XML, with one more number per sub-chain or
    insertion point level (``"4.2"`` is the 2nd step of what element 4
    brings in). Every MN that runs the same code and plugins computes the
    same ids, which is what lets one MN map a record written by another
    back to step objects; the class name makes a mismatch (a different
    plugin set) an error rather than a wrong step.
    """

    id: str
    cls: type[Flow]
    where: str
    #: Data keys that must all be truthy for the step to run (its own
    #: ``when`` plus those of the includes it came through).
    when: tuple[str, ...] = ()
    #: Data keys of which any truthy one skips the step.
    unless: tuple[str, ...] = ()
    rollbackable: bool = True

    def skipped(self, flow: Flow, ctx: FlowContext) -> bool:
        if any(not ctx.data.get(key) for key in self.when):
            return True
        if any(ctx.data.get(key) for key in self.unless):
            return True
        return bool(flow.skip(ctx))


@dataclasses.dataclass(frozen=True)
class Chain:
    """A chain ready to run: flat steps, handlers, and whether it resumes after a crash."""

    name: str
    where: str
    steps: tuple[Step, ...]
    handlers: dict[HandlerKind, tuple[type[FlowHandler], ...]]
    #: After a crash, continue forward from the record (True) instead of
    #: rolling back (the default).
    resumable: bool = False

    def index_of(self, step_id: str) -> int:
        """Position of ``step_id`` in :attr:`steps`; KeyError if absent."""
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise KeyError(step_id)
