"""The falcon ASGI application of one MN.

The MN lives in the application's lifespan: it starts before the first
request is served and stops after the last, in the server's event loop, so
HTTP handlers and the MN core share one loop.
"""

from __future__ import annotations

import logging

import falcon.asgi

from mn.api import legacy, rest
from mn.api.openapi import OpenApiDocument
from mn.node import ManagementNode
from mn.web import errors
from mn.web.resources import CALLBACK_PATH, SEND_COMMAND_PATH, AgentCallback, AgentCommand

log = logging.getLogger(__name__)


class NodeLifespan:
    """falcon middleware that starts and stops the MN with the server."""

    def __init__(self, node: ManagementNode):
        self.node = node

    async def process_startup(self, scope, event) -> None:
        try:
            await self.node.start()
        except Exception:
            log.exception("management node failed to start")
            await self.node.stop()
            raise

    async def process_shutdown(self, scope, event) -> None:
        await self.node.stop()


def create_app(node: ManagementNode) -> falcon.asgi.App:
    """The API of ``node``; serving it starts and stops the node."""
    app = falcon.asgi.App(middleware=[NodeLifespan(node)])
    errors.install(app)
    rest.add_routes(app, node.api)
    legacy.add_routes(app, node.api)
    app.add_route("/zstack/v1/openapi.json", OpenApiDocument())
    app.add_route(CALLBACK_PATH, AgentCallback(node))
    app.add_route(SEND_COMMAND_PATH, AgentCommand(node))
    return app
