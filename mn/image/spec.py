"""What an AddImage request makes: ZStack's defaults and checks applied to the message.

The interceptor and the handler both build the spec, so a message that
skipped the interceptor (an internal caller) is held to the same rules.
"""

from __future__ import annotations

import dataclasses

from mn.errors import OperationError, SysErrors
from mn.image import constants as c
from mn.image.download import SimulatedImage, simulate
from mn.image.messages import APIAddImageMsg
from mn.image.url import normalize_image_url


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """The columns of the image an AddImage makes, and its simulated download."""

    url: str
    media_type: str
    format: str
    platform: str | None
    architecture: str | None
    guest_os_type: str | None
    type: str
    download: SimulatedImage


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def image_spec(msg: APIAddImageMsg) -> ImageSpec:
    """ZStack's ImageApiInterceptor and ImageMessageFiller.fillDefault for ``msg``;
    OperationError SYS.1007 for what they refuse."""
    media_type, fmt = msg.mediaType, msg.format
    if media_type == c.ISO:
        fmt = c.ISO_FORMAT
    if msg.system and (media_type == c.ISO or fmt == c.ISO_FORMAT):
        raise _invalid("ISO cannot be used as system image")
    if fmt not in c.FORMATS:
        raise _invalid(f"unknown format[{fmt}]: the format must be one of {', '.join(c.FORMATS)}")
    if fmt == c.ISO_FORMAT:
        media_type = c.ISO  # as ZStack's handler: an iso file is an ISO whatever was said
    media_type = media_type or c.ROOT_VOLUME_TEMPLATE

    platform, architecture, guest_os_type = msg.platform, msg.architecture, msg.guestOsType
    if media_type != c.DATA_VOLUME_TEMPLATE:
        platform = platform or c.DEFAULT_PLATFORM
        platform = {c.PARAVIRTUALIZATION: c.OTHER, c.WINDOWS_VIRTIO: c.WINDOWS}.get(platform, platform)
        architecture = architecture or c.default_architecture()
        guest_os_type = guest_os_type or c.default_guest_os_type(platform)

    url = normalize_image_url(msg.url)
    return ImageSpec(url=url, media_type=media_type, format=fmt, platform=platform,
                     architecture=architecture, guest_os_type=guest_os_type,
                     type=msg.type or c.ZSTACK_IMAGE_TYPE, download=simulate(url))
