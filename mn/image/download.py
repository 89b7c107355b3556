"""The simulated download of an image to backup storage.

No bits move: the backup storage types of this MN are simulators. What a
real download would learn from the file, the simulator reads from the URL,
so tests and demos choose it:

* ``size``: the virtual size of the image's disk (what a root volume made
  from it takes on primary storage), a query parameter of the URL in bytes
  or with a binary unit: ``http://images.example/centos.qcow2?size=20G``;
  :data:`DEFAULT_SIMULATED_SIZE` when absent;
* ``actualSize``: what the image file takes on backup storage (what each
  copy reserves there); ``size`` when absent.

Units are K, M, G, T (powers of 1024, an optional trailing ``B`` or
``iB`` ignored, any case). Sizes below :data:`~mn.image.constants.MIN_IMAGE_SIZE`
are refused, as ZStack refuses images it finds that small.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

from mn.errors import OperationError, SysErrors
from mn.image.constants import MIN_IMAGE_SIZE

#: Size of an image whose URL names none: a small cloud image.
DEFAULT_SIMULATED_SIZE = 1024 ** 3

_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class SimulatedImage:
    """What downloading ``url`` gives, as a backup storage agent would report it."""

    size: int
    actual_size: int
    md5: str


def parse_size(text: str) -> int:
    """``"20G"`` -> 21474836480; ValueError if ``text`` is no size."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with K, M, G or T)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def simulate(url: str) -> SimulatedImage:
    """Sizes and checksum of the image at ``url``; OperationError SYS.1007 for a bad size hint."""
    query = parse_qs(urlsplit(url).query)
    try:
        size = _hint(query, "size", DEFAULT_SIMULATED_SIZE)
        actual_size = _hint(query, "actualSize", size)
    except ValueError as exc:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, f"url {url}: {exc}") from None
    for name, value in (("size", size), ("actualSize", actual_size)):
        if value < MIN_IMAGE_SIZE:
            raise OperationError.of(
                SysErrors.INVALID_ARGUMENT_ERROR,
                f"the image {name} get from url {url} is {value} bytes, it's too small for an image, "
                f"please check the url again.")
    # A checksum that is the same for the same URL, as a file's would be.
    return SimulatedImage(size=size, actual_size=actual_size, md5=hashlib.md5(url.encode()).hexdigest())


def _hint(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise ValueError(f"{name} is given {len(values)} times")
    return parse_size(values[0])


def install_path(backup_storage_url: str | None, media_type: str, image_uuid: str) -> str:
    """Where a copy lives on a backup storage (ZStack's simulator layout under the storage's URL)."""
    base = (backup_storage_url or "").rstrip("/")
    return f"{base}/{media_type}/{image_uuid}/{image_uuid}.img"
