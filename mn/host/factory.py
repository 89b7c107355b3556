"""What the host service needs from a hypervisor type (ZStack's HypervisorFactory).

A hypervisor plugin (Simulator here; KVM later) gives the host service a
factory for its hypervisor type::

    node.services["host"].add_factory(KvmHostFactory())

The host service does what is common to every host (the HostVO row, tags,
ownership, states, cascades); the factory adds its own rows and connects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mn.db.models.host import HostVO

if TYPE_CHECKING:
    from mn.node import ManagementNode


class HostFactory:
    """One hypervisor type's part in adding and connecting hosts."""

    #: The cluster's ``hypervisorType`` this factory serves ("Simulator", "KVM").
    hypervisor_type: str
    #: The architecture of its hosts when their cluster names none.
    architecture: str = "x86_64"

    def create_rows(self, session: Session, host: HostVO, msg: Any) -> None:
        """Add this type's rows for ``host`` (flushed, not committed) from the API message.

        Runs in the transaction that inserts ``host``; raising rolls everything back.
        """
        raise NotImplementedError

    async def connect(self, node: "ManagementNode", host_uuid: str) -> None:
        """Connect to the host (deploy or ping its agent, read its capacity).

        Raise OperationError when it cannot be reached; the host service
        sets the status.
        """
        raise NotImplementedError

    async def ping(self, node: "ManagementNode", host_uuid: str, management_ip: str) -> str | None:
        """Ping a Connected host for the host tracker.

        Raise OperationError when it does not answer (the tracker retries and
        then marks it Disconnected); return why it must be reconnected (an
        agent out of date), or None when all is well. A host type without an
        agent (Simulator) always answers.
        """
        return None
