"""The libvirt domain XML built for /vm/start: pure checks, no libvirt."""

import xml.etree.ElementTree as ET

import pytest

from agents.kvm.drivers.domain_xml import (
    ZS_NAMESPACE, device_letters, disk_target, disk_xml, domain_xml, interface_xml, libvirt_uuid)

VM_UUID = "0123456789abcdef0123456789abcdef"


def spec(**over):
    s = {
        "vmInstanceUuid": VM_UUID,
        "vmInternalId": 42,
        "vmName": "web-1",
        "memory": 64 * 1024 * 1024,
        "cpuNum": 2,
        "socketNum": 1,
        "cpuOnSocket": 2,
        "bootDev": ["hd"],
        "rootVolume": {"volumeUuid": "root-uuid", "installPath": "/ps/root.qcow2", "deviceId": 0,
                       "deviceType": "file", "type": "Root", "format": "qcow2", "useVirtio": True},
        "dataVolumes": [
            {"volumeUuid": "data2", "installPath": "/ps/d2.qcow2", "deviceId": 2, "type": "Data",
             "format": "qcow2", "useVirtio": True},
            {"volumeUuid": "data1", "installPath": "/ps/d1.qcow2", "deviceId": 1, "type": "Data",
             "format": "qcow2", "useVirtio": True},
        ],
        "nics": [{"uuid": "nic0", "mac": "FA:16:3E:00:00:01", "bridgeName": "br_eth0",
                  "nicInternalName": "vnic42.0", "deviceId": 0, "useVirtio": True, "mtu": 1450}],
    }
    s.update(over)
    return s


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


@pytest.mark.parametrize("virt_type", ["kvm", "qemu"])
def test_virt_type_is_the_domain_type(virt_type):
    assert parse(domain_xml(spec(), virt_type)).get("type") == virt_type


def test_unknown_virt_type_is_refused():
    with pytest.raises(ValueError):
        domain_xml(spec(), "xen")


def test_named_by_vm_uuid_with_dashed_uuid_and_zstack_metadata():
    root = parse(domain_xml(spec(), "kvm"))
    assert root.findtext("name") == VM_UUID
    assert root.findtext("uuid") == "01234567-89ab-cdef-0123-456789abcdef"
    assert root.findtext("description") == "web-1"
    zs = root.find(f"metadata/{{{ZS_NAMESPACE}}}zstack")
    assert zs is not None and zs.findtext("internalId") == "42"


def test_non_uuid_name_leaves_the_uuid_to_libvirt():
    root = parse(domain_xml(spec(vmInstanceUuid="not-a-uuid"), "qemu"))
    assert root.findtext("name") == "not-a-uuid"
    assert root.find("uuid") is None
    assert libvirt_uuid("not-a-uuid") is None


def test_memory_in_kib_and_vcpus_with_topology():
    root = parse(domain_xml(spec(memory=3 * 1024**3, cpuNum=4, socketNum=2, cpuOnSocket=2), "kvm"))
    assert root.find("memory").get("unit") == "KiB"
    assert root.findtext("memory") == str(3 * 1024**2)
    assert root.findtext("currentMemory") == str(3 * 1024**2)
    assert root.findtext("vcpu") == "4"
    topo = root.find("cpu/topology")
    assert (topo.get("sockets"), topo.get("cores"), topo.get("threads")) == ("2", "2", "1")


def test_inconsistent_topology_is_left_out():
    root = parse(domain_xml(spec(cpuNum=3, socketNum=2, cpuOnSocket=2), "kvm"))
    assert root.findtext("vcpu") == "3"
    assert root.find("cpu") is None


def test_disks_are_qcow2_virtio_files_with_stable_targets():
    disks = parse(domain_xml(spec(), "kvm")).findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb", "vdc"]
    assert [d.find("source").get("file") for d in disks] == ["/ps/root.qcow2", "/ps/d1.qcow2", "/ps/d2.qcow2"]
    for d in disks:
        assert d.get("type") == "file" and d.get("device") == "disk"
        assert d.find("target").get("bus") == "virtio"
        assert d.find("driver").get("type") == "qcow2"
    assert disks[0].findtext("serial") == "root-uuid"


def test_boot_devices():
    root = parse(domain_xml(spec(bootDev=["cdrom", "HardDisk", "bogus"]), "kvm"))
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]
    assert [b.get("dev") for b in parse(domain_xml(spec(bootDev=[]), "kvm")).findall("os/boot")] == ["hd"]


def test_nics_are_bridge_interfaces():
    ifaces = parse(domain_xml(spec(), "kvm")).findall("devices/interface")
    assert len(ifaces) == 1
    nic = ifaces[0]
    assert nic.get("type") == "bridge"
    assert nic.find("mac").get("address") == "fa:16:3e:00:00:01"
    assert nic.find("source").get("bridge") == "br_eth0"
    assert nic.find("model").get("type") == "virtio"
    assert nic.find("target").get("dev") == "vnic42.0"
    assert nic.find("mtu").get("size") == "1450"


def test_nic_target_names_libvirt_would_refuse_are_left_out():
    nic = parse(interface_xml({"mac": "fa:16:3e:00:00:02", "bridgeName": "br0", "nicInternalName": "vnet0"}))
    assert nic.find("target") is None
    nic = parse(interface_xml({"mac": "fa:16:3e:00:00:02", "bridgeName": "br0",
                               "nicInternalName": "a-very-long-nic-name", "useVirtio": False}))
    assert nic.find("target") is None
    assert nic.find("model").get("type") == "e1000"


def test_vnc_on_loopback_and_no_cdrom():
    root = parse(domain_xml(spec(), "qemu"))
    graphics = root.find("devices/graphics")
    assert graphics.get("type") == "vnc" and graphics.get("autoport") == "yes"
    assert graphics.find("listen").get("address") == "127.0.0.1"
    assert not [d for d in root.findall("devices/disk") if d.get("device") == "cdrom"]


def test_disk_xml_of_a_data_volume():
    disk = parse(disk_xml({"volumeUuid": "v1", "installPath": "/ps/v1.qcow2", "deviceId": 3,
                           "cacheMode": "writeback"}))
    assert disk.find("target").get("dev") == "vdd"
    assert disk.find("driver").get("cache") == "writeback"
    assert disk.findtext("serial") == "v1"


def test_disk_buses():
    assert disk_target({"deviceId": 1, "useVirtioSCSI": True}) == ("sdb", "scsi")
    assert disk_target({"deviceId": 1, "useVirtio": False}) == ("hdb", "ide")
    assert disk_target({"deviceId": 27}) == ("vdab", "virtio")


def test_device_letters():
    assert [device_letters(i) for i in (0, 1, 25, 26, 27, 51, 52)] == ["a", "b", "z", "aa", "ab", "az", "ba"]


def test_missing_paths_are_errors():
    with pytest.raises(ValueError):
        disk_xml({"volumeUuid": "v1", "deviceId": 1})
    with pytest.raises(ValueError):
        interface_xml({"mac": "fa:16:3e:00:00:02"})
