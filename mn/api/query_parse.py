"""Query strings of REST Query APIs -> APIQueryMessage (ZStack's RestServer.handleQueryApi).

``GET /zstack/v1/vm-instances?q=name=web&q=vmNics.ip=10.0.0.5&limit=10&start=0
&count=false&replyWithCount=true&sort=-createDate&fields=uuid,name&groupBy=state``

* ``q`` (repeatable): one condition each, ``<field><op><value>`` with the
  operators of :data:`REST_OPERATORS`, or ``<field> is null`` /
  ``<field> not null``. The field name is trimmed, the value is kept as
  sent (a space may matter). The operator is the one that starts earliest in
  the text, the longest one at that place (``!=`` rather than ``=``): on
  every condition whose field is a field name this is ZStack's choice, and a
  value containing an operator (``description=a<=b``) stays a value.
* ``limit``, ``start``: non-negative integers; ``count``, ``replyWithCount``:
  ``true`` / ``false``; ``sort``: ``+field`` (ascending, the default) or
  ``-field`` (a ``+`` sent unencoded arrives as a space, which is trimmed);
  ``fields``: comma-separated field names; ``groupBy``: column name(s).
* Anything else (and a single-valued parameter given twice, or ZStack's
  ``filterName``, which this node does not implement) is SYS.1007 with a
  message in ZStack's words ("Invalid query parameter. ...").

``GET /zstack/v1/vm-instances/{uuid}`` adds the condition ``uuid=<uuid>``;
unlike ZStack, the other parameters (``fields`` for one) still apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from mn.api.message import APIQueryMessage, QueryCondition
from mn.errors import OperationError, SysErrors

#: REST operators -> ZStack QueryOp, in ZStack's order: an operator that
#: contains another one comes before it.
REST_OPERATORS = {
    "!=": "!=",
    ">=": ">=",
    "<=": "<=",
    "!?=": "not in",
    "!~=": "not like",
    "~=": "like",
    "?=": "in",
    "=": "=",
    ">": ">",
    "<": "<",
    "is null": "is null",
    "not null": "is not null",
}

#: Query-string parameters of a Query API.
QUERY_PARAMETERS = ("q", "limit", "start", "count", "replyWithCount", "sort", "fields", "groupBy")

_DIGITS = re.compile(r"[0-9]+")
_INT_MAX = 2**31 - 1

# Longest first, so that at one position "!=" wins over "=".
_BY_LENGTH = sorted(REST_OPERATORS, key=len, reverse=True)


def parse_rest_query(msg_cls: type[APIQueryMessage], params: Mapping[str, Sequence[str] | str],
                     path_uuid: str | None = None) -> APIQueryMessage:
    """The query message of ``params``: each name -> its values (as ``parse_qs``
    gives them) or its one value (as falcon's ``req.params`` may)."""
    values: dict[str, list[str]] = {}
    for raw_name, raw in params.items():
        name = raw_name.strip()
        if name not in QUERY_PARAMETERS:
            raise invalid(f"Invalid query parameter. '{raw_name}' is not a parameter of a query; "
                          f"valid parameters are {list(QUERY_PARAMETERS)}")
        values.setdefault(name, []).extend([raw] if isinstance(raw, str) else raw)

    args: dict = {"conditions": [parse_condition(text) for text in values.pop("q", [])]}
    if path_uuid is not None:
        args["conditions"].append(QueryCondition(name="uuid", op="=", value=path_uuid))
    for name, given in values.items():
        if len(given) != 1:
            raise invalid(f"Invalid query parameter. '{name}' is given {len(given)} times; "
                          f"give it once")
        args.update(_PARSERS[name](given[0].strip()))
    try:
        return msg_cls(**args)
    except ValidationError as exc:
        raise invalid(f"Invalid query parameter. {exc}") from None


def invalid(details: str) -> OperationError:
    """SYS.1007 INVALID_ARGUMENT_ERROR with ``details`` (HTTP 400)."""
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def parse_condition(text: str) -> QueryCondition:
    """One ``q`` value: ``name=web``, ``vmNics.ip?=10.0.0.1,10.0.0.2``, ``description is null``."""
    found = _find_operator(text)
    if found is None:
        raise invalid(f"Invalid query parameter. The '{text}' in the parameter[q] doesn't contain "
                      f"any query operator. Valid query operators are {list(REST_OPERATORS)}")
    position, token = found
    name, rest = text[:position].strip(), text[position + len(token):]
    op = REST_OPERATORS[token]
    if not name:
        raise invalid(f"Invalid query parameter. The '{text}' in parameter[q] has no field name "
                      f"before '{token}'")
    if op in ("is null", "is not null"):
        if rest.strip():
            raise invalid(f"Invalid query parameter. The '{text}' in parameter[q] has text after "
                          f"'{token}'")
        return QueryCondition(name=name, op=op)
    return QueryCondition(name=name, op=op, value=rest)


def _find_operator(text: str) -> tuple[int, str] | None:
    for position in range(len(text)):
        for token in _BY_LENGTH:
            if text.startswith(token, position):
                return position, token
    return None


def _integer(name: str):
    def parse(value: str) -> dict:
        # Java's Integer bounds, as ZStack's Integer.valueOf.
        if not _DIGITS.fullmatch(value) or int(value) > _INT_MAX:
            raise invalid(f"Invalid query parameter. '{name}' must be an integer from 0 to "
                          f"{_INT_MAX}, got '{value}'")
        return {name: int(value)}
    return parse


def _boolean(name: str):
    def parse(value: str) -> dict:
        if value.lower() not in ("true", "false"):
            raise invalid(f"Invalid query parameter. '{name}' must be true or false, got '{value}'")
        return {name: value.lower() == "true"}
    return parse


def _sort(value: str) -> dict:
    direction = "desc" if value.startswith("-") else "asc"
    field = value.lstrip("+-").strip()
    if not field:
        raise invalid("Invalid query parameter. 'sort' must name a field, as '+name' or '-name'")
    return {"sortBy": field, "sortDirection": direction}


def _fields(value: str) -> dict:
    fields = [f.strip() for f in value.split(",") if f.strip()]
    if not fields:
        raise invalid("Invalid query parameter. 'fields' contains zero field")
    return {"fields": fields}


def _group_by(value: str) -> dict:
    if not value:
        raise invalid("Invalid query parameter. 'groupBy' must name a field")
    return {"groupBy": value}


_PARSERS = {
    "limit": _integer("limit"),
    "start": _integer("start"),
    "count": _boolean("count"),
    "replyWithCount": _boolean("replyWithCount"),
    "sort": _sort,
    "fields": _fields,
    "groupBy": _group_by,
}
