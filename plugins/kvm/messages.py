"""The KVM host APIs, as ZStack's ``org.zstack.kvm`` package defines them.

Both are served by the host service's owner of the host (routed by uuid);
the KVM service handles them through the host service's common code.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mn.api.message import APICreateMessage, APIMessage, Ref, Rest
from mn.host.messages import SERVICE_ID as HOST_SERVICE_ID
from mn.host.messages import APIAddHostEvent, APIUpdateHostEvent, Description, HostUuid, ManagementIp, Name

_PACKAGE = "org.zstack.kvm"

#: The KVM service's id on the bus.
SERVICE_ID = "kvm"

Username = Annotated[str, Field(min_length=1, max_length=255)]
Password = Annotated[str, Field(max_length=255)]
SshPort = Annotated[int, Field(ge=1, le=65535)]


class APIAddKVMHostMsg(APICreateMessage):
    """Add a KVM host: the MN logs in over SSH, deploys the agent with Ansible,
    connects to it and reads the host's capacity (ZStack's APIAddKVMHostMsg)."""

    RESOURCE_TYPE = "HostVO"

    FULL_NAME = f"{_PACKAGE}.APIAddKVMHostMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/hosts/kvm")
    RESPONSE = APIAddHostEvent
    ADMIN_ONLY = True
    SENSITIVE = ("password",)

    username: Username
    password: Password
    sshPort: SshPort = 22
    name: Name
    description: Description | None = None
    managementIp: ManagementIp
    clusterUuid: Annotated[str, Ref("ClusterVO")]


class APIUpdateKVMHostMsg(APIMessage):
    """Change a KVM host's SSH login or its name, description or address
    (absent fields are kept); used on the next reconnect."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateKVMHostMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/hosts/kvm/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateHostEvent
    ADMIN_ONLY = True
    SENSITIVE = ("password",)

    uuid: HostUuid
    username: Username | None = None
    password: Password | None = None
    sshPort: SshPort | None = None
    name: Name | None = None
    description: Description | None = None
    managementIp: ManagementIp | None = None


__all__ = ["APIAddKVMHostMsg", "APIUpdateKVMHostMsg", "HOST_SERVICE_ID", "SERVICE_ID"]
