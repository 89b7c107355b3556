"""Turning API responses into ZStack's JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from mn.api.message import APIMessage, APIQueryReply, APIResponse
from mn.web.json import dumps


def plain(value: Any) -> Any:
    """JSON-ready data with ZStack's date format (what clients will see)."""
    return json.loads(dumps(value))


def full_body(response: APIResponse) -> dict[str, Any]:
    """Every field of the response as plain JSON data: what the legacy RPC
    shows under its class name and what an API job stores."""
    return plain(response.model_dump())


def rest_body(api: type[APIMessage], full: dict[str, Any]) -> dict[str, Any]:
    """The REST v1 body of a successful response (ZStack's @RestResponse),
    from ``full_body`` or from ``model_dump()`` (mn.web.json formats dates)."""
    rest = api.REST
    if issubclass(api.RESPONSE, APIQueryReply) or (rest and rest.all_to == "inventories"):
        body = {"inventories": full.get("inventories", [])}
        if full.get("total") is not None:
            body["total"] = full["total"]
        return body
    if rest is None:
        return {}
    if rest.all_to:
        return {rest.all_to: full.get(rest.all_to)}
    body = {}
    for spec in rest.fields:  # ZStack's fieldsTo: "name" or "key=field"
        key, _, field = spec.partition("=")
        body[key] = full.get(field or key)
    return body
