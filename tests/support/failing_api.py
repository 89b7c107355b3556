"""A test-only API that passes every check and fails while it runs.

Loaded into real MN processes (ZSTACK_SERVICES) to exercise the path of an
API job that fails at run time: the poll answers 503 with the error.
"""

from __future__ import annotations

from mn.api.message import APIEvent, APIMessage, Rest
from mn.errors import OperationError, SysErrors
from mn.service import Service, handles

SPEC = "tests.support.failing_api:FailingService"


class APITestFailingEvent(APIEvent):
    FULL_NAME = "org.zstack.test.APITestFailingEvent"


class APITestFailingMsg(APIMessage):
    FULL_NAME = "org.zstack.test.APITestFailingMsg"
    SERVICE = "test.failing"
    REST = Rest("POST", "/test/failing", all_to=None)
    RESPONSE = APITestFailingEvent
    reason: str


class FailingService(Service):
    SERVICE_ID = "test.failing"

    @handles(APITestFailingMsg)
    async def fail(self, msg: APITestFailingMsg) -> APITestFailingEvent:
        raise OperationError.of(SysErrors.OPERATION_ERROR, msg.reason)
