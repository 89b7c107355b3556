"""The legacy RPC endpoint older clients use (ZStack's ``/zstack/api``).

``POST /zstack/api`` (or ``/zstack/api/``) with ``{"<fully qualified API
class>": {..., "session": {"uuid": ...}}}`` answers ``{"uuid", "state",
"result"}``: ``state`` is "Done" with ``result`` a JSON *string* keyed by the
reply or event class (``{"org.zstack.header.zone.APICreateZoneEvent":
{"success": true, "inventory": {...}}}``), or "Processing" for an
asynchronous API still running; ``GET /zstack/api/result/<uuid>`` polls it.
Failures are results too (``"success": false`` with the error), as
ZStack's apibinding expects.
"""

from __future__ import annotations

import json

import falcon

from mn.api.dispatch import ApiDispatcher
from mn.api.message import API_BY_FULL_NAME, APIMessage, APIQueryMessage
from mn.api.render import full_body
from mn.api.rest import _json, read_body
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid

STATE_DONE, STATE_PROCESSING = "Done", "Processing"

#: ZStack's QueryOp names, as legacy clients send them, in the REST spelling.
LEGACY_QUERY_OPS = {"in": "?=", "not in": "!?=", "like": "~=", "not like": "!~=",
                    "is not null": "not null"}


def _done(uuid: str, full_name: str, body: dict) -> dict:
    return {"uuid": uuid, "state": STATE_DONE, "result": json.dumps({full_name: body})}


class LegacyApi:
    """``POST /zstack/api``."""

    def __init__(self, dispatcher: ApiDispatcher):
        self.dispatcher = dispatcher

    async def on_post(self, req, resp) -> None:
        body = await read_body(req)
        if len(body) != 1:
            raise falcon.HTTPBadRequest(description="the body must have exactly one key: the API class name")
        full_name, params = next(iter(body.items()))
        api = API_BY_FULL_NAME.get(full_name)
        if api is None:
            raise falcon.HTTPBadRequest(description=f"unknown API {full_name}")
        if not isinstance(params, dict):
            raise falcon.HTTPBadRequest(description=f"the parameters of {full_name} must be a JSON object")
        call_uuid = new_uuid()
        try:
            reply = await self._call(api, dict(params))
        except OperationError as exc:
            _json(resp, falcon.HTTP_200, _done(call_uuid, api.RESPONSE.FULL_NAME,
                                               full_body(api.RESPONSE.failure(exc.error))))
            return
        if isinstance(reply, str):  # a job uuid
            _json(resp, falcon.HTTP_200, {"uuid": reply, "state": STATE_PROCESSING})
        else:
            _json(resp, falcon.HTTP_200, _done(call_uuid, api.RESPONSE.FULL_NAME, full_body(reply)))

    async def _call(self, api: type[APIMessage], params: dict):
        dispatcher = self.dispatcher
        session_uuid = (params.pop("session", None) or {}).get("uuid")
        session = await dispatcher.session_of(api, session_uuid)
        for legacy_only in ("timeout", "id", "serviceId", "creatingAccountUuid"):
            params.pop(legacy_only, None)
        if issubclass(api, APIQueryMessage):
            for condition in params.get("conditions") or []:
                if isinstance(condition, dict) and condition.get("op") in LEGACY_QUERY_OPS:
                    condition["op"] = LEGACY_QUERY_OPS[condition["op"]]
        msg = dispatcher.build(api, params)
        await dispatcher.check(msg, session)
        if api.SYNC:
            return await dispatcher.execute(msg)
        return await dispatcher.submit(msg)


class LegacyResult:
    """``GET /zstack/api/result/<uuid>``."""

    def __init__(self, dispatcher: ApiDispatcher):
        self.dispatcher = dispatcher

    async def on_get(self, req, resp, uuid: str) -> None:
        job = await self.dispatcher.jobs.get(uuid)
        if job is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"no API result {uuid} (unknown or expired)")
        if not job.ended:
            _json(resp, falcon.HTTP_200, {"uuid": uuid, "state": STATE_PROCESSING})
        else:
            _json(resp, falcon.HTTP_200, _done(uuid, job.full_name, job.body))


def add_routes(app, dispatcher: ApiDispatcher) -> None:
    legacy = LegacyApi(dispatcher)
    app.add_route("/zstack/api", legacy)
    app.add_route("/zstack/api/", legacy)
    app.add_route("/zstack/api/result/{uuid}", LegacyResult(dispatcher))
