"""Libvirt domain XML for ZStack's ``/vm/start`` command: pure functions.

The shape follows ZStack's kvmagent (``vm_plugin.py``): the domain is named by
the VM uuid, carries the VM's internal id in ``<metadata><zs:zstack>``, disks
are file-backed qcow2 on virtio, NICs are bridge interfaces. Only what a
plain VM needs is built here; no cdrom, no addons.
"""

from __future__ import annotations

import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from typing import Any

#: ZStack's metadata namespace (kvmagent ``ZS_XML_NAMESPACE``).
ZS_NAMESPACE = "http://zstack.org"

# Registered so the metadata serialises as ``zs:zstack`` like ZStack's, not ``ns0:``.
ET.register_namespace("zs", ZS_NAMESPACE)

#: ZStack's bootDev values -> libvirt ``<boot dev>``.
_BOOT_DEVS = {"hd": "hd", "harddisk": "hd", "cdrom": "cdrom", "network": "network"}

#: Machine type by guest architecture; ``pc`` (i440fx) is the one every qemu has.
_MACHINES = {"x86_64": "pc", "aarch64": "virt"}


def device_letters(index: int) -> str:
    """``0 -> a``, ``25 -> z``, ``26 -> aa``: the suffix of a disk target name."""
    if index < 0:
        raise ValueError(f"negative device index {index}")
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def disk_target(volume: dict[str, Any]) -> tuple[str, str]:
    """``(dev, bus)`` of a VolumeTO: ``vda`` for deviceId 0, ``vdb`` for 1, ...

    The name depends only on ``deviceId`` so that attach and detach (and a
    redefinition) agree on it. ``useVirtioSCSI`` (ZStack's flag) puts the
    volume on the virtio-scsi controller as ``sdX``; non-virtio volumes go on
    IDE as ``hdX``.
    """
    device_id = int(volume.get("deviceId") or 0)
    if volume.get("useVirtioSCSI"):
        return "sd" + device_letters(device_id), "scsi"
    if volume.get("useVirtio", True) is False:
        return "hd" + device_letters(device_id), "ide"
    return "vd" + device_letters(device_id), "virtio"


def libvirt_uuid(vm_uuid: str) -> str | None:
    """The dashed form libvirt wants of a ZStack uuid (32 hex digits), or
    ``None`` when ``vm_uuid`` is not a uuid (libvirt then makes one up)."""
    try:
        return str(uuidlib.UUID(vm_uuid))
    except (ValueError, AttributeError, TypeError):
        return None


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _disk_element(volume: dict[str, Any]) -> ET.Element:
    path = volume.get("installPath")
    if not path:
        raise ValueError(f"volume {volume.get('volumeUuid')} has no installPath")
    dev, bus = disk_target(volume)
    disk = ET.Element("disk", {"type": "file", "device": "disk"})
    # cache 'none' (O_DIRECT) is ZStack's default; an explicit cacheMode wins.
    _sub(disk, "driver", name="qemu", type=volume.get("format") or "qcow2",
         cache=volume.get("cacheMode") or "none")
    _sub(disk, "source", file=path)
    _sub(disk, "target", dev=dev, bus=bus)
    if volume.get("volumeUuid"):
        # The guest sees the volume uuid as the disk serial, as on ZStack.
        _sub(disk, "serial", str(volume["volumeUuid"]))
    return disk


def _interface_element(nic: dict[str, Any]) -> ET.Element:
    if not nic.get("bridgeName"):
        raise ValueError(f"nic {nic.get('uuid')} has no bridgeName")
    if not nic.get("mac"):
        raise ValueError(f"nic {nic.get('uuid')} has no mac")
    iface = ET.Element("interface", {"type": "bridge"})
    _sub(iface, "mac", address=str(nic["mac"]).lower())
    _sub(iface, "source", bridge=str(nic["bridgeName"]))
    name = nic.get("nicInternalName")
    # A tap name must fit IFNAMSIZ and must not use libvirt's reserved 'vnet' prefix.
    if name and re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name) and not name.startswith(("vnet", "macvtap")):
        _sub(iface, "target", dev=name)
    _sub(iface, "model", type="virtio" if nic.get("useVirtio", True) is not False else "e1000")
    if nic.get("mtu"):
        _sub(iface, "mtu", size=str(int(nic["mtu"])))
    return iface


