"""The simulated driver, and loading drivers by name."""

import json
import os
import subprocess
import sys
import time

import pytest

from agents.kvm.config import AgentConfig
from agents.kvm.drivers import DRIVERS, available_drivers, load_driver
from agents.kvm.drivers.base import CRASHED, PAUSED, RUNNING, SHUTDOWN, DriverError
from agents.kvm.drivers.impl_simulated import EMPTY_QCOW2_ACTUAL_SIZE, SimulatedDriver
from agents.kvm.hostinfo import machine_capacity


@pytest.fixture
def config(tmp_path):
    return AgentConfig(driver="simulated", state_dir=str(tmp_path / "state"))


@pytest.fixture
def driver(config):
    return SimulatedDriver(config)


def spec(vm_uuid="vm-1", memory=2 * 2**30, data_volumes=()):
    return {"vmInstanceUuid": vm_uuid, "memory": memory, "cpuNum": 2,
            "rootVolume": {"volumeUuid": f"root-{vm_uuid}", "installPath": f"/ps/{vm_uuid}/root.qcow2",
                           "type": "Root", "deviceId": 0},
            "dataVolumes": list(data_volumes), "nics": []}


def test_lifecycle_states(driver):
    assert driver.vm_states() == {}
    driver.start_vm(spec())
    assert driver.vm_states() == {"vm-1": RUNNING}
    driver.pause_vm("vm-1", 10)
    assert driver.vm_states()["vm-1"] == PAUSED
    driver.resume_vm("vm-1", 10)
    driver.reboot_vm("vm-1", 10)
    assert driver.vm_states()["vm-1"] == RUNNING
    driver.stop_vm("vm-1", "grace", 10)
    assert driver.vm_states() == {"vm-1": SHUTDOWN}
    with pytest.raises(DriverError, match="only a running vm can be paused"):
        driver.pause_vm("vm-1", 10)
    driver.start_vm(spec())
    assert driver.vm_states() == {"vm-1": RUNNING}
    driver.destroy_vm("vm-1")
    assert driver.vm_states() == {}


def test_idempotent_operations_and_unknown_vms(driver):
    driver.stop_vm("nobody", "cold", 1)
    driver.destroy_vm("nobody")
    driver.start_vm(spec())
    driver.start_vm(spec(memory=1))  # already running: left alone
    assert driver.vms["vm-1"]["spec"]["memory"] == 2 * 2**30
    for operation in (driver.reboot_vm, driver.pause_vm, driver.resume_vm):
        with pytest.raises(DriverError, match="not on this host"):
            operation("nobody", 1)


def test_restart_keeps_vms_bridges_and_volumes(config, driver):
    driver.start_vm(spec("vm-1"))
    driver.start_vm(spec("vm-2"))
    driver.stop_vm("vm-2", "cold", 1)
    driver.create_bridge("br_eth0_10", "eth0", vlan=10)
    driver.create_empty_volume("/ps/vol-1.qcow2", 10 * 2**30)
    driver.init_storage("/ps")

    again = SimulatedDriver(config)
    assert again.vm_states() == {"vm-1": RUNNING, "vm-2": SHUTDOWN}
    assert again.check_bridge("br_eth0_10") and not again.check_bridge("br_eth0")
    assert again.volumes == {"/ps/vol-1.qcow2": 10 * 2**30}
    assert again.storages == {"/ps"}
    with open(os.path.join(config.state_dir, "simulated.json")) as f:
        saved = json.load(f)
    assert set(saved["vms"]) == {"vm-1", "vm-2"}
    assert not [n for n in os.listdir(config.state_dir) if n != "simulated.json"]  # no temp files left


def test_an_unreadable_state_file_starts_empty(config):
    os.makedirs(config.state_dir)
    with open(os.path.join(config.state_dir, "simulated.json"), "w") as f:
        f.write("{not json")
    assert SimulatedDriver(config).vm_states() == {}


def test_volumes_attach_and_detach(driver):
    data = {"volumeUuid": "data-1", "installPath": "/ps/data-1.qcow2", "type": "Data", "deviceId": 1}
    driver.start_vm(spec())
    driver.attach_volume("vm-1", data)
    driver.attach_volume("vm-1", data)
    assert [v["volumeUuid"] for v in driver.attached_volumes("vm-1")] == ["root-vm-1", "data-1"]
    driver.detach_volume("vm-1", data)
    driver.detach_volume("vm-1", data)
    assert [v["volumeUuid"] for v in driver.attached_volumes("vm-1")] == ["root-vm-1"]
    with pytest.raises(DriverError):
        driver.attach_volume("nobody", data)


def test_bridges(driver):
    driver.create_bridge("br_eth0", "eth0")
    assert driver.check_bridge("br_eth0")
    driver.delete_bridge("br_eth0", "eth0")
    driver.delete_bridge("br_eth0", "eth0")
    assert not driver.check_bridge("br_eth0")


