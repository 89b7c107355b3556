"""Commands to KVM agents, and their answers through HTTP callbacks.

An asynchronous command (:meth:`AgentClient.call`) is POSTed with headers
``taskuuid`` and ``callbackurl``; the agent answers at once and POSTs the
result to this MN's ``/zstack/asyncrest/callback`` later. The wait is a
future in :class:`mn.callbacks.CallbackWaiters` (no thread), registered
before the POST so that a fast agent's callback cannot arrive first. No
callback within the timeout fails the command with SYS.1001: the operation
fails and its flow rolls back. Short commands that need no callback
(``/host/ping``, ``/host/echo``) use :meth:`AgentClient.call_sync`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from plugins.kvm.config import AGENT_COMMAND_TIMEOUT

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: Seconds the agent has to accept an asynchronous command (it answers at once).
ACCEPT_TIMEOUT = 30.0


def agent_failed(host_ip: str, path: str, why: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR, f"the kvm agent on {host_ip} failed {path}: {why}")


class AgentClient:
    """Sends commands to the KVM agents of one MN."""

    def __init__(self, node: "ManagementNode"):
        self.node = node
        self._http: httpx.AsyncClient | None = None

    @property
    def port(self) -> int:
        return self.node.settings.kvm_agent_port

    def url(self, host_ip: str, path: str) -> str:
        return f"http://{host_ip}:{self.port}{path}"

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # No proxy from the environment: agents are on the hosts' own network.
            self._http = httpx.AsyncClient(trust_env=False,
                                           limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def call(self, host_ip: str, path: str, cmd: dict[str, Any], *, timeout: float | None = None) -> dict:
        """Run ``path`` on the agent and wait for its callback; the agent's response.

        Raises OperationError: SYS.1001 when no callback comes within
        ``timeout`` (default ``kvm/agent.command.timeout``), SYS.1006 when the
        agent cannot be reached or reports a failure.
        """
        timeout = float(timeout if timeout is not None else AGENT_COMMAND_TIMEOUT.value)
        task_uuid = new_uuid()
        answer = self.node.callbacks.expect(task_uuid, timeout)
        headers = {"taskuuid": task_uuid, "callbackurl": self.node.settings.callback_url}
        try:
            response = await self._client().post(self.url(host_ip, path), json=cmd, headers=headers,
                                                  timeout=min(ACCEPT_TIMEOUT, timeout))
            response.raise_for_status()
        except httpx.HTTPError as exc:
            answer.cancel()
            raise agent_failed(host_ip, path, f"unable to reach the agent: {_describe(exc)}") from None
        try:
            result = await answer
        except OperationError as exc:
            if exc.error.code == SysErrors.TIMEOUT.value:
                raise OperationError.of(SysErrors.TIMEOUT,
                                        f"the kvm agent on {host_ip} did not answer {path} "
                                        f"within {timeout:g}s") from None
            raise
        return _checked(host_ip, path, result)

    async def call_sync(self, host_ip: str, path: str, cmd: dict[str, Any] | None = None, *,
                        timeout: float = 10.0) -> dict:
        """Run ``path`` and take the answer from the HTTP response itself."""
        try:
            response = await self._client().post(self.url(host_ip, path), json=cmd or {}, timeout=timeout)
            response.raise_for_status()
            result = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise agent_failed(host_ip, path, f"unable to reach the agent: {_describe(exc)}") from None
        return _checked(host_ip, path, result)


def _checked(host_ip: str, path: str, result: Any) -> dict:
    if not isinstance(result, dict):
        raise agent_failed(host_ip, path, f"unexpected answer {result!r}")
    if result.get("success") is False:
        raise agent_failed(host_ip, path, result.get("error") or "no reason given")
    return result


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
