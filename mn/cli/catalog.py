"""The APIs one MN offers, read from its OpenAPI document.

``/zstack/v1/openapi.json`` describes every API as the MN defines it, in its
top-level ``x-zstack-apis`` map (by API name) or in an ``x-zstack`` object on
the API's operation::

    {"name": "ChangeZoneState", "fullName": "org.zstack.header.zone.APIChangeZoneStateMsg",
     "method": "PUT", "path": "/zones/{uuid}/actions", "isAction": true,
     "actionName": "changeZoneState", "parameterName": "params", "query": false,
     "sync": false, "public": false, "pathParams": ["uuid"],
     "params": {<JSON schema of each parameter>}, "required": ["stateEvent"]}

which is all the CLI needs to turn ``ChangeZoneState uuid=... stateEvent=disable``
into an HTTP request.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from mn.cli.home import CliHome

#: Where the document describes the APIs: a top-level map by API name, or
#: an object on each operation.
APIS_KEY = "x-zstack-apis"
OPERATION_KEY = "x-zstack"
#: Bump when the cached form changes, so old caches are fetched again.
CACHE_FORMAT = 1


class CatalogError(Exception):
    """The OpenAPI document lacks what the CLI needs."""


@dataclasses.dataclass(frozen=True)
class ApiSpec:
    """One API as the CLI calls it."""

    name: str
    full_name: str
    method: str
    path: str
    is_action: bool = False
    action_name: str = ""
    parameter_name: str = "params"
    query: bool = False
    sync: bool = False
    public: bool = False
    path_params: tuple[str, ...] = ()
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    required: tuple[str, ...] = ()

    @classmethod
    def from_x_zstack(cls, x: dict[str, Any], operation_id: str | None = None) -> "ApiSpec":
        name = x.get("name") or operation_id
        if not name or not x.get("path") or not x.get("method"):
            raise CatalogError(f"an x-zstack description lacks its name, path or method: {x!r}")
        return cls(
            name=name,
            full_name=x.get("fullName") or "",
            method=x["method"].upper(),
            path=x["path"],
            is_action=bool(x.get("isAction")),
            action_name=x.get("actionName") or name[0].lower() + name[1:],
            parameter_name=x.get("parameterName") or "params",
            query=bool(x.get("query")),
            sync=bool(x.get("sync")),
            public=bool(x.get("public")),
            path_params=tuple(x.get("pathParams") or ()),
            params=dict(x.get("params") or {}),
            required=tuple(x.get("required") or ()),
        )

    def to_x_zstack(self) -> dict[str, Any]:
        return {"name": self.name, "fullName": self.full_name, "method": self.method,
                "path": self.path, "isAction": self.is_action, "actionName": self.action_name,
                "parameterName": self.parameter_name, "query": self.query, "sync": self.sync,
                "public": self.public, "pathParams": list(self.path_params),
                "params": self.params, "required": list(self.required)}


class Catalog:
    """APIs by name, plus the shared schemas their parameters may ``$ref``."""

    def __init__(self, apis: dict[str, ApiSpec], schemas: dict[str, Any] | None = None):
        self.apis = apis
        self.schemas = schemas or {}

    @classmethod
    def from_openapi(cls, doc: dict[str, Any]) -> "Catalog":
        """APIs from the document's ``x-zstack-apis`` map (name -> description)
        and from any operation's own ``x-zstack`` object."""
        if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
            raise CatalogError("the document has no paths")
        apis: dict[str, ApiSpec] = {}

        def add(spec: ApiSpec) -> None:
            known = apis.get(spec.name)
            # A query served on /zones and /zones/{uuid}: call the one that
            # needs the fewest path variables.
            if known is None or len(spec.path_params) < len(known.path_params):
                apis[spec.name] = spec

        for name, x in (doc.get(APIS_KEY) or {}).items():
            if isinstance(x, dict):
                add(ApiSpec.from_x_zstack(x, name))
        for path_item in doc["paths"].values():
            for operation in path_item.values() if isinstance(path_item, dict) else ():
                if isinstance(operation, dict) and isinstance(operation.get(OPERATION_KEY), dict):
                    add(ApiSpec.from_x_zstack(operation[OPERATION_KEY], operation.get("operationId")))
        schemas = (doc.get("components") or {}).get("schemas") or {}
        return cls(apis, {**(doc.get("$defs") or {}), **schemas})

    def to_cache(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "fetchedAt": time.time(),
                "apis": [spec.to_x_zstack() for spec in self.apis.values()],
                "schemas": self.schemas}

    @classmethod
    def from_cache(cls, data: Any) -> "Catalog | None":
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            return None
        try:
            specs = [ApiSpec.from_x_zstack(x) for x in data.get("apis") or ()]
        except (CatalogError, TypeError, AttributeError):
            return None  # written by another version: fetch again
        return cls({spec.name: spec for spec in specs}, data.get("schemas") or {})

    def find(self, name: str) -> ApiSpec | None:
        """By ZStack name: ``CreateZone``, also ``APICreateZoneMsg`` or any letter case."""
        if name in self.apis:
            return self.apis[name]
        short = name.removeprefix("API").removesuffix("Msg")
        if short in self.apis:
            return self.apis[short]
        folded = [spec for key, spec in self.apis.items() if key.lower() in (name.lower(), short.lower())]
        return folded[0] if len(folded) == 1 else None

    def names(self) -> list[str]:
        return sorted(self.apis)

    def resolve(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        """``schema`` with ``$ref`` followed (to components/schemas or $defs)."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 16:
            target = self.schemas.get(schema["$ref"].rsplit("/", 1)[-1])
            if target is None:
                return {}
            schema, seen = target, seen + 1
        return schema if isinstance(schema, dict) else {}


def load_catalog(home: CliHome, server: str, fetch: Callable[[], dict[str, Any]], *,
                 refresh: bool = False) -> Catalog:
    """The catalogue of ``server``: from the cache unless ``refresh`` or none
    is cached; a fetched one replaces the cache."""
    if not refresh:
        cached = Catalog.from_cache(home.cached_catalog(server))
        if cached is not None:
            return cached
    catalog = Catalog.from_openapi(fetch())
    home.save_catalog(server, catalog.to_cache())
    return catalog
