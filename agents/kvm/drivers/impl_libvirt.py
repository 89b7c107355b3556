"""The KVM agent's real back end: qemu domains through libvirt.

VMs are libvirt domains named by the VM uuid (as ZStack's kvmagent names
them); bridges are made with iproute2; local-storage volumes are qcow2 files
made with ``qemu-img``. Behaviour follows ZStack's ``vm_plugin.py``,
``network_plugin.py`` and ``localstorage.py``.

State changes the driver did not cause are found by comparing every domain's
state with the one the driver last knew: libvirt lifecycle events trigger a
comparison at once, and a poll every ``vm_watch_interval`` seconds catches
what events miss (a dropped connection, a restarted libvirtd). The driver's
own operations update the known state when they finish, and VMs with an
operation under way are skipped, so its own doings are never reported.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any, Callable, Iterator, TypeVar

import libvirt

from agents.kvm.drivers import base
from agents.kvm.drivers.base import Driver, DriverError, StateListener
from agents.kvm.drivers.domain_xml import disk_xml, domain_xml, libvirt_uuid

log = logging.getLogger(__name__)

T = TypeVar("T")

#: libvirt domain state -> ZStack VM state (kvmagent ``Vm.power_state``).
_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: base.NO_STATE,
    libvirt.VIR_DOMAIN_RUNNING: base.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: base.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: base.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: base.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: base.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: base.CRASHED,
    # ZStack says "Suspended", which the MN's list of states does not have.
    libvirt.VIR_DOMAIN_PMSUSPENDED: base.PAUSED,
}

#: Errors after which the connection may be dead and worth one reconnect.
_CONNECTION_ERRORS = {
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_INTERNAL_ERROR,
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_RPC,
}

_UNDEFINE_FLAGS = 0
for _flag in ("VIR_DOMAIN_UNDEFINE_MANAGED_SAVE", "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
              "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA", "VIR_DOMAIN_UNDEFINE_NVRAM"):
    _UNDEFINE_FLAGS |= getattr(libvirt, _flag, 0)

#: Marks a VM whose state could not be read after an operation: adopt, don't report.
_UNKNOWN = object()


def _quiet_libvirt_errors(_ctx: Any, _err: Any) -> None:
    """libvirt prints every error to stderr by default; they reach us as exceptions."""


_event_loop_lock = threading.Lock()
_event_loop_started = False


def _ensure_event_loop() -> None:
    """Run libvirt's default event loop in a daemon thread, once per process.

    It must be registered before a connection is opened; it delivers domain
    events and runs the keepalive that notices a dead libvirtd. libvirt cannot
    unregister it, so it lives as long as the process.
    """
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.registerErrorHandler(_quiet_libvirt_errors, None)
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # noqa: BLE001 - the loop must survive
                    log.exception("libvirt event loop iteration failed")
                    time.sleep(1)

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


def _dotted(version: int) -> str:
    """libvirt's ``major * 1000000 + minor * 1000 + release`` as ``major.minor.release``."""
    return f"{version // 1000000}.{version // 1000 % 1000}.{version % 1000}"


def _message(err: libvirt.libvirtError) -> str:
    return err.get_error_message() or str(err)


def _kvm_usable() -> bool:
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


def _capabilities_offer_kvm(capabilities_xml: str, arch: str) -> bool:
    root = ET.fromstring(capabilities_xml)
    for guest in root.findall("guest"):
        arch_el = guest.find("arch")
        if guest.findtext("os_type") == "hvm" and arch_el is not None and arch_el.get("name") == arch:
            if any(d.get("type") == "kvm" for d in arch_el.findall("domain")):
                return True
    return False


