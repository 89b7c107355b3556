"""Results as tables (for people) or JSON (for scripts), errors as ZStack's.

``{"inventories": [...]}`` is a table, one column per field present (in the
order of ``fields=`` when given); ``{"inventory": {...}}`` and other bodies
are one ``field: value`` line per field. Nested values are compact JSON,
cut to :data:`NESTED_WIDTH` in tables (``--json`` shows everything).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

#: Widest a nested value (a list of NICs, a dict) may make a table column.
NESTED_WIDTH = 60


def render(body: dict[str, Any], *, as_json: bool = False, fields: list[str] | None = None) -> str:
    """The text to print for a successful call ("" for an empty result)."""
    if as_json:
        return json.dumps(body, indent=2, ensure_ascii=False)
    if isinstance(body.get("inventories"), list):
        lines = []
        if body["inventories"]:
            lines.append(format_table(body["inventories"], fields))
        if body.get("total") is not None:
            lines.append(f"total: {body['total']}")
        return "\n".join(lines)
    if set(body) == {"inventory"}:
        inventory = body["inventory"]
        return format_record(inventory) if isinstance(inventory, dict) else cell(inventory)
    return format_record(body)


def columns_of(rows: Iterable[dict[str, Any]], fields: list[str] | None = None) -> list[str]:
    """``fields`` first (those present), then every other key in order of first appearance."""
    rows = list(rows)
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row))
    ordered = [f for f in fields or () if f in present]
    return ordered + [c for c in present if c not in ordered]


def format_table(rows: list[dict[str, Any]], fields: list[str] | None = None) -> str:
    columns = columns_of(rows, fields)
    cells = [[cell(row.get(c), NESTED_WIDTH) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(v) for v in cells)])


def format_record(record: dict[str, Any]) -> str:
    if not record:
        return ""
    width = max(len(k) for k in record)
    return "\n".join(f"{k.ljust(width)} : {cell(v)}".rstrip() for k, v in record.items())


def cell(value: Any, nested_width: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if nested_width is not None and len(text) > nested_width:
            text = text[:nested_width - 3] + "..."
        return text
    return str(value).replace("\r", "\\r").replace("\n", "\\n")


def format_error(error: dict[str, Any]) -> str:
    """ZStack's error (code, description, details) and its causes, one per line."""
    lines, depth = [], 0
    while isinstance(error, dict) and depth < 10:
        indent = "  " * depth
        head = "Error" if depth == 0 else "caused by"
        lines.append(f"{indent}{head}: {error.get('code') or '?'} {error.get('description') or ''}".rstrip())
        for key in ("details", "elaboration"):
            if error.get(key):
                lines.append(f"{indent}  {key}: {error[key]}")
        error, depth = error.get("cause"), depth + 1
    return "\n".join(lines)
