"""From an HTTP request to an API message, checked, then run or queued.

Everything a request can get wrong is found here, before anything runs, and
answered at once with ZStack's error object: bad credentials (401/403),
bad or unknown parameters (400), uuids that do not exist or that the caller
may not touch (404/403), and what the owning service's interceptor refuses
(e.g. a wrong state, 409). Only then does the API run: queries and other
synchronous APIs at once, everything else as an API job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from pydantic import ValidationError
from sqlalchemy import select

from mn.api.jobs import JOB_TIMEOUT, JobManager
from mn.api.message import APIMessage, APIQueryMessage, APIResponse, SessionInfo, ref_of
from mn.db.models.base import model_of_table
from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.ids import is_uuid, new_uuid

if TYPE_CHECKING:
    from mn.node import ManagementNode

PERMISSION_DENIED = "ID.1002"


def permission_denied(details: str) -> OperationError:
    return OperationError(ErrorCode(PERMISSION_DENIED, "Permission denied", details))


def invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def describe_validation_error(api: type[APIMessage], exc: ValidationError) -> str:
    problems = []
    for item in exc.errors():
        where = ".".join(str(part) for part in item["loc"]) or "body"
        if item["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown parameter")
        else:
            problems.append(f"{where}: {item['msg']}")
    return f"invalid parameters of {api.api_name()}: " + "; ".join(problems)


class ApiDispatcher:
    """Checks and runs API messages for the REST and legacy endpoints."""

    def __init__(self, node: "ManagementNode", jobs: JobManager):
        self.node = node
        self.jobs = jobs

    # -- who calls --------------------------------------------------------------

    async def authenticate(self, api: type[APIMessage], *, authorization: str | None,
                           date: str | None, method: str, path: str) -> SessionInfo | None:
        if api.PUBLIC:
            return None
        return await self.node.identity.authenticate(authorization, date, method, path)

    async def session_of(self, api: type[APIMessage], session_uuid: str | None) -> SessionInfo | None:
        """The legacy RPC's ``"session": {"uuid": ...}``."""
        if api.PUBLIC:
            return None
        return await self.node.identity.session_info(session_uuid)

    # -- building and checking ------------------------------------------------------

    def build(self, api: type[APIMessage], params: Any, path_vars: dict[str, str] | None = None,
              system_tags: Any = None, user_tags: Any = None) -> APIMessage:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise invalid(f"the parameters of {api.api_name()} must be a JSON object")
        values = {k: v for k, v in params.items() if k != "session"}
        for name, value in (path_vars or {}).items():
            if name in values and values[name] != value:
                raise invalid(f"{name} is {value} in the URL but {values[name]} in the body")
            values[name] = value
        if system_tags is not None:
            values["systemTags"] = system_tags
        if user_tags is not None:
            values["userTags"] = user_tags
        try:
            return api.model_validate(values)
        except ValidationError as exc:
            raise invalid(describe_validation_error(api, exc)) from None

    async def check(self, msg: APIMessage, session: SessionInfo | None) -> None:
        msg.session = session
        if msg.ADMIN_ONLY and (session is None or not session.isAdmin):
            raise permission_denied(f"only the admin account may call {msg.api_name()}")
        await self._check_refs(msg, session)
        self._check_tags(msg)
        service = self.node.services.get(msg.SERVICE or "")
        if service is not None:
            await service.intercept(msg)

    def _check_tags(self, msg: APIMessage) -> None:
        if msg.userTags:
            self.node.tags.validate_user_tags(msg.userTags)
        if not msg.systemTags:
            return
        resource_type = getattr(type(msg), "RESOURCE_TYPE", None)
        if resource_type:
            self.node.tags.validate_system_tags(resource_type, msg.systemTags)
            return
        # Other APIs read system tags as options; they must at least be tags.
        for tag in msg.systemTags:
            if not tag.strip() or len(tag) > 2048:
                raise invalid(f"system tag {tag[:40]!r} must be 1 to 2048 characters, not blank")

    async def _check_refs(self, msg: APIMessage, session: SessionInfo | None) -> None:
        refs = []  # (field, Ref, uuids) in field order
        for name, field in type(msg).model_fields.items():
            ref = ref_of(field)
            value = getattr(msg, name)
            if ref is None or value is None:
                continue
            uuids = list(value) if isinstance(value, (list, tuple, set)) else [value]
            if uuids:
                refs.append((name, ref, uuids))
        if not refs:
            return
        # Every lookup in one round trip; errors still come field by field.
        found = await self._existing({(ref.resource_type, u) for _, ref, uuids in refs
                                      for u in uuids if is_uuid(u)})
        for name, ref, uuids in refs:
            self._raise_if_missing(ref.resource_type, uuids, name, found)
            if ref.owner_check and session is not None and not session.isAdmin:
                hidden = await self.node.identity.check_visible(session, ref.resource_type, uuids)
                if hidden:
                    raise permission_denied(f"the account {session.accountUuid} has no access to "
                                            f"{ref.resource_type}[uuid:{hidden[0]}]")

    async def check_exist(self, resource_type: str, uuids: Iterable[str], field: str = "uuid") -> None:
        """Raise 400 for a uuid that is not one, 404 for one that does not exist."""
        uuids = list(uuids)
        found = await self._existing({(resource_type, u) for u in uuids if is_uuid(u)})
        self._raise_if_missing(resource_type, uuids, field, found)

    async def _existing(self, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of the (resource type, uuid) pairs exist."""
        by_type: dict[str, list[str]] = {}
        for resource_type, uuid in wanted:
            by_type.setdefault(resource_type, []).append(uuid)
        models = {}
        for resource_type in by_type:
            models[resource_type] = model_of_table(resource_type)
            if models[resource_type] is None:
                raise OperationError.of(SysErrors.INTERNAL, f"unknown resource type {resource_type}")

        def read(session):
            return {(t, u) for t, uuids in by_type.items()
                    for u in session.scalars(select(models[t].uuid).where(models[t].uuid.in_(uuids)))}

        return await self.node.db.run(read) if by_type else set()

    @staticmethod
    def _raise_if_missing(resource_type: str, uuids: list[str], field: str,
                          found: set[tuple[str, str]]) -> None:
        bad = [u for u in uuids if not is_uuid(u)]
        if bad:
            raise invalid(f"{field}: {bad[0]!r} is not a uuid")
        missing = [u for u in uuids if (resource_type, u) not in found]
        if missing:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                    f"{resource_type}[uuid:{missing[0]}] is not found")

    # -- running ------------------------------------------------------------------

    async def execute(self, msg: APIMessage) -> APIResponse:
        """Run a synchronous API now; raises OperationError when it fails."""
        if isinstance(msg, APIQueryMessage):
            return await self.node.query.query(msg, msg.session)
        return await self.node.bus.call(msg)

    async def submit(self, msg: APIMessage, *, job_uuid: str | None = None,
                     webhook: str | None = None) -> str:
        """Queue an asynchronous API as a job; returns the job uuid."""
        if job_uuid is not None and not is_uuid(job_uuid):
            raise invalid("X-Job-UUID must be a uuid without '-' (32 lower-case hex digits)")
        job_uuid = job_uuid or new_uuid()

        async def run() -> APIResponse:
            return await self.node.bus.call(msg, timeout=JOB_TIMEOUT.value)

        return await self.jobs.submit(msg, run, job_uuid=job_uuid, webhook=webhook)


def failure_of(api: type[APIMessage], exc: OperationError) -> APIResponse:
    return api.RESPONSE.failure(exc.error)


__all__ = ["ApiDispatcher", "invalid", "permission_denied", "error"]
