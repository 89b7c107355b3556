"""The OpenAPI 3 document, generated from the API definitions.

The same ``APIMessage`` classes that the REST routes, the validation and the
legacy endpoint use are the source here: a parameter added to a message
appears in the document, and what the document allows the API accepts.

OpenAPI has one operation per path and method, while ZStack puts several
actions on one ``PUT .../actions``; that operation's body is a ``oneOf`` of
the actions. Per-API metadata for tools (the CLI) is in the top-level
``x-zstack-apis`` map, keyed by API name.
"""

from __future__ import annotations

import collections
from typing import Any

from pydantic.json_schema import models_json_schema

from mn import __version__
from mn.api.message import API_BY_NAME, APIMessage, APIQueryMessage, ref_of
from mn.api.rest import API_PREFIX, JOB_PATH
from mn.ids import UUID_PATTERN

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "description": {"type": "string"},
                "details": {"type": ["string", "null"]},
                "elaboration": {"type": ["string", "null"]},
                "cause": {"type": ["object", "null"]},
            },
            "required": ["code"],
        }
    },
    "required": ["error"],
}
JOB_ACCEPTED = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
QUERY_PARAMETERS = [
    {"name": "q", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
     "style": "form", "explode": True,
     "description": "condition: <field><op><value>, op one of = != > >= < <= ?= !?= ~= !~=, "
                    "or '<field> is null' / '<field> not null'"},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "start", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "count", "in": "query", "schema": {"type": "boolean"}},
    {"name": "replyWithCount", "in": "query", "schema": {"type": "boolean"}},
    {"name": "sort", "in": "query", "schema": {"type": "string"}, "description": "+field or -field"},
    {"name": "fields", "in": "query", "schema": {"type": "string"}, "description": "comma-separated"},
    {"name": "groupBy", "in": "query", "schema": {"type": "string"}},
]


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


UUID_SCHEMA = {"type": "string", "pattern": UUID_PATTERN.pattern}


def _is_uuid_name(name: str) -> bool:
    return name == "uuid" or name.endswith("Uuid")


def _with_uuid_patterns(api: type[APIMessage], properties: dict[str, Any]) -> dict[str, Any]:
    """Fields naming resources (Ref) take uuids: say so, as the API checks it."""
    patched = dict(properties)
    for name, field in api.model_fields.items():
        if name in patched and ref_of(field) is not None:
            schema = patched[name]
            if schema.get("type") == "array":
                patched[name] = {**schema, "items": UUID_SCHEMA}
            elif "anyOf" in schema:
                patched[name] = {"anyOf": [UUID_SCHEMA, {"type": "null"}]}
            else:
                patched[name] = {**schema, **UUID_SCHEMA}
    return patched


def _params_schema(api: type[APIMessage], schemas: dict[str, Any], path_vars: list[str]) -> dict:
    full = schemas[api.__name__]
    excluded = {"session", "systemTags", "userTags", *path_vars}
    properties = _with_uuid_patterns(api, {k: v for k, v in full.get("properties", {}).items()
                                           if k not in excluded})
    required = [k for k in full.get("required", []) if k not in excluded]
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _request_body(api: type[APIMessage], params: dict) -> dict:
    tags = {"type": "array", "items": {"type": "string"}}
    key = api.action_name() if api.REST.is_action else api.REST.parameter_name
    body = {"type": "object", "properties": {key: params, "systemTags": tags, "userTags": tags},
            "additionalProperties": False}
    if params.get("required") or api.REST.is_action:
        body["required"] = [key]
    return body


def _get_parameters(api: type[APIMessage], params: dict) -> list[dict]:
    if issubclass(api, APIQueryMessage):
        return list(QUERY_PARAMETERS)
    required = set(params.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in params["properties"].items()]


def build_openapi() -> dict[str, Any]:
    apis = sorted((a for a in API_BY_NAME.values() if a.REST is not None), key=lambda a: a.api_name())
    _, defs = models_json_schema([(a, "validation") for a in apis] + [(a.RESPONSE, "serialization") for a in apis],
                                 ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    by_path: dict[tuple[str, str], list[type[APIMessage]]] = collections.defaultdict(list)
    for api in apis:
        for path in api.REST.paths:
            by_path[(path, api.REST.method)].append(api)

    paths: dict[str, dict] = collections.defaultdict(dict)
    registry: dict[str, dict] = {}
    for (path, method), group in sorted(by_path.items()):
        path_vars = _path_params(path)
        operation: dict[str, Any] = {
            "operationId": "_or_".join(a.api_name() for a in group) + ("" if path == group[0].REST.path else "ByPath"),
            "summary": ", ".join(a.api_name() for a in group),
            "tags": [group[0].SERVICE or "api"],
            "parameters": [{"name": v, "in": "path", "required": True,
                            "schema": UUID_SCHEMA if _is_uuid_name(v) else {"type": "string"}}
                           for v in path_vars],
            "responses": {
                "400": {"description": "invalid input",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "401": {"description": "not authenticated",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "403": {"description": "not allowed",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "404": {"description": "not found",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "409": {"description": "refused in the resource's current state",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "503": {"description": "failed while running",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            },
        }
        if not all(a.PUBLIC for a in group):
            operation["security"] = [{"OAuth": []}, {"AccessKey": []}]
        bodies = []
        for api in group:
            params = _params_schema(api, schemas, path_vars)
            if method in ("GET", "DELETE"):
                operation["parameters"] += _get_parameters(api, params)
            else:
                bodies.append(_request_body(api, params))
            registry[api.api_name()] = {
                "name": api.api_name(), "fullName": api.FULL_NAME, "method": method,
                "path": api.REST.path, "isAction": api.REST.is_action, "actionName": api.action_name(),
                "parameterName": api.REST.parameter_name, "query": issubclass(api, APIQueryMessage),
                "sync": api.SYNC, "public": api.PUBLIC, "pathParams": _path_params(api.REST.path),
                "params": params["properties"], "required": params.get("required", []),
                "responseFullName": api.RESPONSE.FULL_NAME,
            }
        if bodies:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": bodies[0] if len(bodies) == 1 else {"oneOf": bodies}}}}
        if all(a.SYNC for a in group):
            operation["responses"]["200"] = {"description": "the result", "content": {"application/json": {
                "schema": {"type": "object"}}}}
        else:
            operation["responses"]["202"] = {"description": "accepted: poll the location",
                                             "content": {"application/json": {"schema": JOB_ACCEPTED}}}
        paths[API_PREFIX + path][method.lower()] = operation

    paths[JOB_PATH]["get"] = {
        "operationId": "GetApiJob", "summary": "Poll an API job",
        "parameters": [{"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the job's result",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "202": {"description": "still running",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "404": {"description": "unknown or expired",
                              "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                      "503": {"description": "the job failed",
                              "content": {"application/json": {"schema": ERROR_SCHEMA}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ZStack-compatible management node API", "version": __version__},
        "paths": dict(paths),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "OAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "OAuth <session uuid> from LogInByAccount"},
                "AccessKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                              "description": "ZStack <AccessKeyId>:<signature>, with a Date header"},
            },
        },
        "x-zstack-apis": registry,
    }


class OpenApiDocument:
    """``GET /zstack/v1/openapi.json`` (built once: the APIs do not change at run time)."""

    def __init__(self):
        self._body: str | None = None

    async def on_get(self, req, resp) -> None:
        import json

        import falcon

        if self._body is None:
            self._body = json.dumps(build_openapi())
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self._body
