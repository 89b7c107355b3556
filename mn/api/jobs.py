"""API jobs: how an asynchronous API call is accepted, run and polled.

``submit`` writes an ApiJobVO row (Processing, owned by this MN) and runs the
call in a task; the rendered result replaces the row's state when it ends,
whichever way it ends. Any MN answers a poll from the row; the MN running
the job answers from memory while it runs and for a few seconds after (the
row says the same: it is written first). A client-chosen
job uuid (``X-Job-UUID``) that already exists returns the existing job: a
retried request never becomes a second operation.

A job whose MN vanished (crash, restart) is failed with a clear error by the
MNs that remain, and at every MN's start. Finished jobs expire after
``api.job.expiry`` seconds: polling them then answers 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import httpx
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mn.api.message import APIMessage, APIResponse
from mn.api.render import full_body, rest_body
from mn.db.models.api_job import JOB_FAILED, JOB_PROCESSING, JOB_SUCCEEDED, ApiJobVO
from mn.db.models.management_node import ManagementNodeVO
from mn.db.types import utcnow
from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.globalconfig import GlobalConfig, at_least

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

JOB_EXPIRY = GlobalConfig("api", "job.expiry", int, 86400, validators=[at_least(1)],
                          description="Seconds a finished API job's result can be polled")
JOB_TIMEOUT = GlobalConfig("api", "timeout", int, 1800, validators=[at_least(1)],
                           description="Seconds an API job may run before it fails with a timeout")
#: Seconds between sweeps for expired jobs and jobs of vanished MNs.
SWEEP_INTERVAL = 30.0
#: A finished job's result stays this long (at most) in the memory of the MN
#: that ran it: its client's last poll usually comes within a second, and is
#: then answered without reading the row. Later polls read the row.
FINISHED_KEPT_SECONDS = 10.0
FINISHED_KEPT = 2000
WEBHOOK_ATTEMPTS = 3

_JOBS = ApiJobVO.__table__
# Every job writes its row twice and most polls read it: statements built
# once cost less CPU than building them per call.
_INSERT = insert(_JOBS)
_FINISH = (update(_JOBS).where(_JOBS.c.uuid == bindparam("b_uuid"))
           .values(state=bindparam("state"), result=bindparam("result"), lastOpDate=bindparam("lastOpDate")))
_READ = select(_JOBS.c.uuid, _JOBS.c.apiName, _JOBS.c.state, _JOBS.c.result,
               _JOBS.c.lastOpDate).where(_JOBS.c.uuid == bindparam("b_uuid"))


@dataclass
class JobView:
    """A job as a poll sees it."""

    uuid: str
    api_name: str
    state: str
    full_name: str | None = None
    body: dict[str, Any] | None = None

    @property
    def ended(self) -> bool:
        return self.state != JOB_PROCESSING

    @property
    def error(self) -> dict | None:
        return (self.body or {}).get("error") if self.state == JOB_FAILED else None


class JobManager:
    def __init__(self, node: "ManagementNode"):
        self.node = node
        self._tasks: set[asyncio.Task] = set()
        #: uuid -> API name of the jobs running here, from their row's insert to
        #: its final update: a poll of one is answered without reading the row.
        self._running: dict[str, str] = {}
        #: uuid -> (monotonic deadline, view) of jobs that ended here lately, oldest first.
        self._finished: OrderedDict[str, tuple[float, JobView]] = OrderedDict()
        self._sweeper: asyncio.Task | None = None
        self._webhooks: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._webhooks = httpx.AsyncClient(timeout=10)
        await self.fail_orphans()
        self.node.membership.on_node_left(self._on_node_left)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="api-job-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        for task in list(self._tasks):
            task.cancel()
        if self._webhooks is not None:
            await self._webhooks.aclose()

    # -- accepting ------------------------------------------------------------

    async def submit(self, msg: APIMessage, run: Callable[[], Awaitable[APIResponse]], *,
                     job_uuid: str, webhook: str | None = None) -> str:
        """Record the job and start ``run``; returns the job uuid.

        An existing job with that uuid is returned as it is (idempotent retry);
        one of another API is refused.
        """
        def insert(session):
            now = utcnow()
            session.execute(_INSERT, {"uuid": job_uuid, "apiName": msg.TYPE, "state": JOB_PROCESSING,
                                      "managementNodeUuid": self.node.uuid, "webHook": webhook,
                                      "result": None, "createDate": now, "lastOpDate": now})

        try:
            await self.node.db.run(insert)
        except IntegrityError:
            existing = await self.get(job_uuid)
            if existing is None or existing.api_name != msg.TYPE:
                raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                        f"job uuid {job_uuid} is already used by another API call") from None
            log.info("job %s retried: returning the existing job", job_uuid)
            return job_uuid
        self._running[job_uuid] = msg.TYPE
        task = asyncio.create_task(self._run(msg, run, job_uuid, webhook), name=f"api-job-{job_uuid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_uuid

    async def _run(self, msg: APIMessage, run, job_uuid: str, webhook: str | None) -> None:
        try:
            await self._run_and_finish(msg, run, job_uuid, webhook)
        finally:
            self._running.pop(job_uuid, None)

    async def _run_and_finish(self, msg: APIMessage, run, job_uuid: str, webhook: str | None) -> None:
        try:
            response = await asyncio.wait_for(run(), JOB_TIMEOUT.value)
        except OperationError as exc:
            response = msg.RESPONSE.failure(exc.error)
        except asyncio.TimeoutError:
            response = msg.RESPONSE.failure(error(SysErrors.TIMEOUT, f"{msg.api_name()} did not finish "
                                                                       f"in {JOB_TIMEOUT.value}s"))
        except asyncio.CancelledError:
            response = msg.RESPONSE.failure(error(SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                                                  f"management node {self.node.uuid} stopped during the job"))
            await self._finish(job_uuid, msg.RESPONSE.FULL_NAME, response)
            raise
        except Exception as exc:
            log.exception("job %s (%s) crashed", job_uuid, msg.TYPE)
            response = msg.RESPONSE.failure(error(SysErrors.INTERNAL, f"{type(exc).__name__}: {exc}"))
        if not isinstance(response, msg.RESPONSE) and response.success:
            response = msg.RESPONSE.model_validate(response.model_dump())
        body = await self._finish(job_uuid, msg.RESPONSE.FULL_NAME, response, msg.TYPE)
        self._running.pop(job_uuid, None)
        if webhook:
            await self._post_webhook(webhook, job_uuid, msg, body)

    async def _finish(self, job_uuid: str, full_name: str, response: APIResponse,
                      api_name: str | None = None) -> dict:
        body = full_body(response)
        state = JOB_SUCCEEDED if response.success else JOB_FAILED
        result = json.dumps({"fullName": full_name, "body": body})

        def write(session):
            session.execute(_FINISH, {"b_uuid": job_uuid, "state": state, "result": result,
                                      "lastOpDate": utcnow()})

        await self.node.db.run(write)
        if api_name is not None:
            self._keep_finished(JobView(job_uuid, api_name, state, full_name, json.loads(result)["body"]))
        return body

    def _keep_finished(self, view: JobView) -> None:
        now = time.monotonic()
        finished = self._finished
        # Oldest first, and all kept equally long: the expired ones are in front.
        while finished and (len(finished) >= FINISHED_KEPT or next(iter(finished.values()))[0] < now):
            finished.popitem(last=False)
        finished[view.uuid] = (now + min(FINISHED_KEPT_SECONDS, JOB_EXPIRY.value), view)

    def _kept(self, job_uuid: str) -> JobView | None:
        entry = self._finished.get(job_uuid)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._finished[job_uuid]
            return None
        return entry[1]

    async def _post_webhook(self, url: str, job_uuid: str, msg: APIMessage, full: dict) -> None:
        payload = rest_body(type(msg), full) if full.get("success") else {"error": full.get("error")}
        headers = {"X-Job-UUID": job_uuid, "X-Job-Success": str(bool(full.get("success"))).lower()}
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                rsp = await self._webhooks.post(url, json=payload, headers=headers)
                if rsp.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                log.info("webhook %s for job %s failed (%s), attempt %d", url, job_uuid, exc, attempt)
            await asyncio.sleep(attempt)
        log.warning("gave up posting job %s to its webhook %s", job_uuid, url)

    # -- polling ------------------------------------------------------------------

    async def get(self, job_uuid: str) -> JobView | None:
        """The job, or None when unknown or expired."""
        api_name = self._running.get(job_uuid)
        if api_name is not None:
            return JobView(job_uuid, api_name, JOB_PROCESSING)
        kept = self._kept(job_uuid)
        if kept is not None:
            return kept
        expiry = timedelta(seconds=JOB_EXPIRY.value)

        def read(session):
            vo = session.execute(_READ, {"b_uuid": job_uuid}).first()
            if vo is None:
                return None
            if vo.state != JOB_PROCESSING and vo.lastOpDate < utcnow() - expiry:
                return None
            result = json.loads(vo.result) if vo.result else {}
            return JobView(vo.uuid, vo.apiName, vo.state, result.get("fullName"), result.get("body"))

        return await self.node.db.run(read)

    # -- jobs of vanished MNs, expiry -----------------------------------------------

    async def fail_orphans(self) -> int:
        """Fail Processing jobs whose MN is no longer in the membership table."""
        failure = error(SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                        "the management node running this job stopped before it ended; the nodes "
                        "that took over its resources finished or rolled back its work: check the "
                        "resource's state before retrying")

        def fail(session):
            live = select(ManagementNodeVO.uuid)
            orphans = session.scalars(select(ApiJobVO.uuid).where(
                ApiJobVO.state == JOB_PROCESSING, ApiJobVO.managementNodeUuid.not_in(live))).all()
            for uuid in orphans:
                vo = session.get(ApiJobVO, uuid)
                body = {"success": False, "error": failure.to_dict()}
                vo.result = json.dumps({"fullName": _full_name_of(vo.apiName), "body": body})
                vo.state = JOB_FAILED
            return len(orphans)

        failed = await self.node.db.run(fail)
        if failed:
            log.warning("failed %d API job(s) of management nodes that are gone", failed)
        return failed

    async def _on_node_left(self, node_uuid: str) -> None:
        await self.fail_orphans()

    async def purge_expired(self) -> int:
        cutoff = utcnow() - timedelta(seconds=JOB_EXPIRY.value)

        def purge(session):
            return session.execute(delete(ApiJobVO).where(
                ApiJobVO.state != JOB_PROCESSING, ApiJobVO.lastOpDate < cutoff)).rowcount

        return await self.node.db.run(purge)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self.fail_orphans()
                await self.purge_expired()
            except Exception as exc:
                log.warning("API job sweep failed: %s", exc)


def _full_name_of(api_type: str) -> str | None:
    from mn.api.message import API_BY_NAME
    from mn.bus.message import message_class

    try:
        cls = message_class(api_type)
    except OperationError:
        return None
    return cls.RESPONSE.FULL_NAME if cls in API_BY_NAME.values() else None


__all__ = ["JobManager", "JobView", "ErrorCode"]
