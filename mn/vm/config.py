"""Global configs of the VM service (ZStack's VmGlobalConfig, category ``vm``)."""

from __future__ import annotations

from mn.globalconfig import GlobalConfig, valid_values

#: Destroy keeps the VM (Destroyed, recoverable) until it is expunged.
DELAY = "Delay"
#: Destroy expunges the VM at once.
DIRECT = "Direct"

DELETION_POLICY = GlobalConfig(
    "vm", "deletionPolicy", str, DELAY, validators=[valid_values(DIRECT, DELAY)],
    description="the behavior of deleting a vm: Direct expunges it at once (root volume included); "
                "Delay changes it to Destroyed, recoverable until expunged")

DELETE_DATA_VOLUME_ON_VM_DESTROY = GlobalConfig(
    "vm", "dataVolume.deleteOnVmDestroy", bool, False,
    description="delete the data volumes attached to a vm when it is destroyed (otherwise they are detached)")

UNIQUE_VM_NAME = GlobalConfig(
    "vm", "uniqueVmName", bool, False,
    description="refuse to create a vm with the name of an existing one")
