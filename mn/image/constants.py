"""ZStack's image enumerations (ImageStatus, ImageState, ImageMediaType, ImagePlatform...)."""

from __future__ import annotations

import platform as _platform

# -- ImageStatus: where the bits are ---------------------------------------------------
CREATING = "Creating"
DOWNLOADING = "Downloading"
READY = "Ready"
ERROR = "Error"
DELETED = "Deleted"
MIGRATING = "Migrating"

# -- ImageState: whether new VMs and volumes may use it -------------------------------
ENABLED = "Enabled"
DISABLED = "Disabled"

# -- ImageMediaType --------------------------------------------------------------------
ROOT_VOLUME_TEMPLATE = "RootVolumeTemplate"
DATA_VOLUME_TEMPLATE = "DataVolumeTemplate"
ISO = "ISO"
MEDIA_TYPES = (ROOT_VOLUME_TEMPLATE, DATA_VOLUME_TEMPLATE, ISO)

# -- ImagePlatform ---------------------------------------------------------------------
LINUX = "Linux"
WINDOWS = "Windows"
WINDOWS_VIRTIO = "WindowsVirtio"
OTHER = "Other"
PARAVIRTUALIZATION = "Paravirtualization"
PLATFORMS = (LINUX, WINDOWS, OTHER, PARAVIRTUALIZATION, WINDOWS_VIRTIO)
#: Platform of an image added without one (ZStack's ImageDefaultBehavior).
DEFAULT_PLATFORM = LINUX

# -- ImageArchitecture -----------------------------------------------------------------
ARCHITECTURES = ("x86_64", "aarch64", "mips64el", "loongarch64")

# -- volume formats (ZStack's VolumeFormat types) --------------------------------------
ISO_FORMAT = "iso"
QCOW2_FORMAT = "qcow2"
RAW_FORMAT = "raw"
VMDK_FORMAT = "vmdk"
#: The format of the simulator hypervisor's volumes (ZStack's SimulatorConstant).
SIMULATOR_FORMAT = "simulator"
FORMATS = (QCOW2_FORMAT, RAW_FORMAT, VMDK_FORMAT, ISO_FORMAT, SIMULATOR_FORMAT)
#: Formats APIUpdateImageMsg accepts (its validValues).
UPDATABLE_FORMATS = (RAW_FORMAT, QCOW2_FORMAT, ISO_FORMAT)

#: ``type`` of every image (ZStack's ImageConstant.ZSTACK_IMAGE_TYPE; no other type exists).
ZSTACK_IMAGE_TYPE = "zstack"

#: Smallest image worth adding: ZStack refuses smaller ones ("too small for an image").
MIN_IMAGE_SIZE = 1024 * 1024


def default_architecture() -> str:
    """The architecture of this MN's machine, as ZStack's ImageArchitecture.defaultArch()."""
    machine = _platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "aarch64"
    return machine if machine in ARCHITECTURES else "x86_64"


def default_guest_os_type(platform: str | None) -> str | None:
    """ZStack's GuestOsCategory.getDefaultGuestOsTypeByPlatform."""
    return platform if platform in (WINDOWS, LINUX, OTHER) else None
