"""Creating a resource from an API: row, tags and owner in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mn.api.message import APICreateMessage
from mn.errors import OperationError, SysErrors

if TYPE_CHECKING:
    from mn.node import ManagementNode


def persist_new(node: "ManagementNode", sql_session: Any, vo: Any, msg: APICreateMessage,
                resource_type: str) -> None:
    """Add ``vo`` with the tags of ``msg`` and the caller as owner.

    Call it inside the transaction that creates the resource: a bad tag
    raises before anything is written, and any later failure rolls back the
    row, its tags and its ownership together.
    """
    system_tags, user_tags = msg.systemTags or [], msg.userTags or []
    node.tags.validate_system_tags(resource_type, system_tags) if system_tags else None
    node.tags.validate_user_tags(user_tags) if user_tags else None
    if msg.resourceUuid:
        if sql_session.get(type(vo), msg.resourceUuid) is not None:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"resourceUuid {msg.resourceUuid} is already used by a {resource_type}")
        vo.uuid = msg.resourceUuid
    sql_session.add(vo)
    sql_session.flush()
    node.tags.attach_at_create(sql_session, vo.uuid, resource_type, system_tags, user_tags)
    identity = getattr(node, "identity", None)
    if identity is not None:
        identity.own_in_session(sql_session, msg.session, vo.uuid, resource_type)
