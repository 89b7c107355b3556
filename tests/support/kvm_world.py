"""A zone for KVM hosts built through the REST API, as an operator would.

Used by the KVM integration tests (agents on loopback addresses) and the
e2e tests (agents deployed into test bed namespaces).
"""

from __future__ import annotations

import time
from typing import Callable

from tests.support.api_client import ZStackClient

MIB = 1 << 20
GIB = 1 << 30


def build_kvm_world(api: ZStackClient, prefix: str, *, storage_path: str, physical_interface: str = "eth0",
                    image_size: int = 64 * MIB, vm_memory: int = 64 * MIB,
                    ip_range: tuple[str, str, str, str] = ("192.168.100.10", "192.168.100.200", "255.255.255.0",
                                                           "192.168.100.1")) -> dict:
    """Zone, KVM cluster, a LocalStorage at ``storage_path``, backup storage,
    an image, offerings and a NoVlan L3 network on ``physical_interface`` with
    one IP range ``(first, last, netmask, gateway)``."""
    zone = api.create("/zones", {"name": f"{prefix}-zone"})["uuid"]
    cluster = api.create("/clusters", {"zoneUuid": zone, "name": f"{prefix}-cluster",
                                       "hypervisorType": "KVM"})["uuid"]
    ps = api.create("/primary-storage/local-storage", {"name": f"{prefix}-ls", "url": storage_path,
                                                       "zoneUuid": zone})["uuid"]
    api.call("POST", f"/clusters/{cluster}/primary-storage/{ps}", json={"params": {}})
    bs = api.create("/backup-storage/simulators", {"name": f"{prefix}-bs", "url": "/bs", "totalCapacity": 100 * GIB,
                                                     "availableCapacity": 100 * GIB})["uuid"]
    api.call("POST", f"/zones/{zone}/backup-storage/{bs}", json={"params": {}})
    image = api.create("/images", {"name": f"{prefix}-image", "url": f"http://images.test/tiny.qcow2?size={image_size}",
                                   "format": "qcow2", "mediaType": "RootVolumeTemplate", "platform": "Linux",
                                   "backupStorageUuids": [bs]})["uuid"]
    offering = api.create("/instance-offerings", {"name": f"{prefix}-tiny", "cpuNum": 1,
                                                  "memorySize": vm_memory})["uuid"]
    disk = api.create("/disk-offerings", {"name": f"{prefix}-disk", "diskSize": 32 * MIB})["uuid"]
    l2 = api.create("/l2-networks/no-vlan", {"name": f"{prefix}-l2", "zoneUuid": zone,
                                             "physicalInterface": physical_interface})["uuid"]
    api.call("POST", f"/l2-networks/{l2}/clusters/{cluster}", json={"params": {}})
    l3 = api.create("/l3-networks", {"name": f"{prefix}-l3", "l2NetworkUuid": l2})["uuid"]
    first, last, netmask, gateway = ip_range
    api.create(f"/l3-networks/{l3}/ip-ranges", {"name": f"{prefix}-range", "startIp": first, "endIp": last,
                                                 "netmask": netmask, "gateway": gateway})
    return dict(zone=zone, cluster=cluster, ps=ps, bs=bs, image=image, offering=offering, disk=disk, l2=l2, l3=l3)


def add_kvm_host(api: ZStackClient, world: dict, name: str, ip: str, *, username: str = "root",
                 password: str = "password", ssh_port: int = 22, timeout: float = 600) -> dict:
    return api.create("/hosts/kvm", {"name": name, "managementIp": ip, "clusterUuid": world["cluster"],
                                     "username": username, "password": password, "sshPort": ssh_port},
                      poll_timeout=timeout)


def create_vm(api: ZStackClient, world: dict, name: str, system_tags: list[str] | None = None, **params) -> dict:
    body = {"params": {"name": name, "instanceOfferingUuid": world["offering"], "imageUuid": world["image"],
                       "l3NetworkUuids": [world["l3"]], **params}, "systemTags": system_tags or []}
    return api.call("POST", "/vm-instances", json=body)["inventory"]


def set_global_config(api: ZStackClient, category: str, name: str, value) -> None:
    api.action(f"/global-configurations/{category}/{name}/actions", "updateGlobalConfig", {"value": str(value)})


def wait_for(what: str, predicate: Callable[[], object], timeout: float, interval: float = 0.2):
    """Poll ``predicate`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(interval)


def host_status(api: ZStackClient, host_uuid: str) -> str:
    return api.query("/hosts", f"uuid={host_uuid}")["inventories"][0]["status"]


def vm_state(api: ZStackClient, vm_uuid: str) -> str:
    return api.query("/vm-instances", f"uuid={vm_uuid}")["inventories"][0]["state"]


def admin_client(url: str, configs: dict[tuple[str, str], object] | None = None) -> ZStackClient:
    """A logged-in admin client, with global configs set first."""
    client = ZStackClient(url, timeout=60)
    client.login()
    for (category, name), value in (configs or {}).items():
        set_global_config(client, category, name, value)
    return client
