"""Creating a resource from an API: row, tags and owner in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mn.api.message import APICreateMessage
from mn.db.engine import commit_probe
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
    # The new row tells whether this transaction committed if its COMMIT loses
    # the connection: running it again would make a second resource.
    model, uuid = type(vo), vo.uuid
    commit_probe(sql_session, lambda session: session.scalar(select(model.uuid).where(model.uuid == uuid))
                 is not None)
    node.tags.attach_at_create(sql_session, vo.uuid, resource_type, system_tags, user_tags)
    identity = getattr(node, "identity", None)
    if identity is not None:
        identity.own_in_session(sql_session, msg.session, vo.uuid, resource_type)
