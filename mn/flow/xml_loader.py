"""Read one chain XML file into a :class:`~mn.flow.definition.ChainDecl`.

The format is described in ``flows/README.md``. Parsing uses the standard
library's expat directly because it reports the line of every element,
which every error message carries (``flows/vm/create.xml:12: ...``).
Everything that can be checked inside one file is checked here: the XML
itself, element and attribute names, values, and that every class imports
and is a step (or handler). What needs all files at once (sub-chains,
duplicate names, cycles, plugin insertion points) is checked by the
registry.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from xml.parsers import expat

from mn.flow.definition import (
    ChainDecl,
    HandlerDecl,
    IncludeDecl,
    PointDecl,
    StepDecl,
    check_flow_class,
    check_handler_class,
    import_class,
)
from mn.flow.errors import FlowDefinitionError

#: Chain and insertion point names: ``vm.create``, ``before-start``, ...
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

ROOT = "chain"
#: element -> (required attributes, optional attributes)
ELEMENTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "chain": (frozenset({"name"}), frozenset({"resumable"})),
    "step": (frozenset({"class"}), frozenset({"when", "unless", "rollback"})),
    "include": (frozenset({"chain"}), frozenset({"when", "unless"})),
    "insertion-point": (frozenset({"name"}), frozenset()),
    "done": (frozenset({"class"}), frozenset()),
    "error": (frozenset({"class"}), frozenset()),
    "finally": (frozenset({"class"}), frozenset()),
}


@dataclasses.dataclass
class _Element:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list["_Element"] = dataclasses.field(default_factory=list)


def _read_tree(path: Path) -> _Element:
    """The element tree of ``path`` with line numbers; text content is an error."""
    parser = expat.ParserCreate()
    stack: list[_Element] = []
    roots: list[_Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = _Element(tag, attrs, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if data.strip():
            raise FlowDefinitionError(f"unexpected text {data.strip()[:40]!r}: chains hold only elements",
                                      where=f"{path}:{parser.CurrentLineNumber}")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        with open(path, "rb") as stream:
            parser.ParseFile(stream)
    except expat.ExpatError as exc:
        raise FlowDefinitionError(f"malformed XML: {expat.ErrorString(exc.code)} (column {exc.offset + 1})",
                                  where=f"{path}:{exc.lineno}") from None
    except OSError as exc:
        raise FlowDefinitionError(f"cannot read: {exc.strerror}", where=str(path)) from None
    return roots[0]


def parse_chain_file(path: Path) -> ChainDecl:
    """Parse and check one file; raise FlowDefinitionError naming ``file:line``."""
    root = _read_tree(path)
    at = lambda element: f"{path}:{element.line}"  # noqa: E731
    if root.tag != ROOT:
        raise FlowDefinitionError(f"the root element must be <{ROOT}>, not <{root.tag}>", where=at(root))
    _check_attributes(root, at(root))
    name = _name(root, "name", at(root))
    resumable = _boolean(root, "resumable", False, at(root))

    elements: list[StepDecl | IncludeDecl | PointDecl] = []
    handlers: list[HandlerDecl] = []
    points: dict[str, str] = {}
    for child in root.children:
        where = at(child)
        if child.tag not in ELEMENTS or child.tag == ROOT:
            allowed = ", ".join(f"<{tag}>" for tag in ELEMENTS if tag != ROOT)
            raise FlowDefinitionError(f"unknown element <{child.tag}> in <{ROOT}>; allowed: {allowed}",
                                      where=where)
        _check_attributes(child, where)
        if child.children:
            raise FlowDefinitionError(f"<{child.tag}> cannot contain <{child.children[0].tag}>",
                                      where=f"{path}:{child.children[0].line}")
        if child.tag == "step":
            cls = _class(child, where, check_flow_class)
            rollback = _boolean(child, "rollback", True, where)
            if rollback and "rollback" in child.attrs and not cls.rollbackable:
                raise FlowDefinitionError(f"rollback=\"true\" but {child.attrs['class']!r} declares "
                                          f"that it cannot be rolled back", where=where)
            elements.append(StepDecl(cls=cls, where=where, when=_key(child, "when", where),
                                     unless=_key(child, "unless", where), rollback=rollback))
        elif child.tag == "include":
            elements.append(IncludeDecl(chain=_name(child, "chain", where), where=where,
                                        when=_key(child, "when", where),
                                        unless=_key(child, "unless", where)))
        elif child.tag == "insertion-point":
            point = _name(child, "name", where)
            if point in points:
                raise FlowDefinitionError(f"insertion point {point!r} is already declared at "
                                          f"{points[point]}", where=where)
            points[point] = where
            elements.append(PointDecl(name=point, where=where))
        else:
            handlers.append(HandlerDecl(kind=child.tag, cls=_class(child, where, check_handler_class),
                                        where=where))
    return ChainDecl(name=name, where=at(root), resumable=resumable, elements=tuple(elements),
                     handlers=tuple(handlers))


def _check_attributes(element: _Element, where: str) -> None:
    required, optional = ELEMENTS[element.tag]
    for attr in element.attrs:
        if attr not in required and attr not in optional:
            allowed = ", ".join(sorted(required | optional)) or "none"
            raise FlowDefinitionError(f"unknown attribute {attr!r} on <{element.tag}>; allowed: {allowed}",
                                      where=where)
    for attr in sorted(required):
        if not element.attrs.get(attr, "").strip():
            raise FlowDefinitionError(f"<{element.tag}> needs a {attr!r} attribute", where=where)


def _name(element: _Element, attr: str, where: str) -> str:
    value = element.attrs[attr].strip()
    if not NAME_PATTERN.match(value):
        raise FlowDefinitionError(f"{attr}={value!r} is not a valid name (letters, digits, '.', '_', '-')",
                                  where=where)
    return value


def _key(element: _Element, attr: str, where: str) -> str | None:
    if attr not in element.attrs:
        return None
    value = element.attrs[attr].strip()
    if not value:
        raise FlowDefinitionError(f"{attr}= needs the name of a data key", where=where)
    return value


def _boolean(element: _Element, attr: str, default: bool, where: str) -> bool:
    if attr not in element.attrs:
        return default
    value = element.attrs[attr].strip()
    if value not in ("true", "false"):
        raise FlowDefinitionError(f"{attr}={value!r} must be \"true\" or \"false\"", where=where)
    return value == "true"


def _class(element: _Element, where: str, check) -> type:
    spec = element.attrs["class"].strip()
    try:
        cls = import_class(spec)
        check(cls, spec)
    except ValueError as exc:
        raise FlowDefinitionError(str(exc), where=where) from None
    return cls
