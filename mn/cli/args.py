"""From ``key=value`` arguments to the HTTP request of one API.

Non-query APIs: each argument is ``name=value``, typed by the parameter's
schema (integers, numbers, booleans; lists comma-separated, ``\\,`` for a
literal comma; a JSON object or list when the value starts with ``{`` or
``[``). Path variables (``uuid``) go into the URL; ``systemTags`` and
``userTags`` are top-level body keys. POSTs send ``{"params": {...}}``,
actions ``{"<actionName>": {...}}``, GET and DELETE a query string.

Query APIs: ``limit``, ``start``, ``count``, ``replyWithCount``, ``sort``
(``+name`` / ``-name``, or ``sortBy`` with ``sortDirection``), ``fields`` and
``groupBy`` are query options; every other argument is a condition
``name<op>value`` with op one of ``= != > >= < <= ?= (in) !?= (not in)
~= (like) !~= (not like)``; ``name=null`` / ``name!=null`` or the single
arguments ``"name is null"`` / ``"name not null"`` test for null. As in
ZStack's CLI, a like value without ``%`` or ``_`` matches anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from mn.cli.catalog import ApiSpec, Catalog

#: Condition operators, longest first so ``!~=`` is not read as ``!`` + ``~=``.
QUERY_OPS = ("!?=", "!~=", ">=", "<=", "!=", "?=", "~=", "=", ">", "<")
#: Query arguments that are options of the query, not conditions.
QUERY_OPTIONS = ("limit", "start", "count", "replyWithCount", "sort", "fields", "groupBy")
#: Parameters sent beside the API's parameters, not inside them.
TAG_PARAMS = ("systemTags", "userTags")
#: APIs whose ``password`` the MN expects as SHA-512 hex, as ZStack's clients send it.
HASHED_PASSWORD_APIS = frozenset({"LogInByAccount", "LogInByUser", "CreateAccount",
                                  "UpdateAccount", "CreateUser", "UpdateUser"})
NULL = "null"

_NULL_TEST = re.compile(r"^\s*(\S+)\s+(is null|not null)\s*$")


class ArgumentError(ValueError):
    """An argument the CLI cannot turn into a request (the message says which and why)."""


@dataclasses.dataclass
class HttpCall:
    """One request: ``path`` is relative to ``/zstack/v1``."""

    method: str
    path: str
    query: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    body: dict[str, Any] | None = None
    #: The ``fields=`` of a query, to show the columns in that order.
    fields: list[str] | None = None


def build_call(spec: ApiSpec, catalog: Catalog, arguments: list[str]) -> HttpCall:
    """The request that calls ``spec`` with ``arguments`` (``key=value`` strings)."""
    if spec.query:
        return _query_call(spec, arguments)
    return _api_call(spec, catalog, arguments)


# -- non-query APIs ---------------------------------------------------------------


def split_assignment(argument: str) -> tuple[str, str]:
    name, sep, value = argument.partition("=")
    if not sep or not name:
        raise ArgumentError(f"{argument!r} is not name=value")
    return name, value


def _api_call(spec: ApiSpec, catalog: Catalog, arguments: list[str]) -> HttpCall:
    params: dict[str, Any] = {}
    tags: dict[str, list[Any]] = {}
    for argument in arguments:
        name, raw = split_assignment(argument)
        if name in params or name in tags:
            raise ArgumentError(f"{name} is given twice")
        if name in TAG_PARAMS:
            tags[name] = typed_value(name, raw, {"type": "array", "items": {"type": "string"}}, catalog)
        else:
            params[name] = typed_value(name, raw, spec.params.get(name), catalog)
    if spec.name in HASHED_PASSWORD_APIS and isinstance(params.get("password"), str):
        params["password"] = hashlib.sha512(params["password"].encode()).hexdigest()
    path = fill_path(spec, params)
    for name in spec.path_params:
        params.pop(name, None)
    if spec.method in ("GET", "DELETE"):
        query = [(name, value) for name, value in {**params, **tags}.items()
                 for value in _query_values(value)]
        return HttpCall(spec.method, path, query=query)
    key = spec.action_name if spec.is_action else spec.parameter_name
    return HttpCall(spec.method, path, body={key: params, **tags})


def fill_path(spec: ApiSpec, params: dict[str, Any]) -> str:
    path = spec.path
    for name in spec.path_params:
        if name not in params or params[name] in (None, ""):
            raise ArgumentError(f"{spec.name} needs {name}=<value> (it is part of its URL {spec.path})")
        path = path.replace("{" + name + "}", quote(str(params[name]), safe=""))
    return path


def _query_values(value: Any) -> list[str]:
    """A GET/DELETE parameter as query-string values: a list repeats the name."""
    values = value if isinstance(value, list) else [value]
    return [_text(v) for v in values]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# -- typing values by schema -----------------------------------------------------------


def schema_kind(schema: dict[str, Any] | None, catalog: Catalog) -> dict[str, Any]:
    """The one non-null alternative of ``schema`` (``str | None`` -> string), refs followed."""
    schema = catalog.resolve(schema)
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = [catalog.resolve(s) for s in schema.get(combinator) or ()]
        options = [s for s in options if s.get("type") != "null"]
        if options:
            return schema_kind(options[0], catalog)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
        schema = {**schema, "type": kind}
    if kind is None and "enum" in schema:
        values = [v for v in schema["enum"] if v is not None]
        schema = {**schema, "type": _json_type(values[0]) if values else "string"}
    if kind is None and "const" in schema:
        schema = {**schema, "type": _json_type(schema["const"])}
    return schema


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def typed_value(name: str, raw: str, schema: dict[str, Any] | None, catalog: Catalog) -> Any:
    """``raw`` as the parameter's type. A string parameter stays a string even
    when it looks like JSON; an unknown one is sent as given (or as JSON)."""
    kind = schema_kind(schema, catalog)
    type_ = kind.get("type")
    if type_ == "string":
        return raw
    if raw[:1] in ("{", "[") and type_ in (None, "array", "object"):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ArgumentError(f"{name}: {raw!r} is not valid JSON ({exc})") from None
    if type_ == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ArgumentError(f"{name} must be an integer, not {raw!r}") from None
    if type_ == "number":
        try:
            return float(raw)
        except ValueError:
            raise ArgumentError(f"{name} must be a number, not {raw!r}") from None
    if type_ == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ArgumentError(f"{name} must be true or false, not {raw!r}")
        return raw.lower() == "true"
    if type_ == "array":
        if raw == "":
            return []
        return [typed_value(name, item, kind.get("items"), catalog) for item in split_list(raw)]
    if type_ == "object":
        raise ArgumentError(f"{name} must be a JSON object, e.g. {name}='{{\"key\": \"value\"}}'")
    return raw


def split_list(raw: str) -> list[str]:
    """``a,b\\,c`` -> ``["a", "b,c"]``."""
    items, current, chars = [], [], iter(raw)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


# -- queries -------------------------------------------------------------------------------


def _query_call(spec: ApiSpec, arguments: list[str]) -> HttpCall:
    conditions: list[str] = []
    options: dict[str, str] = {}
    sort_by, sort_direction = None, "asc"
    for argument in arguments:
        name, op, value = parse_condition(argument)
        if op == "=" and name in QUERY_OPTIONS:
            options[name] = value
        elif op == "=" and name == "sortBy":
            sort_by = value
        elif op == "=" and name == "sortDirection":
            if value not in ("asc", "desc"):
                raise ArgumentError(f"sortDirection must be asc or desc, not {value!r}")
            sort_direction = value
        else:
            conditions.append(condition_text(name, op, value))
    if sort_by is not None:
        if "sort" in options:
            raise ArgumentError("give either sort=+name|-name or sortBy= with sortDirection=, not both")
        options["sort"] = ("-" if sort_direction == "desc" else "+") + sort_by
    if "sort" in options and options["sort"][:1] not in ("+", "-"):
        options["sort"] = "+" + options["sort"]
    for flag in ("count", "replyWithCount"):
        if flag in options:
            if options[flag].lower() not in ("true", "false"):
                raise ArgumentError(f"{flag} must be true or false, not {options[flag]!r}")
            options[flag] = options[flag].lower()
    for number in ("limit", "start"):
        if number in options and not options[number].isdigit():
            raise ArgumentError(f"{number} must be a non-negative integer, not {options[number]!r}")
    fields = [f for f in options["fields"].split(",") if f] if options.get("fields") else None
    query = [("q", c) for c in conditions] + list(options.items())
    return HttpCall("GET", spec.path, query=query, fields=fields)


def parse_condition(argument: str) -> tuple[str, str, str | None]:
    """``name~=web%`` -> ``("name", "~=", "web%")``; the operator is the first
    one in the argument (longest at that place); the value may hold anything."""
    null_test = _NULL_TEST.match(argument)
    if null_test:
        return null_test.group(1), null_test.group(2), None
    for index, _ in enumerate(argument):
        op = next((op for op in QUERY_OPS if argument.startswith(op, index)), None)
        if op is not None:
            if index == 0:
                break
            return argument[:index], op, argument[index + len(op):]
    raise ArgumentError(f"{argument!r} is not a condition: expected name<op>value with op one of "
                        f"{' '.join(QUERY_OPS)}, or 'name is null' / 'name not null'")


def condition_text(name: str, op: str, value: str | None) -> str:
    """The ``q=`` value of ZStack's REST API."""
    if op in ("is null", "not null"):
        return f"{name} {op}"
    if value == NULL and op in ("=", "!="):
        return f"{name} {'is null' if op == '=' else 'not null'}"
    if op in ("~=", "!~=") and "%" not in value and "_" not in value:
        value = f"%{value}%"
    return f"{name}{op}{value}"
