"""All chains of an MN: loaded from XML, checked together, expanded.

``load_flows()`` reads every ``*.xml`` under the repository's ``flows/``
directory (recursively) and under any extra directories, applies the
plugins' extensions, and returns a :class:`FlowRegistry`. Any problem
raises :class:`~mn.flow.errors.FlowDefinitionError` naming the file and
line (or the entry point), so an MN never starts with a chain it cannot run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Mapping

import mn
from mn.errors import OperationError, SysErrors
from mn.flow.definition import Chain, ChainDecl, IncludeDecl, PointDecl, Step, StepDecl, class_name
from mn.flow.errors import FlowDefinitionError
from mn.flow.extensions import LoadedExtension, load_entry_point_extensions
from mn.flow.xml_loader import parse_chain_file

log = logging.getLogger(__name__)

#: The chains that ship with the MN: ``<repository>/flows``.
DEFAULT_FLOW_DIR = Path(mn.__file__).resolve().parents[1] / "flows"


class FlowRegistry:
    """The expanded chains by name."""

    def __init__(self, chains: Mapping[str, Chain]):
        self._chains = dict(chains)

    def get(self, name: str) -> Chain:
        """The chain ``name``; an OperationError (SYS.1007) when there is none."""
        try:
            return self._chains[name]
        except KeyError:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"no flow chain is named {name!r}") from None

    def find(self, name: str) -> Chain | None:
        return self._chains.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._chains)

    def __contains__(self, name: object) -> bool:
        return name in self._chains

    def __len__(self) -> int:
        return len(self._chains)


def split_dirs(value: str) -> list[Path]:
    """Directories from an ``os.pathsep``-separated setting (``ZSTACK_FLOW_DIRS``)."""
    return [Path(part) for part in value.split(os.pathsep) if part.strip()]


def load_flows(extra_dirs: Iterable[Path] = (), *, default_dir: Path | None = DEFAULT_FLOW_DIR,
               extensions: Iterable[LoadedExtension] | None = None) -> FlowRegistry:
    """Load, check and expand every chain.

    ``default_dir`` (``flows/`` of the repository) is skipped when absent;
    an ``extra_dirs`` entry must exist. ``extensions`` default to those of
    the ``zstack.flow_extensions`` entry points.
    """
    files: list[Path] = []
    if default_dir is not None and default_dir.is_dir():
        files += sorted(default_dir.rglob("*.xml"))
    for directory in extra_dirs:
        if not directory.is_dir():
            raise FlowDefinitionError("flow directory does not exist", where=str(directory))
        files += sorted(directory.rglob("*.xml"))
    decls = [parse_chain_file(path) for path in files]
    if extensions is None:
        extensions = load_entry_point_extensions()
    registry = build_registry(decls, extensions)
    log.info("loaded %d flow chain(s) from %d file(s)", len(registry), len(files))
    return registry


def build_registry(decls: Iterable[ChainDecl], extensions: Iterable[LoadedExtension] = ()) -> FlowRegistry:
    """Check declarations against each other, place extensions, expand sub-chains."""
    by_name: dict[str, ChainDecl] = {}
    for decl in decls:
        if decl.name in by_name:
            raise FlowDefinitionError(f"chain {decl.name!r} is already defined at {by_name[decl.name].where}",
                                      where=decl.where)
        by_name[decl.name] = decl

    at_point: dict[tuple[str, str], list[LoadedExtension]] = {}
    for ext in extensions:
        chain, point = ext.extension.chain, ext.extension.point
        if chain not in by_name:
            raise FlowDefinitionError(f"no chain is named {chain!r}", where=ext.where)
        if by_name[chain].point(point) is None:
            raise FlowDefinitionError(f"chain {chain!r} ({by_name[chain].where}) has no insertion point "
                                      f"{point!r}", where=ext.where)
        at_point.setdefault((chain, point), []).append(ext)
    for steps in at_point.values():
        steps.sort(key=lambda ext: ext.sort_key)

    expander = _Expander(by_name, at_point)
    chains = {}
    for name, decl in by_name.items():
        handlers = {kind: tuple(h.cls for h in decl.handlers if h.kind == kind)
                    for kind in ("done", "error", "finally")}
        chains[name] = Chain(name=name, where=decl.where, steps=tuple(expander.expand(decl)),
                             handlers=handlers, resumable=decl.resumable)
    return FlowRegistry(chains)


class _Expander:
    """Inline sub-chains and extensions into a flat list of steps."""

    def __init__(self, decls: dict[str, ChainDecl], at_point: dict[tuple[str, str], list[LoadedExtension]]):
        self.decls = decls
        self.at_point = at_point

    def expand(self, decl: ChainDecl) -> list[Step]:
        return self._expand(decl, prefix="", stack=(decl.name,), when=(), unless=())

    def _expand(self, decl: ChainDecl, *, prefix: str, stack: tuple[str, ...],
                when: tuple[str, ...], unless: tuple[str, ...]) -> list[Step]:
        steps: list[Step] = []
        for position, element in enumerate(decl.elements, 1):
            path = f"{prefix}{position}"
            if isinstance(element, StepDecl):
                steps.append(Step(id=f"{path}/{class_name(element.cls)}", cls=element.cls,
                                  where=element.where, when=when + _opt(element.when),
                                  unless=unless + _opt(element.unless),
                                  rollbackable=element.rollback and element.cls.rollbackable))
            elif isinstance(element, IncludeDecl):
                sub = self.decls.get(element.chain)
                if sub is None:
                    raise FlowDefinitionError(f"no chain is named {element.chain!r} (sub-chain of "
                                              f"{decl.name!r})", where=element.where)
                if sub.name in stack:
                    cycle = " -> ".join((*stack, sub.name))
                    raise FlowDefinitionError(f"sub-chain cycle: {cycle}", where=element.where)
                steps += self._expand(sub, prefix=f"{path}.", stack=(*stack, sub.name),
                                      when=when + _opt(element.when), unless=unless + _opt(element.unless))
            elif isinstance(element, PointDecl):
                for index, ext in enumerate(self.at_point.get((decl.name, element.name), ()), 1):
                    spec = ext.extension
                    steps.append(Step(id=f"{path}.{index}/{class_name(ext.cls)}", cls=ext.cls,
                                      where=ext.where, when=when + _opt(spec.when),
                                      unless=unless + _opt(spec.unless), rollbackable=ext.cls.rollbackable))
        return steps


def _opt(key: str | None) -> tuple[str, ...]:
    return (key,) if key else ()
