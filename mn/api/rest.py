"""REST v1: falcon routes generated from the API definitions.

Every path of every API's ``Rest`` spec becomes one falcon route; one route
serves all the APIs that share its path, picking by method and, for PUT
actions, by the body's single key (``{"changeZoneState": {...}}``), as
ZStack's RestServer does.
"""

from __future__ import annotations

import collections
import json
from typing import Any
from urllib.parse import parse_qs

import falcon

from mn.api.dispatch import ApiDispatcher, invalid
from mn.api.message import API_BY_NAME, APIMessage, APIQueryMessage
from mn.api.query_parse import parse_rest_query
from mn.api.render import rest_body
from mn.db.models.api_job import JOB_PROCESSING, JOB_SUCCEEDED
from mn.web.json import dumps

API_PREFIX = "/zstack/v1"
JOB_PATH = API_PREFIX + "/api-jobs/{uuid}"


def _json(resp, status: str, body: Any) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = dumps(body)


def query_params(req) -> dict[str, list[str]]:
    """The query string as name -> values, keeping order and blanks."""
    return parse_qs(req.query_string, keep_blank_values=True)


def single_values(api: type[APIMessage], params: dict[str, list[str]]) -> dict[str, Any]:
    """GET/DELETE parameters of a non-query API: a list field keeps its list
    (even of one), any other field takes its single value."""
    values = {}
    for name, given in params.items():
        field = api.model_fields.get(name)
        is_list = field is not None and "list" in str(field.annotation)
        values[name] = given if is_list or len(given) > 1 else given[0]
    return values


async def read_body(req) -> dict:
    raw = await req.stream.read()
    if not raw or not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


class ApiRoute:
    """All APIs of one path template."""

    def __init__(self, dispatcher: ApiDispatcher, template: str):
        self.dispatcher = dispatcher
        self.template = template
        self.apis: dict[str, list[type[APIMessage]]] = collections.defaultdict(list)
        #: per API: route variable name -> the API's own name for it
        self.renames: dict[type[APIMessage], dict[str, str]] = {}

    async def on_get(self, req, resp, **path_vars):
        await self._handle(req, resp, "GET", path_vars)

    async def on_post(self, req, resp, **path_vars):
        await self._handle(req, resp, "POST", path_vars)

    async def on_put(self, req, resp, **path_vars):
        await self._handle(req, resp, "PUT", path_vars)

    async def on_delete(self, req, resp, **path_vars):
        await self._handle(req, resp, "DELETE", path_vars)

    def _pick(self, method: str, body: dict) -> tuple[type[APIMessage], Any]:
        candidates = self.apis.get(method)
        if not candidates:
            raise falcon.HTTPMethodNotAllowed(list(self.apis),
                                              description=f"{method} is not allowed for {self.template}")
        if method == "PUT":
            for api in candidates:
                if api.REST.is_action and api.action_name() in body:
                    return api, body[api.action_name()]
            for api in candidates:
                if not api.REST.is_action:
                    return api, body.get(api.REST.parameter_name)
            names = ", ".join(sorted(a.action_name() for a in candidates))
            raise invalid(f"the body doesn't contain an action of {API_PREFIX}{self.template}: "
                          f"expected one of {names}")
        return candidates[0], body.get(candidates[0].REST.parameter_name)

    async def _handle(self, req, resp, method: str, path_vars: dict[str, str]) -> None:
        body = await read_body(req) if method in ("POST", "PUT") else {}
        api, params = self._pick(method, body)
        rename = self.renames.get(api, {})
        path_vars = {rename.get(name, name): value for name, value in path_vars.items()}
        dispatcher = self.dispatcher
        session = await dispatcher.authenticate(
            api, authorization=req.get_header("Authorization"), date=req.get_header("Date"),
            method=method, path=req.path)
        if issubclass(api, APIQueryMessage):
            msg = parse_rest_query(api, query_params(req), path_vars.get("uuid"))
            await dispatcher.check(msg, session)
            reply = await dispatcher.execute(msg)
            _json(resp, falcon.HTTP_200, rest_body(api, reply.model_dump()))
            return
        if method in ("GET", "DELETE"):
            params = single_values(api, query_params(req))
        msg = dispatcher.build(api, params, path_vars, body.get("systemTags"), body.get("userTags"))
        await dispatcher.check(msg, session)
        if api.SYNC:
            reply = await dispatcher.execute(msg)
            _json(resp, falcon.HTTP_200, rest_body(api, reply.model_dump()))
            return
        job = await dispatcher.submit(msg, job_uuid=req.get_header("X-Job-UUID"),
                                      webhook=req.get_header("X-Web-Hook"))
        _json(resp, falcon.HTTP_202, {"location": f"{req.prefix}{JOB_PATH.format(uuid=job)}"})


class ApiJobs:
    """``GET /zstack/v1/api-jobs/{uuid}``: 202 while running, then 200 or 503."""

    def __init__(self, dispatcher: ApiDispatcher):
        self.dispatcher = dispatcher

    async def on_get(self, req, resp, uuid: str) -> None:
        job = await self.dispatcher.jobs.get(uuid)
        if job is None:
            raise falcon.HTTPNotFound(description=f"job {uuid} does not exist or has expired")
        if job.state == JOB_PROCESSING:
            _json(resp, falcon.HTTP_202, {})
        elif job.state == JOB_SUCCEEDED:
            api = API_BY_NAME.get(job.api_name.removeprefix("API").removesuffix("Msg"))
            _json(resp, falcon.HTTP_200, rest_body(api, job.body) if api else job.body)
        else:
            _json(resp, falcon.HTTP_503, {"error": job.error})


def normalize(path: str, canonical: dict[tuple, str]) -> tuple[str, dict[str, str]]:
    """``path`` with each variable named as the first path seen at that place.

    ZStack names one place differently in different APIs
    (``/clusters/{uuid}`` and ``/clusters/{clusterUuid}/primary-storage/...``);
    falcon needs one name per place. Returns the route template and the map
    from its variable names back to this path's own.
    """
    prefix: tuple = ()
    parts, rename = [], {}
    for part in path.strip("/").split("/"):
        if part.startswith("{") and part.endswith("}"):
            own = part[1:-1]
            name = canonical.setdefault(prefix, own)
            rename[name] = own
            parts.append("{" + name + "}")
            prefix += ("{}",)
        else:
            parts.append(part)
            prefix += (part,)
    return "/" + "/".join(parts), rename


def add_routes(app: falcon.asgi.App, dispatcher: ApiDispatcher) -> None:
    routes: dict[str, ApiRoute] = {}
    canonical: dict[tuple, str] = {}
    apis = sorted((a for a in API_BY_NAME.values() if a.REST is not None), key=lambda a: a.api_name())
    for api in apis:
        for path in api.REST.paths:
            template, rename = normalize(path, canonical)
            route = routes.setdefault(template, ApiRoute(dispatcher, template))
            if api not in route.apis[api.REST.method]:
                route.apis[api.REST.method].append(api)
            route.renames[api] = rename
    for template in sorted(routes):
        app.add_route(API_PREFIX + template, routes[template])
    app.add_route(JOB_PATH, ApiJobs(dispatcher))