def _tostring(el: ET.Element) -> str:
    ET.indent(el)
    return ET.tostring(el, encoding="unicode")


def disk_xml(volume: dict[str, Any]) -> str:
    """The ``<disk>`` of a VolumeTO, for the domain and for hot (de)attach."""
    return _tostring(_disk_element(volume))


def interface_xml(nic: dict[str, Any]) -> str:
    """The ``<interface type='bridge'>`` of a NicTO."""
    return _tostring(_interface_element(nic))


def domain_xml(spec: dict[str, Any], virt_type: str) -> str:
    """The domain of a ``/vm/start`` command; ``virt_type`` is ``kvm`` or ``qemu`` (TCG)."""
    if virt_type not in ("kvm", "qemu"):
        raise ValueError(f"unknown virt type {virt_type!r}")
    vm_uuid = spec["vmInstanceUuid"]
    memory_kib = max(int(spec["memory"]) // 1024, 1)
    cpus = max(int(spec.get("cpuNum") or 1), 1)
    arch = spec.get("imageArchitecture") or "x86_64"

    root = ET.Element("domain", {"type": virt_type})
    _sub(root, "name", vm_uuid)
    full_uuid = libvirt_uuid(vm_uuid)
    if full_uuid:
        _sub(root, "uuid", full_uuid)
    if spec.get("vmName"):
        _sub(root, "description", str(spec["vmName"]))
    meta = _sub(root, "metadata")
    zs = _sub(meta, f"{{{ZS_NAMESPACE}}}zstack")
    # Children without namespace, as ZStack's find_zstack_metadata_node expects.
    _sub(zs, "internalId", str(spec.get("vmInternalId", "")))
    if spec.get("hostManagementIp"):
        _sub(zs, "hostManagementIp", str(spec["hostManagementIp"]))

    _sub(root, "memory", str(memory_kib), unit="KiB")
    _sub(root, "currentMemory", str(memory_kib), unit="KiB")
    _sub(root, "vcpu", str(cpus), placement="static")
    sockets, cores = spec.get("socketNum"), spec.get("cpuOnSocket")
    if sockets and cores and int(sockets) * int(cores) == cpus:
        cpu = _sub(root, "cpu")
        _sub(cpu, "topology", sockets=str(int(sockets)), cores=str(int(cores)), threads="1")

    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch=arch, machine=_MACHINES.get(arch))
    boots = [_BOOT_DEVS[b.lower()] for b in spec.get("bootDev") or [] if str(b).lower() in _BOOT_DEVS]
    for dev in boots or ["hd"]:
        _sub(os_el, "boot", dev=dev)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    # 'preserve' keeps a crashed domain around so the agent can report Crashed.
    _sub(root, "on_crash", "preserve")

    devices = _sub(root, "devices")
    root_volume = dict(spec["rootVolume"])
    root_volume.setdefault("deviceId", 0)
    devices.append(_disk_element(root_volume))
    for volume in sorted(spec.get("dataVolumes") or [], key=lambda v: int(v.get("deviceId") or 0)):
        devices.append(_disk_element(volume))
    for nic in sorted(spec.get("nics") or [], key=lambda n: int(n.get("deviceId") or 0)):
        devices.append(_interface_element(nic))
    graphics = _sub(devices, "graphics", type="vnc", port="-1", autoport="yes", listen="127.0.0.1")
    _sub(graphics, "listen", type="address", address="127.0.0.1")
    # Always there so that a virtio-scsi volume can be hot-plugged later; SCSI
    # disks, unlike virtio-blk ones, unplug without the guest's help.
    _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    _sub(devices, "serial", type="pty")
    _sub(devices, "console", type="pty")
    _sub(devices, "memballoon", model="virtio")
    return _tostring(root)