def test_empty_volumes_cost_no_disk(tmp_path, driver):
    path = tmp_path / "ps" / "vol-1" / "vol-1.qcow2"
    assert driver.create_empty_volume(str(path), 2**40) == EMPTY_QCOW2_ACTUAL_SIZE
    assert not (tmp_path / "ps").exists()
    assert driver.volumes == {str(path): 2**40}
    driver.delete_bits(str(path))
    driver.delete_bits(str(path))
    assert driver.volumes == {}


def test_storage_capacity_is_the_real_file_system_of_the_nearest_existing_dir(tmp_path, driver):
    st = os.statvfs(tmp_path)
    total, available = driver.storage_capacity(str(tmp_path / "not" / "yet" / "there"))
    assert total == st.f_blocks * st.f_frsize
    assert abs(available - st.f_bavail * st.f_frsize) < 64 * 2**20


def test_configured_storage_capacity_counts_simulated_volumes(config):
    config.simulated_storage_capacity = 10**12
    driver = SimulatedDriver(config)
    driver.create_empty_volume("/ps/a.qcow2", 10**9)
    driver.create_empty_volume("/other/b.qcow2", 10**9)
    assert driver.storage_capacity("/ps") == (10**12, 10**12 - EMPTY_QCOW2_ACTUAL_SIZE)


def test_host_capacity_is_the_machines_unless_configured(config):
    real = machine_capacity()
    assert SimulatedDriver(config).host_capacity()["cpuNum"] == real["cpuNum"]
    config.simulated_cpu_num, config.simulated_memory = 64, 256 * 2**30
    driver = SimulatedDriver(config)
    driver.start_vm(spec("vm-1", memory=2**30))
    driver.start_vm(spec("vm-2", memory=2**30))
    driver.stop_vm("vm-2", "cold", 1)
    capacity = driver.host_capacity()
    assert (capacity["cpuNum"], capacity["totalMemory"], capacity["usedMemory"]) == (64, 256 * 2**30, 2**30)
    assert capacity["cpuSpeed"] == real["cpuSpeed"]


def test_fail_paths_by_command_or_volume_path(config):
    config.simulated_fail_paths = ["/vm/start"]
    driver = SimulatedDriver(config)
    with pytest.raises(DriverError, match="simulated failure of /vm/start"):
        driver.start_vm(spec())
    assert driver.vm_states() == {}
    driver.set_fail_paths(["/ps/vm-1/root.qcow2", "/ps/bad.qcow2"])
    with pytest.raises(DriverError, match="root.qcow2"):
        driver.start_vm(spec())
    with pytest.raises(DriverError):
        driver.create_empty_volume("/ps/bad.qcow2", 1)
    driver.set_fail_paths([])
    driver.start_vm(spec())
    assert driver.vm_states() == {"vm-1": RUNNING}


def test_set_vm_state_tells_the_watchers(driver):
    seen = []
    driver.watch(lambda vm_uuid, state: seen.append((vm_uuid, state)))
    driver.start_vm(spec())
    driver.stop_vm("vm-1", "grace", 1)
    assert seen == []  # the agent's own operations are not news
    driver.set_vm_state("vm-1", CRASHED)
    assert seen == [("vm-1", CRASHED)]
    assert driver.vm_states() == {"vm-1": CRASHED}
    with pytest.raises(DriverError, match="unknown vm state"):
        driver.set_vm_state("vm-1", "Exploded")
    with pytest.raises(DriverError, match="not on this host"):
        driver.set_vm_state("nobody", RUNNING)


def test_each_vm_operation_takes_the_configured_delay(config):
    config.simulated_delay = 0.2
    driver = SimulatedDriver(config)
    started = time.monotonic()
    driver.start_vm(spec())
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    driver.vm_states()
    assert time.monotonic() - started < 0.2  # queries take no time


def test_drivers_are_loaded_by_name_without_libvirt(config, tmp_path):
    assert {"libvirt", "simulated"} <= set(available_drivers())
    assert DRIVERS["simulated"] == "agents.kvm.drivers.impl_simulated:SimulatedDriver"
    assert isinstance(load_driver("simulated", config), SimulatedDriver)
    with pytest.raises(DriverError, match="unknown kvmagent driver 'xen'"):
        load_driver("xen", config)
    # In a fresh interpreter: choosing the simulated driver imports no libvirt.
    code = ("import sys; from agents.kvm.drivers import load_driver; from agents.kvm.config import AgentConfig; "
            f"load_driver('simulated', AgentConfig(state_dir={str(tmp_path)!r})); "
            "print(sorted(m for m in sys.modules if 'libvirt' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_existing_volume_is_never_made_again(driver):
    driver.create_empty_volume("/ps/vol-2.qcow2", 1 * 2**30)
    driver.create_empty_volume("/ps/vol-2.qcow2", 5 * 2**30)  # a retry, or attached again
    assert driver.volumes["/ps/vol-2.qcow2"] == 1 * 2**30
