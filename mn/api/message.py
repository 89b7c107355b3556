"""API messages: the one definition behind REST v1, the legacy RPC endpoint,
the OpenAPI document and the CLI.

An API is a :class:`APIMessage` subclass named as in ZStack
(``APICreateZoneMsg``) with its fully qualified Java name, the service that
handles it, its REST route and its response class::

    class APICreateZoneMsg(APICreateMessage):
        FULL_NAME = "org.zstack.header.zone.APICreateZoneMsg"
        SERVICE = "zone"
        REST = Rest("POST", "/zones")
        RESPONSE = APICreateZoneEvent
        name: Annotated[str, Field(max_length=255)]
        description: str | None = None

Parameters are pydantic fields (types, required, ``Literal`` for valid
values, lengths and ranges); a field that names another resource carries
:class:`Ref` so the API layer answers 404 for a uuid that does not exist (or
that the caller's account does not own) before anything runs.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError

from mn.bus import Message, Reply
from mn.errors import ErrorCode
from mn.ids import UUID_PATTERN

#: A parameter that must be a ZStack uuid (32 lower-case hex digits).
UuidParam = Annotated[str, Field(pattern=UUID_PATTERN.pattern)]

#: API messages by fully qualified ZStack class name (legacy RPC, CLI).
API_BY_FULL_NAME: dict[str, type["APIMessage"]] = {}
#: API messages by short name without "API" and "Msg" ("CreateZone").
API_BY_NAME: dict[str, type["APIMessage"]] = {}
#: Response classes by fully qualified name.
RESPONSE_BY_FULL_NAME: dict[str, type["APIResponse"]] = {}


@dataclasses.dataclass(frozen=True)
class Rest:
    """ZStack's ``@RestRequest`` and ``@RestResponse`` of one API.

    ``path`` is relative to ``/zstack/v1``. POST bodies carry the parameters
    under ``parameter_name`` ("params"); an action (``is_action``) is a PUT
    whose body is ``{"<actionName>": {...}}``, the action name being the API
    name with a lower-case first letter (``changeZoneState``); GET and DELETE
    take query-string parameters. Path variables fill the fields of the same
    name. The response body is ``{all_to: reply.<all_to>}`` or, with
    ``fields``, one key per named reply field (``"key=field"`` renames).
    """

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    optional_paths: tuple[str, ...] = ()
    parameter_name: str = "params"
    is_action: bool = False
    all_to: str | None = "inventory"
    fields: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.optional_paths)


@dataclasses.dataclass(frozen=True)
class Ref:
    """Marks a field holding the uuid (or a list of uuids) of a resource of
    ``resource_type`` (its table name, e.g. "ZoneVO"): each must exist and,
    unless ``owner_check`` is off (ZStack's ``noOwnerCheck``, for shared
    infrastructure such as backup storage), belong to the caller. A None
    value is not checked."""

    resource_type: str
    owner_check: bool = True


def ref_of(field: Any) -> Ref | None:
    """The Ref of a pydantic field, also when written ``Annotated[str, Ref(..)] | None``
    or ``list[Annotated[str, Ref(..)]]`` (pydantic keeps only top-level metadata)."""
    for meta in field.metadata:
        if isinstance(meta, Ref):
            return meta
    stack = [field.annotation]
    while stack:
        annotation = stack.pop()
        for meta in getattr(annotation, "__metadata__", ()):
            if isinstance(meta, Ref):
                return meta
        stack.extend(typing.get_args(annotation))
    return None


class SessionInfo(BaseModel):
    """Who called: set by the API layer from a verified session or AccessKey,
    never taken from the client."""

    uuid: str
    accountUuid: str
    userUuid: str | None = None
    isAdmin: bool = False


class APIResponse(Reply):
    """Base of API events (async results) and replies (sync results)."""

    FULL_NAME: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("FULL_NAME"):
            RESPONSE_BY_FULL_NAME[cls.FULL_NAME] = cls

    @classmethod
    def failure(cls, err: ErrorCode) -> "APIResponse":
        """A failed response of this class (its other fields at their defaults)."""
        try:
            return cls(success=False, error=err.to_dict())
        except ValidationError:
            return cls.model_construct(success=False, error=err.to_dict())


class APIEvent(APIResponse):
    """Result of an asynchronous API (ZStack's APIEvent)."""


class APIReply(APIResponse):
    """Result of a synchronous API (ZStack's APIReply)."""


class APIMessage(Message):
    """Base of every API. See the module docstring."""

    FULL_NAME: ClassVar[str] = ""
    REST: ClassVar[Rest | None] = None
    RESPONSE: ClassVar[type[APIResponse]] = APIEvent
    #: Answered at once (queries, login) instead of through an API job.
    SYNC: ClassVar[bool] = False
    #: No credentials needed (ZStack's @SuppressCredentialCheck).
    PUBLIC: ClassVar[bool] = False
    #: Only the admin account may call it.
    ADMIN_ONLY: ClassVar[bool] = False
    #: Fields whose values are never logged or shown (passwords, secrets).
    SENSITIVE: ClassVar[tuple[str, ...]] = ()

    systemTags: list[str] | None = None
    userTags: list[str] | None = None
    #: Set by the API layer only; a client-supplied value is discarded.
    session: SessionInfo | None = Field(default=None, json_schema_extra={"readOnly": True})

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.__dict__.get("FULL_NAME"):
            return  # an abstract base such as APICreateMessage
        for registry, key in ((API_BY_FULL_NAME, cls.FULL_NAME), (API_BY_NAME, cls.api_name())):
            known = registry.get(key)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"API {key} is defined twice: {known.__module__} and {cls.__module__}")
            registry[key] = cls

    @classmethod
    def api_name(cls) -> str:
        """``APICreateZoneMsg`` -> ``CreateZone`` (the CLI's and OpenAPI's name)."""
        return re.sub(r"^API|Msg$", "", cls.TYPE)

    @classmethod
    def action_name(cls) -> str:
        """The body key of a PUT action: ``changeZoneState``."""
        name = cls.api_name()
        return name[0].lower() + name[1:]

    @classmethod
    def parameter_fields(cls) -> dict[str, Any]:
        """Fields a client may set (everything but the session)."""
        return {name: f for name, f in cls.model_fields.items() if name != "session"}


