"""A driver without a hypervisor: VMs, bridges and volumes are records.

It lets one machine play many hosts (scale tests) and lets tests run without
KVM. The records are kept in memory and in ``<state_dir>/simulated.json`` so
that, like a real host whose qemu processes outlive the agent, a restarted
agent still has its running VMs. Nothing is written to the file system besides
that file: volumes cost no disk, storage directories are not created.

Failures are injected with :attr:`fail_paths` (config ``simulated_fail_paths``):
an operation fails when its command path (``/vm/start``) or one of the
volume/storage paths it touches is listed. :meth:`set_vm_state` changes a VM
"behind the MN's back" and tells the watchers, as libvirt events would.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import threading
import time
from typing import Any, Iterable

from agents.kvm.drivers.base import (CRASHED, NO_STATE, PAUSED, RUNNING, SHUTDOWN, Driver, DriverError,
                                     StateListener)
from agents.kvm.hostinfo import machine_capacity

log = logging.getLogger(__name__)

STATE_FILE = "simulated.json"
VM_STATES = (RUNNING, SHUTDOWN, PAUSED, CRASHED, NO_STATE)
#: What an empty qcow2 takes on disk (its header and first tables).
EMPTY_QCOW2_ACTUAL_SIZE = 196_616
#: Capacity reported for a storage path with no existing file system above it.
FALLBACK_STORAGE_CAPACITY = 100 * 2**40
LIBVIRT_VERSION = "8.0.0"
QEMU_VERSION = "6.2.0"


class SimulatedDriver(Driver):
    """Pretends to be a KVM host; see the module docstring."""

    name = "simulated"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._lock = threading.RLock()
        self._listeners: list[StateListener] = []
        self._path = os.path.join(config.state_dir, STATE_FILE)
        self.fail_paths: set[str] = set(getattr(config, "simulated_fail_paths", None) or ())
        #: vm uuid -> {"state", "spec" (the /vm/start command), "volumes": {key: VolumeTO}}
        self.vms: dict[str, dict[str, Any]] = {}
        #: bridge name -> {"physicalInterface", "vlan", "mtu"}
        self.bridges: dict[str, dict[str, Any]] = {}
        #: install path -> virtual size in bytes
        self.volumes: dict[str, int] = {}
        #: storage paths /localstorage/init was given
        self.storages: set[str] = set()
        self._load()

    # -- host ---------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        return {"libvirtVersion": LIBVIRT_VERSION, "qemuVersion": QEMU_VERSION}

    def host_capacity(self) -> dict[str, int]:
        capacity = machine_capacity()
        if self.config.simulated_cpu_num:
            capacity["cpuNum"] = int(self.config.simulated_cpu_num)
        if self.config.simulated_memory:
            # The machine's own use means nothing for a pretend host: count its VMs'.
            capacity["totalMemory"] = int(self.config.simulated_memory)
            with self._lock:
                capacity["usedMemory"] = sum(int(vm["spec"].get("memory") or 0) for vm in self.vms.values()
                                             if vm["state"] in (RUNNING, PAUSED))
        return capacity

    def watch(self, listener: StateListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def close(self) -> None:
        with self._lock:
            self._listeners.clear()

    # -- VMs ----------------------------------------------------------------------------

    def start_vm(self, spec: dict[str, Any]) -> None:
        vm_uuid = spec.get("vmInstanceUuid")
        if not vm_uuid:
            raise DriverError("vmInstanceUuid is missing")
        volumes = [spec.get("rootVolume")] + list(spec.get("dataVolumes") or [])
        volumes = [v for v in volumes if v]
        self._check_fail("/vm/start", vm_uuid, *(v.get("installPath") for v in volumes))
        self._take_time()
        with self._lock:
            vm = self.vms.get(vm_uuid)
            if vm and vm["state"] in (RUNNING, PAUSED):
                return  # already active: like virsh, starting it again changes nothing
            self.vms[vm_uuid] = {"state": RUNNING, "spec": copy.deepcopy(spec),
                                 "volumes": {_volume_key(v): copy.deepcopy(v) for v in volumes}}
            self._save()

    def stop_vm(self, vm_uuid: str, stop_type: str, timeout: float) -> None:
        self._check_fail("/vm/stop", vm_uuid)
        self._take_time()
        with self._lock:
            vm = self.vms.get(vm_uuid)
            if vm and vm["state"] != SHUTDOWN:
                vm["state"] = SHUTDOWN
                self._save()

    def reboot_vm(self, vm_uuid: str, timeout: float) -> None:
        self._check_fail("/vm/reboot", vm_uuid)
        self._take_time()
        with self._lock:
            self._vm(vm_uuid)["state"] = RUNNING
            self._save()

    def pause_vm(self, vm_uuid: str, timeout: float) -> None:
        self._check_fail("/vm/pause", vm_uuid)
        self._take_time()
        with self._lock:
            vm = self._vm(vm_uuid)
            if vm["state"] not in (RUNNING, PAUSED):
                raise DriverError(f"vm {vm_uuid} is {vm['state']}, only a running vm can be paused")
            vm["state"] = PAUSED
            self._save()

    def resume_vm(self, vm_uuid: str, timeout: float) -> None:
        self._check_fail("/vm/resume", vm_uuid)
        self._take_time()
        with self._lock:
            vm = self._vm(vm_uuid)
            if vm["state"] not in (RUNNING, PAUSED):
                raise DriverError(f"vm {vm_uuid} is {vm['state']}, only a paused vm can be resumed")
            vm["state"] = RUNNING
            self._save()

    def destroy_vm(self, vm_uuid: str) -> None:
        self._check_fail("/vm/destroy", vm_uuid)
        self._take_time()
        with self._lock:
            if self.vms.pop(vm_uuid, None) is not None:
                self._save()

    def vm_states(self) -> dict[str, str]:
        with self._lock:
            return {vm_uuid: vm["state"] for vm_uuid, vm in self.vms.items()}

    def attach_volume(self, vm_uuid: str, volume: dict[str, Any]) -> None:
        self._check_fail("/vm/attachdatavolume", vm_uuid, volume.get("installPath"))
        self._take_time()
        with self._lock:
            self._vm(vm_uuid)["volumes"][_volume_key(volume)] = copy.deepcopy(volume)
            self._save()

    def detach_volume(self, vm_uuid: str, volume: dict[str, Any]) -> None:
        self._check_fail("/vm/detachdatavolume", vm_uuid, volume.get("installPath"))
        self._take_time()
        with self._lock:
            if self._vm(vm_uuid)["volumes"].pop(_volume_key(volume), None) is not None:
                self._save()

    def attached_volumes(self, vm_uuid: str) -> list[dict[str, Any]]:
        """The VolumeTOs of a VM, root first (for tests)."""
        with self._lock:
            return copy.deepcopy(list(self._vm(vm_uuid)["volumes"].values()))

    # -- network ------------------------------------------------------------------------

    def create_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None = None,
                      mtu: int | None = None) -> None:
        path = "/network/l2vlan/createbridge" if vlan is not None else "/network/l2novlan/createbridge"
        self._check_fail(path, bridge_name)
        with self._lock:
            self.bridges[bridge_name] = {"physicalInterface": physical_interface, "vlan": vlan, "mtu": mtu}
            self._save()

    def check_bridge(self, bridge_name: str) -> bool:
        with self._lock:
            return bridge_name in self.bridges

    def delete_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None = None) -> None:
        path = "/network/l2vlan/deletebridge" if vlan is not None else "/network/l2novlan/deletebridge"
        self._check_fail(path, bridge_name)
        with self._lock:
            if self.bridges.pop(bridge_name, None) is not None:
                self._save()

    # -- local storage ------------------------------------------------------------------

    def storage_capacity(self, storage_path: str) -> tuple[int, int]:
        configured = int(self.config.simulated_storage_capacity or 0)
        if configured:
            prefix = storage_path.rstrip("/") + "/"
            with self._lock:
                used = sum(EMPTY_QCOW2_ACTUAL_SIZE for path in self.volumes if path.startswith(prefix))
            return configured, max(configured - used, 0)
        existing = _nearest_existing(storage_path)
        if existing is None:
            return FALLBACK_STORAGE_CAPACITY, FALLBACK_STORAGE_CAPACITY
        st = os.statvfs(existing)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def init_storage(self, storage_path: str) -> None:
        self._check_fail("/localstorage/init", storage_path)
        with self._lock:
            if storage_path not in self.storages:
                self.storages.add(storage_path)
                self._save()

    def create_empty_volume(self, install_path: str, size: int, backing_file: str | None = None) -> int:
        self._check_fail("/localstorage/volume/createempty", install_path)
        with self._lock:
            # A retried command, or a data volume attached again: it stays as it is.
            if install_path not in self.volumes:
                self.volumes[install_path] = int(size)
                self._save()
        return EMPTY_QCOW2_ACTUAL_SIZE

    def delete_bits(self, path: str) -> None:
        self._check_fail("/localstorage/delete", path)
        with self._lock:
            if self.volumes.pop(path, None) is not None:
                self._save()

    # -- test hooks ---------------------------------------------------------------------

    def set_vm_state(self, vm_uuid: str, state: str) -> None:
        """Change a VM's state as if it happened on the host by itself (the guest
        shut down, qemu crashed) and tell the watchers."""
        if state not in VM_STATES:
            raise DriverError(f"unknown vm state {state!r}; one of {', '.join(VM_STATES)}")
        with self._lock:
            self._vm(vm_uuid)["state"] = state
            self._save()
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(vm_uuid, state)
            except Exception:
                log.exception("vm state listener failed for vm %s", vm_uuid)

    def set_fail_paths(self, paths: Iterable[str]) -> None:
        """Replace the set of command/volume paths whose operations fail."""
        with self._lock:
            self.fail_paths = set(paths)

    # -- internals ----------------------------------------------------------------------

    def _vm(self, vm_uuid: str) -> dict[str, Any]:
        vm = self.vms.get(vm_uuid)
        if vm is None:
            raise DriverError(f"vm {vm_uuid} is not on this host")
        return vm

    def _check_fail(self, *paths: str | None) -> None:
        with self._lock:
            failing = [p for p in paths if p and p in self.fail_paths]
        if failing:
            raise DriverError(f"simulated failure of {', '.join(failing)}")

    def _take_time(self) -> None:
        delay = float(self.config.simulated_delay or 0)
        if delay > 0:
            time.sleep(delay)

    def _load(self) -> None:
        try:
            with open(self._path) as f:
                saved = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            # A broken file must not keep the agent from starting; it starts empty.
            log.error("ignoring unreadable %s: %s", self._path, e)
            return
        self.vms = saved.get("vms", {})
        self.bridges = saved.get("bridges", {})
        self.volumes = saved.get("volumes", {})
        self.storages = set(saved.get("storages", []))

    def _save(self) -> None:
        """Write all records atomically (rename), under ``self._lock``.

        No fsync: the file only has to survive an agent restart, not a power cut,
        and a simulated host with thousands of VMs rewrites it often."""
        data = {"vms": self.vms, "bridges": self.bridges, "volumes": self.volumes,
                "storages": sorted(self.storages)}
        directory = os.path.dirname(self._path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=STATE_FILE + ".", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self._path)
        except BaseException:
            _unlink_quietly(tmp)
            raise


def _volume_key(volume: dict[str, Any]) -> str:
    return volume.get("volumeUuid") or volume.get("installPath") or json.dumps(volume, sort_keys=True)


def _nearest_existing(path: str) -> str | None:
    """``path`` or its closest ancestor that exists; None for a relative path that
    leads nowhere."""
    current = os.path.abspath(path) if os.path.isabs(path) else path
    while current:
        if os.path.exists(current):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
