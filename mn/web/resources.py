"""HTTP resources outside the API definitions: the agent callback endpoint."""

from __future__ import annotations

import json
import logging

import falcon

from mn.callbacks import AgentCallbackArrivedEvent
from mn.errors import OperationError
from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: ZStack's agent callback path (RESTFacade's ``/asyncrest/callback``).
CALLBACK_PATH = "/zstack/asyncrest/callback"
#: Where agents send commands of their own (RESTFacade's ``/asyncrest/sendcommand``).
SEND_COMMAND_PATH = "/zstack/asyncrest/sendcommand"


async def _json_body(req, what: str):
    raw = await req.stream.read()
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise falcon.HTTPBadRequest(description=f"the {what} body is not JSON") from None


class AgentCallback:
    """``POST /zstack/asyncrest/callback``: an agent's result for a task."""

    def __init__(self, node: ManagementNode):
        self.node = node

    async def on_post(self, req, resp) -> None:
        task_uuid = req.get_header("taskuuid")
        if not task_uuid:
            raise falcon.HTTPBadRequest(description="the callback has no taskuuid header")
        body = await _json_body(req, "callback")
        if not self.node.callbacks.deliver(task_uuid, body):
            # Perhaps another MN waits: its agent could not reach it and came here.
            try:
                await self.node.bus.publish(AgentCallbackArrivedEvent(taskUuid=task_uuid, body=body))
                log.info("callback for task %s: nobody waits here, passed on to the other MNs", task_uuid)
            except Exception as exc:
                log.warning("callback for task %s: nobody waits here and it cannot be passed on: %s",
                            task_uuid, exc)
        resp.status = falcon.HTTP_200
        resp.content_type = falcon.MEDIA_JSON
        resp.text = "{}"


class AgentCommand:
    """``POST /zstack/asyncrest/sendcommand``: a command an agent sends on its
    own, named by its ``commandpath`` header (``/kvm/reportvmstate``)."""

    def __init__(self, node: ManagementNode):
        self.node = node

    async def on_post(self, req, resp) -> None:
        command_path = req.get_header("commandpath")
        if not command_path:
            raise falcon.HTTPBadRequest(description="the command has no commandpath header")
        body = await _json_body(req, "command")
        if not isinstance(body, dict):
            raise falcon.HTTPBadRequest(description="the command body is not a JSON object")
        try:
            answer = await self.node.agent_reports.handle(command_path, body)
        except OperationError as exc:
            raise falcon.HTTPNotFound(description=exc.error.details or exc.error.description) from None
        resp.status = falcon.HTTP_200
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps(answer)