def _supports_o_direct(path: str) -> bool:
    """Whether qemu can open ``path`` with cache 'none' (tmpfs, for one, cannot).
    A file that is not there (yet) gets the default; libvirt will complain about it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        return e.errno != errno.EINVAL
    os.close(fd)
    return True


def _find_disk(domain_xml_text: str, path: str) -> ET.Element | None:
    devices = ET.fromstring(domain_xml_text).find("devices")
    for disk in devices.findall("disk") if devices is not None else []:
        source = disk.find("source")
        if source is not None and source.get("file") == path:
            return disk
    return None


# -- iproute2 ----------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DriverError(f"cannot run 'ip {' '.join(args)}': {e}") from e
    if check and proc.returncode != 0:
        raise DriverError(f"'ip {' '.join(args)}' failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _link(name: str) -> dict[str, Any] | None:
    """``ip -d link show`` of one device as a dict, ``None`` when there is none."""
    proc = _ip("-j", "-d", "link", "show", "dev", name, check=False)
    if proc.returncode != 0:
        return None
    links = json.loads(proc.stdout or "[]")
    return links[0] if links else None


def _is_bridge(link: dict[str, Any] | None) -> bool:
    return bool(link) and link.get("linkinfo", {}).get("info_kind") == "bridge"


def _move_addresses(src: str, dest: str) -> None:
    """Move the IPv4 addresses and gateway routes of ``src`` to ``dest``, as ZStack
    does when it bridges an interface, so the host stays reachable through it."""
    addrs = json.loads(_ip("-j", "-4", "addr", "show", "dev", src).stdout or "[]")
    infos = [a for link in addrs for a in link.get("addr_info", []) if a.get("family") == "inet"]
    if not infos:
        return
    routes = [r for r in json.loads(_ip("-j", "-4", "route", "show", "dev", src).stdout or "[]")
              if r.get("gateway")]
    for info in infos:
        cidr = f"{info['local']}/{info['prefixlen']}"
        _ip("addr", "del", cidr, "dev", src)
        _ip("addr", "replace", cidr, "dev", dest)
    for route in routes:
        # The gateway routes went with the address; put them back on the new device.
        metric = ["metric", str(route["metric"])] if route.get("metric") else []
        _ip("route", "replace", route["dst"], "via", route["gateway"], "dev", dest, *metric)


# -- the driver --------------------------------------------------------------------------


class LibvirtDriver(Driver):
    """Runs VMs as libvirt/qemu domains on the machine (or network namespace) the agent is in.

    Config read (all optional): ``libvirt_uri`` (``qemu:///system``),
    ``vm_watch_interval`` (seconds between state polls, 2), ``virt_type``
    (force ``kvm`` or ``qemu``; found out by default), ``volume_detach_timeout``
    (seconds a guest gets to release a hot-unplugged disk, 10) and
    ``data_volume_bus`` (``virtio``, or ``scsi`` for virtio-scsi data volumes,
    which unplug without the guest's help).
    """

    name = "libvirt"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._uri = getattr(config, "libvirt_uri", None) or "qemu:///system"
        self._watch_interval = float(getattr(config, "vm_watch_interval", None) or 2.0)
        self._detach_timeout = float(getattr(config, "volume_detach_timeout", None) or 10.0)
        self._data_volume_bus = getattr(config, "data_volume_bus", None) or "virtio"
        self._forced_virt_type = getattr(config, "virt_type", None)
        self._virt_types: dict[str, str] = {}
        # Bridge changes read, then change links: one at a time.
        self._bridge_lock = threading.Lock()

        self._conn_lock = threading.RLock()
        self._conn: libvirt.virConnect | None = None
        self._event_ids: list[int] = []

        # Per-VM locks serialise operations on one VM (handlers run concurrently).
        self._vm_locks: dict[str, threading.RLock] = {}
        self._vm_locks_guard = threading.Lock()

        # What the watcher compares against; guarded by _state_lock.
        self._state_lock = threading.Lock()
        self._known: dict[str, Any] = {}
        self._busy: dict[str, int] = {}
        self._generation: dict[str, int] = {}
        self._seeded = False

        self._listener: StateListener | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        _ensure_event_loop()

    # -- connection ---------------------------------------------------------------------

    def _connection(self) -> libvirt.virConnect:
        with self._conn_lock:
            conn = self._conn
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
                log.warning("libvirt connection to %s is dead, reconnecting", self._uri)
                self._drop_connection()
            try:
                conn = libvirt.open(self._uri)
            except libvirt.libvirtError as e:
                raise DriverError(f"cannot connect to libvirt at {self._uri}: {_message(e)}") from e
            # Keepalive makes a dead libvirtd visible as isAlive() == False.
            with contextlib.suppress(libvirt.libvirtError):
                conn.setKeepAlive(5, 3)
            self._conn = conn
            if self._listener is not None:
                self._register_events(conn)
            return conn

    def _drop_connection(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
            ids, self._event_ids = self._event_ids, []
            if conn is None:
                return
            for cb_id in ids:
                with contextlib.suppress(libvirt.libvirtError):
                    conn.domainEventDeregisterAny(cb_id)
            with contextlib.suppress(libvirt.libvirtError):
                conn.unregisterCloseCallback()
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def _with_conn(self, what: str, body: Callable[[libvirt.virConnect], T]) -> T:
        """Run ``body`` on the connection; once more on a fresh one if the connection
        died under it (the operations are idempotent). libvirt errors become
        DriverErrors that start with ``what``."""
        conn = self._connection()
        try:
            return body(conn)
        except libvirt.libvirtError as e:
            alive = False
            with contextlib.suppress(libvirt.libvirtError):
                alive = bool(conn.isAlive())
            if alive or e.get_error_code() not in _CONNECTION_ERRORS:
                raise DriverError(f"{what}: {_message(e)}") from e
            log.warning("libvirt connection lost during '%s', retrying: %s", what, _message(e))
            with self._conn_lock:
                if self._conn is conn:
                    self._drop_connection()
        try:
            return body(self._connection())
        except libvirt.libvirtError as e:
            raise DriverError(f"{what}: {_message(e)}") from e

    @staticmethod
    def _lookup(conn: libvirt.virConnect, vm_uuid: str) -> libvirt.virDomain | None:
        try:
            return conn.lookupByName(vm_uuid)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _require(self, conn: libvirt.virConnect, vm_uuid: str) -> libvirt.virDomain:
        dom = self._lookup(conn, vm_uuid)
        if dom is None:
            raise DriverError(f"VM {vm_uuid} is not on this host")
        return dom

    # -- host ---------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        def body(conn: libvirt.virConnect) -> dict[str, str]:
            return {"libvirtVersion": _dotted(conn.getLibVersion()),
                    "qemuVersion": _dotted(conn.getVersion())}
        return self._with_conn("cannot read libvirt and qemu versions", body)

    def _virt_type(self, conn: libvirt.virConnect, arch: str) -> str:
        """``kvm`` when /dev/kvm works and libvirt offers kvm for ``arch``, else ``qemu`` (TCG)."""
        if self._forced_virt_type:
            return self._forced_virt_type
        if arch not in self._virt_types:
            kvm = _kvm_usable() and _capabilities_offer_kvm(conn.getCapabilities(), arch)
            self._virt_types[arch] = "kvm" if kvm else "qemu"
            log.info("VMs of arch %s run with %s", arch, self._virt_types[arch])
        return self._virt_types[arch]

    # -- watching -----------------------------------------------------------------------

    def watch(self, listener: StateListener) -> None:
        self._listener = listener
        with self._conn_lock:
            if self._conn is not None and not self._event_ids:
                self._register_events(self._conn)
        with contextlib.suppress(DriverError):
            self._connection()  # registers the events
            self._seed()
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch_loop, name="libvirt-vm-watch", daemon=True)
            self._watcher.start()

    def _register_events(self, conn: libvirt.virConnect) -> None:
        def on_lifecycle(_conn: Any, _dom: Any, _event: int, _detail: int, _opaque: Any) -> None:
            # Runs on the event loop thread: only wake the watcher, never block here.
            self._wake.set()

        def on_close(_conn: Any, reason: int, _opaque: Any) -> None:
            log.warning("libvirt closed the connection (reason %s)", reason)
            self._wake.set()

        try:
            self._event_ids.append(conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_lifecycle, None))
            conn.registerCloseCallback(on_close, None)
        except libvirt.libvirtError as e:
            # The poll still finds every change, only later.
            log.warning("cannot subscribe to libvirt domain events: %s", _message(e))

    def _seed(self) -> None:
        states = self.vm_states()
        with self._state_lock:
            for vm_uuid, state in states.items():
                if not self._busy.get(vm_uuid):
                    self._known.setdefault(vm_uuid, state)
            self._seeded = True

    def _watch_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._watch_interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                if not self._seeded:
                    self._seed()
                else:
                    self._check()
            except DriverError as e:
                log.warning("cannot read VM states: %s", e)
            except Exception:  # noqa: BLE001 - the watcher must survive
                log.exception("VM state watcher failed")

    def _check(self) -> None:
        """Report every VM whose state differs from the one known, and remember it."""
        with self._state_lock:
            generations = dict(self._generation)
        states = self.vm_states()
        reports: list[tuple[str, str]] = []
        with self._state_lock:
            for vm_uuid in set(states) | set(self._known):
                # An operation began or ended since the states were read: its
                # outcome is already known, or will be when it ends.
                if self._busy.get(vm_uuid) or self._generation.get(vm_uuid, 0) != generations.get(vm_uuid, 0):
                    continue
                old, new = self._known.get(vm_uuid), states.get(vm_uuid)
                if old is _UNKNOWN:
                    self._adopt(vm_uuid, new)
                elif new is None:
                    # Undefined behind our back: it is not running any more.
                    del self._known[vm_uuid]
                    if old != base.SHUTDOWN:
                        reports.append((vm_uuid, base.SHUTDOWN))
                elif old != new:
                    self._known[vm_uuid] = new
                    if not (old is None and new == base.SHUTDOWN):
                        reports.append((vm_uuid, new))
        listener = self._listener
        for vm_uuid, state in reports:
            log.info("VM %s changed state by itself: %s", vm_uuid, state)
            if listener is not None:
                try:
                    listener(vm_uuid, state)
                except Exception:  # noqa: BLE001 - a listener bug must not stop watching
                    log.exception("VM state listener failed for %s", vm_uuid)

    def _adopt(self, vm_uuid: str, state: str | None) -> None:
        if state is None:
            self._known.pop(vm_uuid, None)
        else:
            self._known[vm_uuid] = state

    @contextlib.contextmanager
    def _operation(self, vm_uuid: str) -> Iterator[None]:
        """Serialise operations on one VM and keep the watcher from reporting them."""
        with self._vm_locks_guard:
            lock = self._vm_locks.setdefault(vm_uuid, threading.RLock())
        with lock:
            with self._state_lock:
                self._busy[vm_uuid] = self._busy.get(vm_uuid, 0) + 1
                self._generation[vm_uuid] = self._generation.get(vm_uuid, 0) + 1
            try:
                yield
            finally:
                try:
                    state: Any = self._with_conn("read VM state", lambda c: self._state_of(c, vm_uuid))
                except DriverError:
                    state = _UNKNOWN
                with self._state_lock:
                    if state is _UNKNOWN:
                        self._known[vm_uuid] = _UNKNOWN
                    else:
                        self._adopt(vm_uuid, state)
                    self._busy[vm_uuid] -= 1
                    if not self._busy[vm_uuid]:
                        del self._busy[vm_uuid]
                    self._generation[vm_uuid] += 1

    def _state_of(self, conn: libvirt.virConnect, vm_uuid: str) -> str | None:
        dom = self._lookup(conn, vm_uuid)
        if dom is None:
            return None
        try:
            return _STATES.get(dom.state()[0], base.NO_STATE)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        self._listener = None
        self._drop_connection()

    # -- VMs ----------------------------------------------------------------------------

    def vm_states(self) -> dict[str, str]:
        def body(conn: libvirt.virConnect) -> dict[str, str]:
            states = {}
            for dom in conn.listAllDomains(0):
                try:
                    states[dom.name()] = _STATES.get(dom.state()[0], base.NO_STATE)
                except libvirt.libvirtError as e:
                    if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
            return states
        return self._with_conn("cannot list VMs", body)

    def start_vm(self, spec: dict[str, Any]) -> None:
        vm_uuid = spec["vmInstanceUuid"]
        spec = dict(spec, rootVolume=self._prepared(spec.get("rootVolume") or {}, data=False),
                    dataVolumes=[self._prepared(v) for v in spec.get("dataVolumes") or []])

        def body(conn: libvirt.virConnect) -> None:
            dom = self._lookup(conn, vm_uuid)
            if dom is not None and dom.isActive():
                state = dom.state()[0]
                if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED):
                    return
                if state == libvirt.VIR_DOMAIN_PAUSED:
                    dom.resume()
                    return
                # Crashed (kept by on_crash=preserve) or half shut down: start afresh.
                self._destroy(dom)
            try:
                xml = domain_xml(spec, self._virt_type(conn, spec.get("imageArchitecture") or "x86_64"))
            except (KeyError, ValueError, TypeError) as e:
                raise DriverError(f"bad start command for VM {vm_uuid}: {e}") from e
            wanted_uuid = libvirt_uuid(vm_uuid)
            if dom is not None and wanted_uuid and dom.UUIDString() != wanted_uuid:
                # Same name, other uuid: libvirt refuses to redefine; it is shut off, drop it.
                self._undefine(dom)
            log.debug("defining VM %s:\n%s", vm_uuid, xml)
            dom = conn.defineXML(xml)
            dom.create()

        with self._operation(vm_uuid):
            self._with_conn(f"cannot start VM {vm_uuid}", body)

    def stop_vm(self, vm_uuid: str, stop_type: str, timeout: float) -> None:
        def body(conn: libvirt.virConnect) -> None:
            dom = self._lookup(conn, vm_uuid)
            if dom is None or not dom.isActive():
                return
            self._stop(dom, stop_type, timeout)

        with self._operation(vm_uuid):
            self._with_conn(f"cannot stop VM {vm_uuid}", body)

    def _stop(self, dom: libvirt.virDomain, stop_type: str, timeout: float) -> None:
        if stop_type == "grace":
            try:
                dom.shutdown()  # ACPI power button; a guest without an OS ignores it
            except libvirt.libvirtError as e:
                log.debug("graceful shutdown of %s refused: %s", dom.name(), _message(e))
            if self._wait(lambda: not dom.isActive(), timeout):
                return
            log.info("VM %s did not shut down in %ss, destroying it", dom.name(), timeout)
        self._destroy(dom)

    def _destroy(self, dom: libvirt.virDomain) -> None:
        # qemu may take a moment to die (EBUSY from libvirt); ZStack retries too.
        for attempt in range(3):
            try:
                dom.destroy()
                return
            except libvirt.libvirtError as e:
                if e.get_error_code() in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
                    return  # not running (any more)
                if attempt == 2:
                    raise
                log.warning("destroying %s failed, retrying: %s", dom.name(), _message(e))
                time.sleep(1)

    def _undefine(self, dom: libvirt.virDomain) -> None:
        try:
            dom.undefineFlags(_UNDEFINE_FLAGS)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return
            # Old libvirts reject flags they do not know; the plain call still works.
            if e.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                raise
            dom.undefine()

    @staticmethod
    def _wait(done: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            if done():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def reboot_vm(self, vm_uuid: str, timeout: float) -> None:
        # ZStack reboots by stopping (gracefully, destroying at the timeout) and
        # starting again; unlike an ACPI reboot it works with any guest.
        def body(conn: libvirt.virConnect) -> None:
            dom = self._require(conn, vm_uuid)
            if dom.isActive():
                self._stop(dom, "grace", timeout)
            dom.create()

        with self._operation(vm_uuid):
            self._with_conn(f"cannot reboot VM {vm_uuid}", body)

    def pause_vm(self, vm_uuid: str, timeout: float) -> None:
        def body(conn: libvirt.virConnect) -> None:
            dom = self._require(conn, vm_uuid)
            state = dom.state()[0]
            if state == libvirt.VIR_DOMAIN_PAUSED:
                return
            if not dom.isActive():
                raise DriverError(f"cannot pause VM {vm_uuid}: it is not running")
            dom.suspend()
            if not self._wait(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED, timeout):
                raise DriverError(f"cannot pause VM {vm_uuid}: still not paused after {timeout}s")

        with self._operation(vm_uuid):
            self._with_conn(f"cannot pause VM {vm_uuid}", body)

    def resume_vm(self, vm_uuid: str, timeout: float) -> None:
        def body(conn: libvirt.virConnect) -> None:
            dom = self._require(conn, vm_uuid)
            if not dom.isActive():
                raise DriverError(f"cannot resume VM {vm_uuid}: it is not running")
            if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
                return
            dom.resume()
            if not self._wait(lambda: dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED, timeout):
                raise DriverError(f"cannot resume VM {vm_uuid}: still paused after {timeout}s")

        with self._operation(vm_uuid):
            self._with_conn(f"cannot resume VM {vm_uuid}", body)

    def destroy_vm(self, vm_uuid: str) -> None:
        def body(conn: libvirt.virConnect) -> None:
            dom = self._lookup(conn, vm_uuid)
            if dom is None:
                return
            if dom.isActive():
                self._destroy(dom)
            self._undefine(dom)

        with self._operation(vm_uuid):
            self._with_conn(f"cannot destroy VM {vm_uuid}", body)

    # -- volumes of VMs -----------------------------------------------------------------

    def _prepared(self, volume: dict[str, Any], data: bool = True) -> dict[str, Any]:
        """The volume as this host wants it: on the configured data volume bus (ZStack's
        useVirtioSCSI), and without O_DIRECT where its file system has none (tmpfs)."""
        volume = dict(volume)
        if data and self._data_volume_bus == "scsi" and "useVirtioSCSI" not in volume:
            volume["useVirtioSCSI"] = True
        path = volume.get("installPath")
        if not volume.get("cacheMode") and path and not _supports_o_direct(path):
            volume["cacheMode"] = "writeback"
        return volume

    @staticmethod
    def _check_data_volume(vm_uuid: str, volume: dict[str, Any]) -> str:
        path = volume.get("installPath")
        if not path:
            raise DriverError(f"volume {volume.get('volumeUuid')} of VM {vm_uuid} has no installPath")
        if volume.get("type") == "Root" or int(volume.get("deviceId") or 0) == 0:
            raise DriverError(f"volume {volume.get('volumeUuid')} is VM {vm_uuid}'s root volume")
        return path

    def attach_volume(self, vm_uuid: str, volume: dict[str, Any]) -> None:
        volume = self._prepared(volume)
        path = self._check_data_volume(vm_uuid, volume)
        if not os.path.exists(path):
            raise DriverError(f"cannot attach volume {volume.get('volumeUuid')}: {path} does not exist")
        xml = disk_xml(volume)

        def body(conn: libvirt.virConnect) -> None:
            dom = self._require(conn, vm_uuid)
            flags = 0
            # Only what is missing: a retried attach is not an error.
            if dom.isActive() and _find_disk(dom.XMLDesc(0), path) is None:
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            if _find_disk(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), path) is None:
                flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if flags:
                dom.attachDeviceFlags(xml, flags)

        with self._operation(vm_uuid):
            self._with_conn(f"cannot attach volume {volume.get('volumeUuid')} to VM {vm_uuid}", body)

    def detach_volume(self, vm_uuid: str, volume: dict[str, Any]) -> None:
        path = self._check_data_volume(vm_uuid, volume)
        what = f"cannot detach volume {volume.get('volumeUuid')} from VM {vm_uuid}"

        def body(conn: libvirt.virConnect) -> None:
            dom = self._require(conn, vm_uuid)
            # Live first and the definition only once the guest let go, so that a
            # failed detach leaves the VM as it was (ZStack waits the same way).
            live = _find_disk(dom.XMLDesc(0), path) if dom.isActive() else None
            if live is not None:
                alias = live.find("alias")
                try:
                    if alias is not None and alias.get("name"):
                        # Asynchronous: detachDeviceFlags would block 5s on a guest that does
                        # not answer; we wait ourselves, as long as configured.
                        dom.detachDeviceAlias(alias.get("name"), libvirt.VIR_DOMAIN_AFFECT_LIVE)
                    else:
                        dom.detachDeviceFlags(ET.tostring(live, encoding="unicode"),
                                              libvirt.VIR_DOMAIN_AFFECT_LIVE)
                except libvirt.libvirtError as e:
                    if "already in the process of unplug" not in _message(e):
                        raise
                gone = self._wait(lambda: not dom.isActive() or _find_disk(dom.XMLDesc(0), path) is None,
                                  self._detach_timeout)
                if not gone:
                    raise DriverError(
                        f"{what}: the guest did not release the disk in {self._detach_timeout:g}s "
                        "(a virtio-blk disk unplugs only with the guest OS's help)")
            config = _find_disk(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), path)
            if config is not None:
                dom.detachDeviceFlags(ET.tostring(config, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_CONFIG)

        with self._operation(vm_uuid):
            self._with_conn(what, body)

    # -- network ------------------------------------------------------------------------

    def create_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None = None,
                      mtu: int | None = None) -> None:
        with self._bridge_lock:
            self._create_bridge(bridge_name, physical_interface, vlan, mtu)

    def _create_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None,
                       mtu: int | None) -> None:
        if len(bridge_name) > 15:
            raise DriverError(f"bridge name {bridge_name} is longer than 15 characters")
        if _link(physical_interface) is None:
            raise DriverError(f"cannot create bridge {bridge_name}: "
                              f"physical interface {physical_interface} does not exist")
        port = physical_interface
        if vlan is not None:
            port = f"{physical_interface}.{int(vlan)}"
            if len(port) > 15:
                raise DriverError(f"VLAN device name {port} is longer than 15 characters")
            _ip("link", "set", "dev", physical_interface, "up")
            if _link(port) is None:
                proc = _ip("link", "add", "link", physical_interface, "name", port, "type", "vlan",
                           "id", str(int(vlan)), check=False)
                if proc.returncode != 0 and _link(port) is None:
                    raise DriverError(f"cannot create VLAN device {port}: {proc.stderr.strip()}")
        port_link = _link(port)
        if _is_bridge(port_link):
            raise DriverError(f"cannot create bridge {bridge_name}: {port} is itself a bridge")
        master = port_link.get("master") if port_link else None
        if master and master != bridge_name:
            raise DriverError(f"cannot create bridge {bridge_name}: {port} already belongs to bridge {master}")

        bridge = _link(bridge_name)
        if bridge is None:
            proc = _ip("link", "add", "name", bridge_name, "type", "bridge",
                       "stp_state", "0", "forward_delay", "0", check=False)
            bridge = _link(bridge_name)
            if bridge is None:
                raise DriverError(f"cannot create bridge {bridge_name}: {proc.stderr.strip()}")
        if not _is_bridge(bridge):
            raise DriverError(f"cannot create bridge {bridge_name}: a device of that name exists "
                              "and is not a bridge")
        if mtu:
            _ip("link", "set", "dev", port, "mtu", str(int(mtu)))
            _ip("link", "set", "dev", bridge_name, "mtu", str(int(mtu)))
        if master != bridge_name:
            _ip("link", "set", "dev", port, "master", bridge_name)
            # The bridge keeps the port's MAC, not the one of whichever tap comes next (as ZStack).
            if port_link and port_link.get("address"):
                _ip("link", "set", "dev", bridge_name, "address", port_link["address"])
        _ip("link", "set", "dev", port, "up")
        _ip("link", "set", "dev", bridge_name, "up")
        # Also when already enslaved: an earlier call may have died half way.
        # After 'up': a route through a device that is down is refused.
        _move_addresses(port, bridge_name)

    def check_bridge(self, bridge_name: str) -> bool:
        return _is_bridge(_link(bridge_name))

    def delete_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None = None) -> None:
        with self._bridge_lock:
            self._delete_bridge(bridge_name, physical_interface, vlan)

    def _delete_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None) -> None:
        bridge = _link(bridge_name)
        if bridge is not None:
            if not _is_bridge(bridge):
                raise DriverError(f"cannot delete bridge {bridge_name}: the device is not a bridge")
            if vlan is None and _link(physical_interface) is not None:
                # Give the interface back the addresses it had before it was bridged.
                _ip("link", "set", "dev", physical_interface, "nomaster")
                _move_addresses(bridge_name, physical_interface)
            proc = _ip("link", "del", "dev", bridge_name, check=False)
            if proc.returncode != 0 and _link(bridge_name) is not None:
                raise DriverError(f"cannot delete bridge {bridge_name}: {proc.stderr.strip()}")
        if vlan is not None:
            port = f"{physical_interface}.{int(vlan)}"
            if _link(port) is not None:
                proc = _ip("link", "del", "dev", port, check=False)
                if proc.returncode != 0 and _link(port) is not None:
                    raise DriverError(f"cannot delete VLAN device {port}: {proc.stderr.strip()}")

    # -- local storage ------------------------------------------------------------------

    def storage_capacity(self, storage_path: str) -> tuple[int, int]:
        path = os.path.abspath(storage_path)
        while not os.path.exists(path):
            path = os.path.dirname(path)
        st = os.statvfs(path)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def init_storage(self, storage_path: str) -> None:
        try:
            os.makedirs(storage_path, exist_ok=True)
        except OSError as e:
            raise DriverError(f"cannot create storage directory {storage_path}: {e}") from e

    def create_empty_volume(self, install_path: str, size: int, backing_file: str | None = None) -> int:
        if os.path.exists(install_path):
            # A retried command, or a data volume attached again: its bits stay.
            return os.stat(install_path).st_blocks * 512
        try:
            os.makedirs(os.path.dirname(install_path) or ".", exist_ok=True)
        except OSError as e:
            raise DriverError(f"cannot create the directory of volume {install_path}: {e}") from e
        cmd = ["qemu-img", "create", "-f", "qcow2"]
        if backing_file:
            cmd += ["-b", backing_file, "-F", self._image_format(backing_file)]
        cmd.append(install_path)
        if size or not backing_file:
            cmd.append(str(int(size)))
        self._run(cmd, f"cannot create volume {install_path}")
        return os.stat(install_path).st_blocks * 512

    def _image_format(self, path: str) -> str:
        """The format of a backing file (a template may be raw); qcow2 if unreadable."""
        try:
            out = self._run(["qemu-img", "info", "--output=json", "-U", path], f"cannot inspect {path}")
            return json.loads(out).get("format") or "qcow2"
        except (DriverError, ValueError):
            return "qcow2"

    @staticmethod
    def _run(cmd: list[str], what: str) -> str:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DriverError(f"{what}: {e}") from e
        if proc.returncode != 0:
            raise DriverError(f"{what}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def delete_bits(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise DriverError(f"cannot delete {path}: {e}") from e
        parent = os.path.dirname(path)
        # ZStack keeps each volume in its own vol-<uuid> directory; drop it once empty.
        if os.path.basename(parent).startswith("vol-"):
            with contextlib.suppress(OSError):
                os.rmdir(parent)
