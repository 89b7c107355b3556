"""ZStack's offering types and allocator strategy names."""

from __future__ import annotations

#: ``type`` of instance offerings of user VMs (ZStack's USER_VM_INSTANCE_OFFERING_TYPE).
USER_VM_INSTANCE_OFFERING_TYPE = "UserVm"
#: ``type`` of disk offerings (ZStack's DefaultDiskOfferingFactory type).
ZSTACK_DISK_OFFERING_TYPE = "zstack"
#: ZStack's InstanceOfferingDuration of every offering made by the API.
PERMANENT = "Permanent"

#: Smallest memory of an instance offering: "no modern operating system is
#: likely able to boot with such small memory size" (ZStack's interceptor).
MIN_MEMORY_SIZE = 16 * 1024 * 1024

LEAST_VM_PREFERRED_HOST_ALLOCATOR_STRATEGY = "LeastVmPreferredHostAllocatorStrategy"
#: The strategy of an instance offering created without one (ZStack's choice).
#: The strategies an offering may name are the host allocator's
#: (``mn.host.allocator.HOST_ALLOCATOR_STRATEGIES``).
DEFAULT_INSTANCE_OFFERING_ALLOCATOR_STRATEGY = LEAST_VM_PREFERRED_HOST_ALLOCATOR_STRATEGY

#: The strategy of a disk offering created without one.
DEFAULT_PRIMARY_STORAGE_ALLOCATION_STRATEGY = "DefaultPrimaryStorageAllocationStrategy"
#: Primary storage allocator strategies a disk offering may name (ZStack's).
PRIMARY_STORAGE_ALLOCATOR_STRATEGIES = (
    DEFAULT_PRIMARY_STORAGE_ALLOCATION_STRATEGY,
    "LeastVolumePrimaryStorageAllocationStrategy",
    "MaximumAvailableCapacityAllocationStrategy",
    "CustomOrderPrimaryStorageAllocationStrategy",
    "LocalPrimaryStorageStrategy",
)