class APICreateMessage(APIMessage):
    """Creates a resource; the client may choose its uuid (ZStack's resourceUuid).

    ``RESOURCE_TYPE`` (the table name) lets the API layer check the request's
    system tags against that type's patterns before anything runs.
    """

    RESOURCE_TYPE: ClassVar[str | None] = None

    resourceUuid: UuidParam | None = None


class APIDeleteMessage(APIMessage):
    """Deletes a resource; ``deleteMode`` as ZStack's cascade."""

    deleteMode: Literal["Permissive", "Enforcing"] = "Permissive"


class QueryCondition(BaseModel):
    """One condition of a query: ``name op value`` (value absent for is null / not null)."""

    name: str
    op: str
    value: str | None = None


class APIQueryMessage(APIMessage):
    """Base of Query* APIs (ZStack's APIQueryMessage); executed by the query engine.

    ``INVENTORY`` names the inventory class the query runs over.
    """

    SYNC = True
    INVENTORY: ClassVar[type | None] = None

    conditions: list[QueryCondition] = []
    limit: int = Field(default=1000, ge=0)
    start: int = Field(default=0, ge=0)
    count: bool = False
    replyWithCount: bool = False
    groupBy: str | None = None
    sortBy: str | None = None
    sortDirection: Literal["asc", "desc"] = "asc"
    fields: list[str] | None = None


class APIQueryReply(APIReply):
    """``inventories`` (and ``total`` with count or replyWithCount)."""

    inventories: list[dict[str, Any]] = []
    total: int | None = None


def query_rest(path: str) -> Rest:
    """The route of a Query API: ``GET <path>`` and ``GET <path>/{uuid}``;
    the path's uuid becomes the condition ``uuid=<uuid>``."""
    return Rest("GET", path, optional_paths=(f"{path}/{{uuid}}",), all_to="inventories")
