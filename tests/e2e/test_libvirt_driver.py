"""The libvirt driver against a real libvirtd and real qemu domains.

The test makes its own network namespace, runs libvirtd in it and drives a
LibvirtDriver there (through ``tests.support.libvirt_driver_runner``), as the
agent of a libvirt test host would. Guests have no OS: a graceful stop always
runs into its timeout, and a virtio-blk disk cannot be hot-unplugged (the
guest must acknowledge it), while a virtio-scsi one can.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from tests.support.libvirt_driver_runner import RemoteDriver, RemoteError
from tests.support.libvirtd import Libvirtd, LibvirtdError

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NS = "zslv-test"
URI = "qemu:///system"
#: Under /var/lib so that libvirt-qemu can traverse to the disks (not root's /tmp).
DATA_ROOT = "/var/lib/zstack-test"
MiB = 1024 * 1024
#: The name (domain description) of every VM this module makes.
VM_NAME = "zs-libvirt-driver-test"

if os.geteuid() != 0 or not shutil.which("libvirtd") or not shutil.which("qemu-img"):
    # Part of the suite: missing parts fail it, unless skipping is asked for.
    if os.environ.get("ZSTACK_E2E_SKIP") == "1":
        pytest.skip("needs root, libvirtd and qemu-img", allow_module_level=True)
    pytest.fail("the libvirt driver tests need root, libvirtd and qemu-img (ZSTACK_E2E_SKIP=1 skips them)",
                pytrace=False)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=check)


def ns_ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "-n", NS, *args, check=check)


def virsh(*args: str, check: bool = True) -> str:
    return sh("virsh", "-c", URI, *args, check=check).stdout.strip()


def link(name: str) -> dict | None:
    proc = ns_ip("-j", "-d", "link", "show", "dev", name, check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def ipv4(dev: str) -> list[str]:
    out = json.loads(ns_ip("-j", "-4", "addr", "show", "dev", dev).stdout or "[]")
    return [f"{a['local']}/{a['prefixlen']}" for i in out for a in i.get("addr_info", [])]


def add_port(name: str) -> None:
    """A stand-in physical interface: dummy if the kernel has it, else one end of a veth."""
    if ns_ip("link", "add", name, "type", "dummy", check=False).returncode != 0:
        ns_ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p")
        ns_ip("link", "set", f"{name}p", "up")
    ns_ip("link", "set", name, "up")


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def kill_leftovers() -> None:
    """End what a killed earlier run of this module left in its namespace (its libvirtd,
    virtlogd and qemus: they would keep the next libvirtd from starting)."""
    if not os.path.exists(f"/run/netns/{NS}"):
        return
    pids = [int(p) for p in sh("ip", "netns", "pids", NS, check=False).stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not sh("ip", "netns", "pids", NS, check=False).stdout.strip(), timeout=10)
    sh("ip", "netns", "del", NS)


@pytest.fixture(scope="module")
def netns():
    kill_leftovers()
    sh("ip", "netns", "add", NS)
    try:
        ns_ip("link", "set", "lo", "up")
        yield NS
    finally:
        sh("ip", "netns", "del", NS, check=False)


@pytest.fixture(scope="module")
def libvirtd(netns, tmp_path_factory):
    daemon = Libvirtd(netns, log_file=str(tmp_path_factory.mktemp("libvirtd") / "libvirtd.log"))
    # Only one libvirtd fits on the machine: give another test's a while to finish.
    deadline = time.monotonic() + 180
    while True:
        try:
            daemon.start()
            break
        except LibvirtdError as e:
            if "already runs" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(2)
    try:
        # Domains of a killed earlier run are still defined: they are ours by description.
        for name in virsh("list", "--all", "--name").split():
            if virsh("desc", name, check=False) == VM_NAME:
                virsh("destroy", name, check=False)
                virsh("undefine", name, "--nvram", check=False)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def storage():
    os.makedirs(DATA_ROOT, exist_ok=True)
    os.chmod(DATA_ROOT, 0o755)
    for stale in glob.glob(os.path.join(DATA_ROOT, "libvirt-driver-*")):
        shutil.rmtree(stale, ignore_errors=True)  # of a killed earlier run
    path = tempfile.mkdtemp(prefix="libvirt-driver-", dir=DATA_ROOT)
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remote(netns: str, **config) -> RemoteDriver:
    return RemoteDriver(netns, {"libvirt_uri": URI, "vm_watch_interval": 1, "volume_detach_timeout": 2,
                                **config})


@pytest.fixture(scope="module")
def driver(libvirtd, netns):
    d = remote(netns)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def vm_uuids(libvirtd):
    """VM uuids for a test; whatever the test leaves of them is destroyed and undefined."""
    made: list[str] = []

    def new() -> str:
        made.append(uuid.uuid4().hex)
        return made[-1]

    yield new
    for name in made:
        virsh("destroy", name, check=False)
        virsh("undefine", name, "--nvram", check=False)


def vm_spec(vm_uuid: str, root: str, bridge: str, **over) -> dict:
    spec = {
        "vmInstanceUuid": vm_uuid, "vmInternalId": 7, "vmName": VM_NAME, "memory": 64 * MiB,
        "cpuNum": 1, "cpuSpeed": 0, "socketNum": 1, "cpuOnSocket": 1, "bootDev": ["hd"],
        "rootVolume": {"volumeUuid": "root-" + vm_uuid[:8], "installPath": root, "deviceId": 0,
                       "deviceType": "file", "type": "Root", "format": "qcow2", "useVirtio": True,
                       "cacheMode": "none", "primaryStorageType": "LocalStorage"},
        "dataVolumes": [],
        "nics": [{"uuid": "nic-" + vm_uuid[:8], "mac": "fa:16:3e:12:34:56", "ips": ["10.9.0.5"],
                  "bridgeName": bridge, "physicalInterface": "zsv1", "nicInternalName": "vnic7.0",
                  "deviceId": 0, "useVirtio": True, "mtu": 1500, "l2NetworkUuid": "l2"}],
        "imagePlatform": "Linux", "imageArchitecture": "x86_64", "timeout": 60,
    }
    spec.update(over)
    return spec


def data_volume(path: str, device_id: int, **over) -> dict:
    return {"volumeUuid": f"data-{device_id}", "installPath": path, "deviceId": device_id,
            "deviceType": "file", "type": "Data", "format": "qcow2", "useVirtio": True, **over}


def state(vm_uuid: str) -> str:
    return virsh("domstate", vm_uuid, check=False)


def live_targets(vm_uuid: str, inactive: bool = False) -> list[str]:
    out = virsh("domblklist", vm_uuid, *(["--inactive"] if inactive else []))
    return [line.split()[0] for line in out.splitlines()[2:] if line.strip()]


# -- host -------------------------------------------------------------------------------


def test_versions(driver):
    versions = driver.versions()
    assert versions["libvirtVersion"].count(".") == 2
    assert versions["qemuVersion"].count(".") == 2
    assert versions["libvirtVersion"] in virsh("version")


# -- bridges ----------------------------------------------------------------------------


def test_bridge_lifecycle(driver, netns):
    add_port("zsv0")
    ns_ip("addr", "add", "10.250.0.2/24", "dev", "zsv0")
    ns_ip("route", "add", "default", "via", "10.250.0.1", "dev", "zsv0")

    driver.create_bridge("br_zsv0", "zsv0", None, 1400)
    assert driver.check_bridge("br_zsv0") is True
    assert link("zsv0")["master"] == "br_zsv0"
    assert link("br_zsv0")["mtu"] == 1400
    assert link("br_zsv0")["address"] == link("zsv0")["address"]
    # The host stays reachable: its address and default route moved to the bridge.
    assert ipv4("br_zsv0") == ["10.250.0.2/24"] and ipv4("zsv0") == []
    assert "dev br_zsv0" in ns_ip("route", "show", "default").stdout

    driver.create_bridge("br_zsv0", "zsv0", None, None)  # idempotent
    assert link("zsv0")["master"] == "br_zsv0"

    with pytest.raises(RemoteError, match="does not exist"):
        driver.create_bridge("br_nope", "nope0", None, None)
    add_port("zsv9")
    with pytest.raises(RemoteError, match="already belongs to bridge br_zsv0"):
        driver.create_bridge("br_other", "zsv0", None, None)

    driver.delete_bridge("br_zsv0", "zsv0", None)
    assert driver.check_bridge("br_zsv0") is False and link("br_zsv0") is None
    assert ipv4("zsv0") == ["10.250.0.2/24"]
    assert "dev zsv0" in ns_ip("route", "show", "default").stdout
    driver.delete_bridge("br_zsv0", "zsv0", None)  # missing is fine


def test_vlan_bridge(driver, netns):
    add_port("zsv2")
    try:
        driver.create_bridge("br_zsv2_100", "zsv2", 100, None)
    except RemoteError as e:
        # This kernel may lack 802.1Q; then the error has to say so.
        assert "cannot create VLAN device zsv2.100" in str(e)
        assert link("br_zsv2_100") is None
        return
    assert link("zsv2.100")["master"] == "br_zsv2_100"
    assert link("zsv2.100")["linkinfo"]["info_data"]["id"] == 100
    driver.create_bridge("br_zsv2_100", "zsv2", 100, None)
    driver.delete_bridge("br_zsv2_100", "zsv2", 100)
    assert link("br_zsv2_100") is None and link("zsv2.100") is None


# -- local storage ----------------------------------------------------------------------


def test_local_storage(driver, storage):
    ps = os.path.join(storage, "ps")
    total, available = driver.storage_capacity(os.path.join(ps, "not", "yet"))
    assert 0 < available <= total
    driver.init_storage(ps)
    assert os.path.isdir(ps)

    base = os.path.join(ps, "rootVolumes", "acct-a", "vol-aaaa", "aaaa.qcow2")
    actual = driver.create_empty_volume(base, 64 * MiB, None)
    assert 0 < actual < MiB
    info = json.loads(sh("qemu-img", "info", "--output=json", base).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 * MiB
    # Made again (a retry, a volume attached again): the file is left as it is.
    driver.create_empty_volume(base, 128 * MiB, None)
    assert json.loads(sh("qemu-img", "info", "--output=json", base).stdout)["virtual-size"] == 64 * MiB

    child = os.path.join(ps, "rootVolumes", "acct-a", "vol-bbbb", "bbbb.qcow2")
    driver.create_empty_volume(child, 0, base)
    info = json.loads(sh("qemu-img", "info", "--output=json", child).stdout)
    assert info["backing-filename"] == base and info["virtual-size"] == 64 * MiB

    driver.delete_bits(child)
    driver.delete_bits(base)
    assert not os.path.exists(os.path.dirname(child)) and not os.path.exists(os.path.dirname(base))
    assert os.path.isdir(os.path.join(ps, "rootVolumes", "acct-a"))
    driver.delete_bits(base)  # missing is fine


# -- VMs --------------------------------------------------------------------------------


def test_vm_lifecycle(driver, netns, storage, vm_uuids):
    add_port("zsv1")
    driver.create_bridge("br_zsv1", "zsv1", None, None)
    vols = os.path.join(storage, "vm")
    root = os.path.join(vols, "vol-root", "root.qcow2")
    data = os.path.join(vols, "vol-data", "data.qcow2")
    scsi = os.path.join(vols, "vol-scsi", "scsi.qcow2")
    for path, size in ((root, 64), (data, 32), (scsi, 16)):
        driver.create_empty_volume(path, size * MiB, None)
    vm = vm_uuids()
    spec = vm_spec(vm, root, "br_zsv1")
    driver.watch()

    started = time.monotonic()
    driver.start_vm(spec)
    start_seconds = time.monotonic() - started
    assert state(vm) == "running", f"start took {start_seconds:.2f}s"
    assert vm in virsh("list", "--name").split()
    assert driver.vm_states()[vm] == "Running"
    xml = virsh("dumpxml", vm)
    virt_type = "kvm" if "type='kvm'" in xml else "qemu"
    assert "<source bridge='br_zsv1'/>" in xml and "fa:16:3e:12:34:56" in xml
    assert "<internalId>7</internalId>" in xml
    assert link("vnic7.0")["master"] == "br_zsv1"  # the tap is in the namespace, on the bridge
    print(f"\n{virt_type} domain started in {start_seconds:.2f}s")
    driver.start_vm(spec)  # already running: nothing to do

    driver.pause_vm(vm, 10)
    assert state(vm) == "paused" and driver.vm_states()[vm] == "Paused"
    driver.resume_vm(vm, 10)
    assert state(vm) == "running"

    domid = virsh("domid", vm)
    driver.reboot_vm(vm, 1)  # no OS: the graceful part times out, then it restarts
    assert state(vm) == "running" and virsh("domid", vm) != domid

    # A virtio-blk data volume: live attach works, the blank guest never lets it go.
    blk = data_volume(data, 1)
    driver.attach_volume(vm, blk)
    assert "vdb" in live_targets(vm) and "vdb" in live_targets(vm, inactive=True)
    assert f"<source file='{data}'" in virsh("dumpxml", vm)
    driver.attach_volume(vm, blk)  # already attached: nothing to do
    with pytest.raises(RemoteError, match="did not release the disk"):
        driver.detach_volume(vm, blk)
    assert "vdb" in live_targets(vm, inactive=True)  # a failed detach leaves the definition

    # A virtio-scsi one unplugs without the guest.
    scsi_vol = data_volume(scsi, 2, useVirtioSCSI=True)
    driver.attach_volume(vm, scsi_vol)
    assert "sdc" in live_targets(vm)
    driver.detach_volume(vm, scsi_vol)
    assert "sdc" not in live_targets(vm) and "sdc" not in live_targets(vm, inactive=True)

    driver.stop_vm(vm, "cold", 10)
    assert state(vm) == "shut off"
    assert driver.vm_states()[vm] == "Shutdown"
    driver.stop_vm(vm, "cold", 10)  # stopped: nothing to do
    # Shut off, the disk comes off the definition at once.
    driver.detach_volume(vm, blk)
    assert "vdb" not in live_targets(vm, inactive=True)
    driver.attach_volume(vm, blk)
    assert "vdb" in live_targets(vm, inactive=True)

    # Redefined from the command when started again.
    driver.start_vm(vm_spec(vm, root, "br_zsv1", cpuNum=2, dataVolumes=[blk]))
    assert state(vm) == "running" and "<vcpu placement='static'>2</vcpu>" in virsh("dumpxml", vm)
    started = time.monotonic()
    driver.stop_vm(vm, "grace", 1)  # ACPI is ignored by a guest without OS: destroyed at the timeout
    assert state(vm) == "shut off" and time.monotonic() - started >= 1

    # Everything so far was the driver's own doing: nothing to report.
    time.sleep(1.5)
    assert driver.events() == []

    driver.start_vm(spec)
    virsh("destroy", vm)  # behind the driver's back
    assert wait_for(lambda: [e for e in driver.events() if e == [vm, "Shutdown"]])
    virsh("start", vm)
    assert wait_for(lambda: [e for e in driver.events() if e == [vm, "Running"]])
    virsh("suspend", vm)
    assert wait_for(lambda: [e for e in driver.events() if e == [vm, "Paused"]])

    driver.destroy_vm(vm)
    assert vm not in virsh("list", "--all", "--name").split()
    assert vm not in driver.vm_states()
    driver.destroy_vm(vm)  # unknown: nothing to do
    time.sleep(1.5)
    assert driver.events() == []
    assert link("vnic7.0") is None

    for path in (root, data, scsi):
        driver.delete_bits(path)
        assert not os.path.exists(os.path.dirname(path))
    driver.delete_bridge("br_zsv1", "zsv1", None)


def test_tcg_domain(libvirtd, netns, storage, vm_uuids):
    """Without KVM (forced here) the same VM runs under TCG."""
    tcg = remote(netns, virt_type="qemu")
    try:
        add_port("zsv3")
        tcg.create_bridge("br_zsv3", "zsv3", None, None)
        root = os.path.join(storage, "tcg", "vol-root", "root.qcow2")
        tcg.create_empty_volume(root, 64 * MiB, None)
        vm = vm_uuids()
        spec = vm_spec(vm, root, "br_zsv3")
        spec["nics"][0]["nicInternalName"] = "vnic8.0"
        tcg.start_vm(spec)
        assert state(vm) == "running" and "type='qemu'" in virsh("dumpxml", vm)
        tcg.destroy_vm(vm)
        assert vm not in virsh("list", "--all", "--name").split()
        tcg.delete_bits(root)
    finally:
        tcg.close()


def test_unknown_vm(driver):
    vm = uuid.uuid4().hex
    driver.stop_vm(vm, "grace", 1)
    driver.destroy_vm(vm)
    with pytest.raises(RemoteError, match="not on this host"):
        driver.pause_vm(vm, 1)
    with pytest.raises(RemoteError, match="not on this host"):
        driver.attach_volume(vm, data_volume("/dev/null", 1))


def test_reconnects_after_libvirtd_restart(driver, libvirtd, netns, storage, vm_uuids):
    """The driver survives a restart of libvirtd: calls and the watch go on."""
    driver.watch()
    driver.versions()
    libvirtd.stop()
    libvirtd.start()
    assert driver.versions()["libvirtVersion"]

    add_port("zsv4")
    driver.create_bridge("br_zsv4", "zsv4", None, None)
    root = os.path.join(storage, "reconnect", "vol-root", "root.qcow2")
    driver.create_empty_volume(root, 64 * MiB, None)
    vm = vm_uuids()
    spec = vm_spec(vm, root, "br_zsv4")
    spec["nics"][0]["nicInternalName"] = "vnic9.0"
    driver.start_vm(spec)
    driver.events()  # whatever the restart showed
    virsh("destroy", vm)
    assert wait_for(lambda: [e for e in driver.events() if e == [vm, "Shutdown"]])
    driver.destroy_vm(vm)
    driver.delete_bits(root)
