"""The VM APIs, as ZStack's ``org.zstack.header.vm`` defines them, and the
messages other services send to a VM's owner.

Every API about one VM is routed to the MN that owns the VM on the ring
(``ROUTE_BY``) and runs there in the VM's work queue. A create is routed by
``resourceUuid``, which the interceptor fills in when the client left it out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr

from mn.api.jobs import JOB_TIMEOUT
from mn.api.message import (
    APICreateMessage,
    APIDeleteMessage,
    APIEvent,
    APIMessage,
    APIQueryMessage,
    APIQueryReply,
    APIReply,
    Ref,
    Rest,
    UuidParam,
    query_rest,
)
from mn.bus import Message, Reply
from mn.vm.inventory import VmInstanceInventory, VmNicInventory
from mn.volume.inventory import VolumeInventory

SERVICE_ID = "vmInstance"
_PACKAGE = "org.zstack.header.vm"

Name = Annotated[str, Field(min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
VmUuid = Annotated[str, Ref("VmInstanceVO")]
L3Uuid = Annotated[str, Ref("L3NetworkVO")]
# Optional references carry Ref on the whole (optional) type: that is where
# the API layer finds it.
# Infrastructure a normal account may name without owning it (ZStack: no checkAccount).
OptionalHostUuid = Annotated[str | None, Ref("HostVO", owner_check=False)]
OptionalClusterUuid = Annotated[str | None, Ref("ClusterVO", owner_check=False)]
OptionalL3Uuid = Annotated[str | None, Ref("L3NetworkVO")]
Platform = Literal["Linux", "Windows", "Other", "Paravirtualization", "WindowsVirtio"]
Architecture = Literal["x86_64", "aarch64", "mips64el", "loongarch64"]
#: ZStack's VmCreationStrategy values an API may ask for.
Strategy = Literal["InstantStart", "JustCreate", "CreateStopped"]
INSTANT_START = "InstantStart"


class _VmEvent(APIEvent):
    inventory: VmInstanceInventory | None = None


# -- create -----------------------------------------------------------------------------


class APICreateVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateVmInstanceEvent"


class APICreateVmInstanceMsg(APICreateMessage):
    """Create a VM from an image on L3 networks (ZStack's NewVmInstanceMessage2).

    CPU and memory come from ``instanceOfferingUuid`` or from ``cpuNum`` and
    ``memorySize``; the root disk from the image (or, for an ISO, from
    ``rootDiskOfferingUuid``/``rootDiskSize``); one data volume per entry of
    ``dataDiskOfferingUuids`` and ``dataDiskSizes``. ``zoneUuid``,
    ``clusterUuid`` and ``hostUuid`` narrow where it may run (the smallest
    given wins). ``strategy``: InstantStart (Running), JustCreate or
    CreateStopped (everything allocated, the VM Stopped).
    """

    RESOURCE_TYPE = "VmInstanceVO"

    FULL_NAME = f"{_PACKAGE}.APICreateVmInstanceMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "resourceUuid"
    REST = Rest("POST", "/vm-instances")
    RESPONSE = APICreateVmInstanceEvent

    name: Name
    instanceOfferingUuid: Annotated[str | None, Ref("InstanceOfferingVO")] = None
    cpuNum: Annotated[int, Field(ge=1, le=1024)] | None = None
    memorySize: Annotated[int, Field(ge=1)] | None = None
    reservedMemorySize: Annotated[int, Field(ge=0)] | None = None
    imageUuid: Annotated[str | None, Ref("ImageVO")] = None
    l3NetworkUuids: Annotated[list[str] | None, Ref("L3NetworkVO")] = None
    type: Literal["UserVm", "ApplianceVm"] | None = None
    rootDiskOfferingUuid: Annotated[str | None, Ref("DiskOfferingVO")] = None
    rootDiskSize: Annotated[int, Field(ge=1)] | None = None
    dataDiskSizes: list[Annotated[int, Field(ge=1)]] | None = None
    dataDiskOfferingUuids: Annotated[list[str] | None, Ref("DiskOfferingVO")] = None
    zoneUuid: Annotated[str | None, Ref("ZoneVO", owner_check=False)] = None
    clusterUuid: OptionalClusterUuid = None
    hostUuid: OptionalHostUuid = None
    primaryStorageUuidForRootVolume: Annotated[str | None, Ref("PrimaryStorageVO", owner_check=False)] = None
    description: Description | None = None
    defaultL3NetworkUuid: str | None = None
    strategy: Strategy = INSTANT_START
    rootVolumeSystemTags: list[str] | None = None
    dataVolumeSystemTags: list[str] | None = None
    platform: Platform | None = None
    guestOsType: Annotated[str, Field(max_length=255)] | None = None
    architecture: Architecture | None = None
    virtio: bool | None = None
    #: (monotonic time, data map) the interceptor checked, for the handler when it
    #: runs in the same process (never serialised: a peer checks afresh).
    _checked: tuple[float, dict] | None = PrivateAttr(default=None)


# -- queries ----------------------------------------------------------------------------


class APIQueryVmInstanceReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryVmInstanceReply"


class APIQueryVmInstanceMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryVmInstanceMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/vm-instances")
    RESPONSE = APIQueryVmInstanceReply
    INVENTORY = VmInstanceInventory


class APIQueryVmNicReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryVmNicReply"


class APIQueryVmNicMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryVmNicMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/vm-instances/nics")
    RESPONSE = APIQueryVmNicReply
    INVENTORY = VmNicInventory


# -- life cycle -------------------------------------------------------------------------


class _VmAction(APIMessage):
    """An action on the VM ``uuid``, run in its work queue on its owner MN."""

    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"

    uuid: VmUuid


#: ZStack's route of most VM actions: ``PUT /vm-instances/{uuid}/actions``.
ACTION = Rest("PUT", "/vm-instances/{uuid}/actions", is_action=True)


class APIStartVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIStartVmInstanceEvent"


class APIStartVmInstanceMsg(_VmAction):
    """Start a stopped VM, on ``hostUuid`` or in ``clusterUuid`` if given."""

    FULL_NAME = f"{_PACKAGE}.APIStartVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIStartVmInstanceEvent

    clusterUuid: OptionalClusterUuid = None
    hostUuid: OptionalHostUuid = None


class APIStopVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIStopVmInstanceEvent"


class APIStopVmInstanceMsg(_VmAction):
    """Stop a VM: ``grace`` asks the guest to shut down, ``cold`` pulls the plug."""

    FULL_NAME = f"{_PACKAGE}.APIStopVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIStopVmInstanceEvent

    type: Literal["grace", "cold"] = "grace"
    stopHA: Literal["true"] | None = None


class APIRebootVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIRebootVmInstanceEvent"


class APIRebootVmInstanceMsg(_VmAction):
    FULL_NAME = f"{_PACKAGE}.APIRebootVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIRebootVmInstanceEvent


class APIPauseVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIPauseVmInstanceEvent"


class APIPauseVmInstanceMsg(_VmAction):
    FULL_NAME = f"{_PACKAGE}.APIPauseVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIPauseVmInstanceEvent


class APIResumeVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIResumeVmInstanceEvent"


class APIResumeVmInstanceMsg(_VmAction):
    FULL_NAME = f"{_PACKAGE}.APIResumeVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIResumeVmInstanceEvent


class APIDestroyVmInstanceEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDestroyVmInstanceEvent"


class APIDestroyVmInstanceMsg(APIDeleteMessage):
    """Destroy a VM: Destroyed (recoverable) or, with ``vm.deletionPolicy`` Direct, expunged.

    ``uuid`` is not a :class:`Ref`: destroying a VM that does not exist
    succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDestroyVmInstanceMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/vm-instances/{uuid}", all_to=None)
    RESPONSE = APIDestroyVmInstanceEvent

    uuid: UuidParam


class APIRecoverVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIRecoverVmInstanceEvent"


class APIRecoverVmInstanceMsg(_VmAction):
    """Bring a Destroyed VM back as Stopped (its addresses are allocated again when it starts)."""

    FULL_NAME = f"{_PACKAGE}.APIRecoverVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIRecoverVmInstanceEvent


class APIExpungeVmInstanceEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIExpungeVmInstanceEvent"


class APIExpungeVmInstanceMsg(_VmAction):
    """Delete a Destroyed VM for good, with its root volume."""

    FULL_NAME = f"{_PACKAGE}.APIExpungeVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIExpungeVmInstanceEvent


class APIUpdateVmInstanceEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateVmInstanceEvent"


class APIUpdateVmInstanceMsg(_VmAction):
    """Change a VM's name, description, default L3 network, platform or guest OS type.

    ZStack also takes ``state`` and CPU/memory here; those change through
    Start/Stop and ChangeInstanceOffering instead, and are refused.
    """

    FULL_NAME = f"{_PACKAGE}.APIUpdateVmInstanceMsg"
    REST = ACTION
    RESPONSE = APIUpdateVmInstanceEvent

    name: Name | None = None
    description: Description | None = None
    defaultL3NetworkUuid: OptionalL3Uuid = None
    platform: Platform | None = None
    guestOsType: Annotated[str, Field(max_length=255)] | None = None


# -- placement and shape -----------------------------------------------------------------


class APIMigrateVmEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIMigrateVmEvent"


class APIMigrateVmMsg(APIMessage):
    """Live-migrate a running VM to ``hostUuid`` (or a host the allocator picks)."""

    FULL_NAME = f"{_PACKAGE}.APIMigrateVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"
    REST = Rest("PUT", "/vm-instances/{vmInstanceUuid}/actions", is_action=True)
    RESPONSE = APIMigrateVmEvent

    vmInstanceUuid: VmUuid
    hostUuid: OptionalHostUuid = None
    migrateFromDestination: bool | None = None
    allowUnknown: bool = False
    strategy: Literal["auto-converge"] | None = None
    downTime: int | None = None


class APIChangeInstanceOfferingEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeInstanceOfferingEvent"


class APIChangeInstanceOfferingMsg(APIMessage):
    """Give a VM the CPU and memory of another instance offering (at once, also when running)."""

    FULL_NAME = f"{_PACKAGE}.APIChangeInstanceOfferingMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"
    REST = Rest("PUT", "/vm-instances/{vmInstanceUuid}/actions", is_action=True)
    RESPONSE = APIChangeInstanceOfferingEvent

    vmInstanceUuid: VmUuid
    instanceOfferingUuid: Annotated[str, Ref("InstanceOfferingVO")]


class APIAttachL3NetworkToVmEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIAttachL3NetworkToVmEvent"


class APIAttachL3NetworkToVmMsg(APIMessage):
    """Give a VM a new nic on an L3 network, with ``staticIp`` or a free address."""

    FULL_NAME = f"{_PACKAGE}.APIAttachL3NetworkToVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"
    REST = Rest("POST", "/vm-instances/{vmInstanceUuid}/l3-networks/{l3NetworkUuid}")
    RESPONSE = APIAttachL3NetworkToVmEvent

    vmInstanceUuid: VmUuid
    l3NetworkUuid: L3Uuid
    staticIp: str | None = None
    driverType: str | None = None
    customMac: Annotated[str, Field(pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")] | None = None


class APIDetachL3NetworkFromVmEvent(_VmEvent):
    FULL_NAME = f"{_PACKAGE}.APIDetachL3NetworkFromVmEvent"


class APIDetachL3NetworkFromVmMsg(APIMessage):
    """Remove a nic from its VM and give its address back.

    Routed by the nic; the handler passes the work to the VM's owner.
    """

    FULL_NAME = f"{_PACKAGE}.APIDetachL3NetworkFromVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmNicUuid"
    REST = Rest("DELETE", "/vm-instances/nics/{vmNicUuid}")
    RESPONSE = APIDetachL3NetworkFromVmEvent

    vmNicUuid: Annotated[str, Ref("VmNicVO")]


# -- hostname -----------------------------------------------------------------------------


class APISetVmHostnameEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APISetVmHostnameEvent"


class APISetVmHostnameMsg(_VmAction):
    """Set the VM's hostname (its ``hostname::<name>`` system tag), replacing any other."""

    FULL_NAME = f"{_PACKAGE}.APISetVmHostnameMsg"
    REST = ACTION
    RESPONSE = APISetVmHostnameEvent

    hostname: Annotated[str, Field(min_length=1, max_length=253)]


class APIGetVmHostnameReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APIGetVmHostnameReply"
    hostname: str | None = None


class APIGetVmHostnameMsg(APIMessage):
    FULL_NAME = f"{_PACKAGE}.APIGetVmHostnameMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/vm-instances/{uuid}/hostnames", all_to="hostname")
    RESPONSE = APIGetVmHostnameReply

    uuid: VmUuid


class APIDeleteVmHostnameEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIDeleteVmHostnameEvent"


class APIDeleteVmHostnameMsg(APIDeleteMessage):
    FULL_NAME = f"{_PACKAGE}.APIDeleteVmHostnameMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/vm-instances/{uuid}/hostnames", all_to=None)
    RESPONSE = APIDeleteVmHostnameEvent

    uuid: VmUuid


# -- between services --------------------------------------------------------------------


class VmReply(Reply):
    TYPE = "vm.VmReply"
    inventory: VmInstanceInventory | None = None


class StopVmInstanceMsg(Message):
    """Stop a VM on its owner (cascades: its host is being deleted)."""

    TYPE = "vm.StopVmInstanceMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"

    vmInstanceUuid: str
    type: Literal["grace", "cold"] = "cold"


class MigrateVmMsg(Message):
    """Migrate a VM on its owner (its host enters maintenance); a VM on no host stays."""

    TYPE = "vm.MigrateVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"

    vmInstanceUuid: str
    hostUuid: str | None = None


class ExpungeVmMsg(Message):
    """Delete a VM for good whatever its state (cascades: its zone, storage... is deleted)."""

    TYPE = "vm.ExpungeVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"

    vmInstanceUuid: str


class DetachNicFromVmMsg(Message):
    """Remove one nic (cascades: its L3 network is deleted; DetachL3NetworkFromVm)."""

    TYPE = "vm.DetachNicFromVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"

    vmInstanceUuid: str
    vmNicUuid: str
    #: Refuse unless the VM may detach an L3 network now (the API); cascades detach whatever the state.
    checkState: bool = False


class AttachDataVolumeToVmMsg(Message):
    """Attach a data volume, from the volume service (APIAttachDataVolumeToVm)."""

    TYPE = "vm.AttachDataVolumeToVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"

    vmInstanceUuid: str
    volumeUuid: str


class DetachDataVolumeFromVmMsg(Message):
    """Detach a data volume, from the volume service (detach, delete, cascades)."""

    TYPE = "vm.DetachDataVolumeFromVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"

    vmInstanceUuid: str
    volumeUuid: str


class VolumeReply(Reply):
    TYPE = "vm.VolumeReply"
    inventory: VolumeInventory | None = None


async def call_vm_owner(node: Any, msg: Message) -> Reply:
    """Send one of the messages above to the VM's owner and wait for the reply.

    The work waits its turn in the VM's queue, behind whatever runs there
    (a create, a slow hypervisor), so it may take as long as an API job.
    """
    return await node.bus.call(msg, timeout=JOB_TIMEOUT.value)
