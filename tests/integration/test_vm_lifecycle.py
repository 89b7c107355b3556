"""VMs end to end over the REST API, as a ZStack client drives them, on MN
processes sharing real MariaDB and RabbitMQ: a zone with Simulator hosts,
storage, an image, offerings and networks; VMs created in parallel through
two MNs; every life cycle action; data volumes; rollback that gives back
exactly what failed creates took; 200 creates through three MNs that never
overcommit a host nor share an address; a create whose MN is killed, rolled
back by a peer; wrong input answered with 4xx and nothing changed; and a
zone deletion that leaves nothing behind."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mn.ids import new_uuid
from mn.ring import Ring
from tests.support.api_client import ApiError, ZStackClient
from tests.support.cluster import start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GIB = 1 << 30
HOST_CPUS, HOST_MEMORY = 16, 32 * GIB
VM_CPUS, VM_MEMORY = 1, GIB
IMAGE_SIZE = 2 * GIB

@pytest.fixture(scope="module")
def mns(tmp_path_factory, mariadb_url, amqp_url):
    nodes = start_cluster(tmp_path_factory.mktemp("vms"), 3, db_url=mariadb_url, bus_url=amqp_url,
                          heartbeat_interval=0.5)
    yield nodes
    for node in nodes:
        node.stop()


def _client(mn) -> ZStackClient:
    client = ZStackClient(mn.url, timeout=60)
    client.login()
    return client


@pytest.fixture(scope="module")
def a(mns):
    client = _client(mns[0])
    yield client
    client.close()


@pytest.fixture(scope="module")
def b(mns):
    client = _client(mns[1])
    yield client
    client.close()


def l3_network(api: ZStackClient, l2: str, name: str, first: str, last: str, gateway: str) -> str:
    l3 = api.create("/l3-networks", {"name": name, "l2NetworkUuid": l2})["uuid"]
    api.create(f"/l3-networks/{l3}/ip-ranges", {"name": f"{name}-range", "startIp": first, "endIp": last,
                                                 "netmask": "255.255.0.0", "gateway": gateway})
    return l3


@pytest.fixture(scope="module")
def c(mns):
    """The admin on the third MN (killed by the take-over test)."""
    client = _client(mns[2])
    yield client
    client.close()


def build_world(a: ZStackClient, b: ZStackClient, prefix: str, subnet: int,
                host_memory: int = HOST_MEMORY) -> dict:
    """A zone with two Simulator hosts, storage, an image, offerings and an L3
    network of 10.<subnet>.0.0/16, built through both MNs."""
    zone = a.create("/zones", {"name": f"{prefix}-zone"})["uuid"]
    cluster = b.create("/clusters", {"zoneUuid": zone, "name": f"{prefix}-cluster",
                                     "hypervisorType": "Simulator"})["uuid"]
    hosts = [api.create("/hosts/simulators", {"name": f"{prefix}-host{i}", "managementIp": f"172.{subnet}.0.{i + 1}",
                                               "clusterUuid": cluster, "cpuCapacity": HOST_CPUS,
                                               "memoryCapacity": host_memory})["uuid"]
             for i, api in enumerate((a, b))]
    ps = a.create("/primary-storage/simulators", {"name": f"{prefix}-ps", "url": "/ps", "zoneUuid": zone,
                                                   "totalCapacity": 1000 * GIB, "availableCapacity": 1000 * GIB,
                                                   "totalPhysicalCapacity": 1000 * GIB,
                                                   "availablePhysicalCapacity": 1000 * GIB})["uuid"]
    a.call("POST", f"/clusters/{cluster}/primary-storage/{ps}", json={"params": {}})
    bs = b.create("/backup-storage/simulators", {"name": f"{prefix}-bs", "url": "/bs", "totalCapacity": 1000 * GIB,
                                                   "availableCapacity": 1000 * GIB})["uuid"]
    b.call("POST", f"/zones/{zone}/backup-storage/{bs}", json={"params": {}})
    image = a.create("/images", {"name": f"{prefix}-centos",
                                 "url": f"http://images.test/centos.qcow2?size={IMAGE_SIZE}",
                                 "format": "qcow2", "mediaType": "RootVolumeTemplate", "platform": "Linux",
                                 "backupStorageUuids": [bs]})
    assert image["status"] == "Ready"
    offering = a.create("/instance-offerings", {"name": "small", "cpuNum": VM_CPUS, "memorySize": VM_MEMORY})["uuid"]
    big = b.create("/instance-offerings", {"name": "big", "cpuNum": 2 * VM_CPUS, "memorySize": 2 * VM_MEMORY})["uuid"]
    disk = b.create("/disk-offerings", {"name": "disk", "diskSize": GIB})["uuid"]
    l2 = a.create("/l2-networks/no-vlan", {"name": f"{prefix}-l2", "zoneUuid": zone,
                                           "physicalInterface": "eth0"})["uuid"]
    a.call("POST", f"/l2-networks/{l2}/clusters/{cluster}", json={"params": {}})
    l3 = l3_network(b, l2, f"{prefix}-public", f"10.{subnet}.0.10", f"10.{subnet}.3.250", f"10.{subnet}.0.1")
    return dict(zone=zone, cluster=cluster, hosts=hosts, ps=ps, bs=bs, image=image["uuid"], offering=offering,
                big=big, disk=disk, l2=l2, l3=l3)


@pytest.fixture(scope="module")
def world(a, b):
    """The cloud most tests here use: two hosts with room for 128 small VMs."""
    return build_world(a, b, "vm", 10, host_memory=2 * HOST_MEMORY)


def create_vm(api: ZStackClient, world: dict, name: str, **params) -> dict:
    return api.create("/vm-instances", {"name": name, "instanceOfferingUuid": world["offering"],
                                        "imageUuid": world["image"], "l3NetworkUuids": [world["l3"]], **params})


def try_create(base: str, session: str, world: dict, name: str, **params):
    client = ZStackClient(base, session=session, timeout=60)
    try:
        return create_vm(client, world, name, **params)
    except ApiError as exc:
        return exc
    finally:
        client.close()


def query(api: ZStackClient, path: str, *conditions: str) -> list[dict]:
    return api.query(path, *conditions)["inventories"]


def count(api: ZStackClient, path: str, *conditions: str) -> int:
    return api.query(path, *conditions, count=True)["total"]


def usage(api: ZStackClient, world: dict) -> dict:
    """What the accounting says is in use, and what the VMs and volumes hold."""
    hosts = query(api, "/hosts", f"uuid?={','.join(world['hosts'])}")
    ps = query(api, "/primary-storage", f"uuid={world['ps']}")[0]
    vms_on_hosts = query(api, "/vm-instances", "hostUuid not null")
    placed = query(api, "/volumes", f"primaryStorageUuid={world['ps']}")
    return {
        "cpu": sum(h["totalCpuCapacity"] - h["availableCpuCapacity"] for h in hosts),
        "memory": sum(h["totalMemoryCapacity"] - h["availableMemoryCapacity"] for h in hosts),
        "vm_cpu": sum(v["cpuNum"] for v in vms_on_hosts),
        "vm_memory": sum(v["memorySize"] for v in vms_on_hosts),
        "ps": ps["totalCapacity"] - ps["availableCapacity"],
        "volumes": sum(v["size"] for v in placed),
    }


def assert_accounting_exact(api: ZStackClient, world: dict) -> dict:
    used = usage(api, world)
    assert (used["cpu"], used["memory"], used["ps"]) == (used["vm_cpu"], used["vm_memory"], used["volumes"]), used
    return used


# -- creating ---------------------------------------------------------------------------------


PARALLEL_VMS = 50


def test_vms_created_in_parallel_through_both_mns(mns, a, b, world):
    with ThreadPoolExecutor(PARALLEL_VMS) as pool:
        futures = [pool.submit(try_create, mn.url, api.session, world, f"par-{i}")
                   for i, (mn, api) in enumerate([(mns[0], a), (mns[1], b)] * (PARALLEL_VMS // 2))]
        vms = [f.result() for f in futures]
    assert all(isinstance(vm, dict) for vm in vms), [vm for vm in vms if not isinstance(vm, dict)][:3]
    assert {vm["state"] for vm in vms} == {"Running"}
    ips = [vm["vmNics"][0]["ip"] for vm in vms]
    assert len(set(ips)) == PARALLEL_VMS
    assert {vm["hostUuid"] for vm in vms} <= set(world["hosts"])
    for vm in vms:
        assert vm["allVolumes"][0]["size"] == IMAGE_SIZE and vm["allVolumes"][0]["status"] == "Ready"
    # Either MN answers about any VM.
    assert b.query(f"/vm-instances/{vms[0]['uuid']}")["inventories"][0]["state"] == "Running"
    assert_accounting_exact(a, world)


def test_rollback_is_real_ten_addresses_twenty_creates(mns, a, b, world):
    small = l3_network(a, world["l2"], "ten", "10.11.0.1", "10.11.0.10", "10.11.255.254")
    before = usage(a, world)
    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(try_create, mns[i % 2].url, (a, b)[i % 2].session,
                               {**world, "l3": small}, f"ten-{i}") for i in range(20)]
        results = [f.result() for f in futures]
    created = [r for r in results if isinstance(r, dict)]
    failed = [r for r in results if isinstance(r, ApiError)]
    assert (len(created), len(failed)) == (10, 10), results
    for err in failed:
        assert err.status == 503 and err.code == "VM.1000", err.body
        assert "has no free IP address" in err.body["error"]["details"], err.body
    on_small = query(a, "/vm-instances", f"vmNics.l3NetworkUuid={small}")
    assert sorted(v["uuid"] for v in on_small) == sorted(v["uuid"] for v in created)
    assert count(a, "/l3-networks/ip-address", f"l3NetworkUuid={small}") == 10
    assert count(a, "/vm-instances", "name~=ten-%") == 10
    assert count(a, "/volumes", "name~=ROOT-for-ten-%") == 10
    after = assert_accounting_exact(a, world)
    assert after["cpu"] - before["cpu"] == 10 * VM_CPUS
    assert after["memory"] - before["memory"] == 10 * VM_MEMORY
    assert after["ps"] - before["ps"] == 10 * IMAGE_SIZE
    for vm in created:
        a.call("DELETE", f"/vm-instances/{vm['uuid']}")
        a.action(f"/vm-instances/{vm['uuid']}/actions", "expungeVmInstance")
    assert usage(a, world) == before
    a.call("DELETE", f"/l3-networks/{small}")


# -- life cycle ----------------------------------------------------------------------------------


def test_life_cycle_actions_through_either_mn(a, b, world):
    vm = create_vm(a, world, "life")
    uuid, path = vm["uuid"], f"/vm-instances/{vm['uuid']}/actions"
    stopped = b.action(path, "stopVmInstance", {"type": "cold"})["inventory"]
    assert (stopped["state"], stopped["hostUuid"], stopped["lastHostUuid"]) == ("Stopped", None, vm["hostUuid"])
    assert b.action(path, "stopVmInstance")["inventory"]["state"] == "Stopped"  # ZStack: a no-op success
    started = a.action(path, "startVmInstance", {"hostUuid": world["hosts"][1]})["inventory"]
    assert (started["state"], started["hostUuid"]) == ("Running", world["hosts"][1])
    assert b.action(path, "rebootVmInstance")["inventory"]["state"] == "Running"
    assert a.action(path, "pauseVmInstance")["inventory"]["state"] == "Paused"
    assert b.action(path, "resumeVmInstance")["inventory"]["state"] == "Running"
    b.action(path, "setVmHostname", {"hostname": "life-1"})
    assert a.call("GET", f"/vm-instances/{uuid}/hostnames")["hostname"] == "life-1"
    assert a.action(path, "updateVmInstance", {"name": "life-2"})["inventory"]["name"] == "life-2"
    moved = a.action(path, "migrateVm", {"hostUuid": world["hosts"][0]})["inventory"]
    assert (moved["hostUuid"], moved["lastHostUuid"]) == (world["hosts"][0], world["hosts"][1])
    bigger = b.action(path, "changeInstanceOffering", {"instanceOfferingUuid": world["big"]})["inventory"]
    assert (bigger["cpuNum"], bigger["memorySize"]) == (2 * VM_CPUS, 2 * VM_MEMORY)
    assert_accounting_exact(a, world)

    second = l3_network(a, world["l2"], "second", "10.12.0.10", "10.12.0.20", "10.12.0.1")
    with_nic = b.call("POST", f"/vm-instances/{uuid}/l3-networks/{second}",
                      json={"params": {"staticIp": "10.12.0.15"}})["inventory"]
    nic = next(n for n in with_nic["vmNics"] if n["l3NetworkUuid"] == second)
    assert nic["ip"] == "10.12.0.15"
    assert count(a, "/vm-instances/nics", f"vmInstanceUuid={uuid}") == 2
    without = a.call("DELETE", f"/vm-instances/nics/{nic['uuid']}")["inventory"]
    assert [n["l3NetworkUuid"] for n in without["vmNics"]] == [world["l3"]]
    assert count(a, "/l3-networks/ip-address", f"l3NetworkUuid={second}") == 0

    a.call("DELETE", f"/vm-instances/{uuid}")
    destroyed = b.query(f"/vm-instances/{uuid}")["inventories"][0]
    assert (destroyed["state"], destroyed["vmNics"][0]["ip"]) == ("Destroyed", None)
    recovered = b.action(path, "recoverVmInstance")["inventory"]
    assert recovered["state"] == "Stopped"
    assert a.action(path, "startVmInstance")["inventory"]["vmNics"][0]["ip"] is not None
    a.call("DELETE", f"/vm-instances/{uuid}")
    b.action(path, "expungeVmInstance")
    assert count(a, "/vm-instances", f"uuid={uuid}") == 0
    assert count(a, "/volumes", f"uuid={vm['rootVolumeUuid']}") == 0
    assert_accounting_exact(a, world)


def test_data_volumes(a, b, world):
    vm = create_vm(b, world, "with-disks", dataDiskOfferingUuids=[world["disk"]])
    assert sorted(v["type"] for v in vm["allVolumes"]) == ["Data", "Root"]
    volume = a.create("/volumes/data", {"name": "extra", "diskOfferingUuid": world["disk"]})
    assert (volume["status"], volume["primaryStorageUuid"]) == ("NotInstantiated", None)
    attached = b.call("POST", f"/volumes/{volume['uuid']}/vm-instances/{vm['uuid']}",
                      json={"params": {}})["inventory"]
    assert (attached["vmInstanceUuid"], attached["status"], attached["deviceId"]) == (vm["uuid"], "Ready", 2)
    assert count(a, "/vm-instances", f"uuid={vm['uuid']}", "allVolumes.size=1073741824") == 1
    detached = a.call("DELETE", f"/volumes/{volume['uuid']}/vm-instances")["inventory"]
    assert detached["vmInstanceUuid"] is None
    a.call("DELETE", f"/volumes/{volume['uuid']}")
    assert a.query(f"/volumes/{volume['uuid']}")["inventories"][0]["status"] == "Deleted"
    assert b.action(f"/volumes/{volume['uuid']}/actions", "recoverDataVolume")["inventory"]["status"] == "Ready"
    a.call("DELETE", f"/volumes/{volume['uuid']}")
    b.action(f"/volumes/{volume['uuid']}/actions", "expungeDataVolume")
    assert count(a, "/volumes", f"uuid={volume['uuid']}") == 0
    assert_accounting_exact(a, world)


def test_queries_with_nested_fields(a, world):
    vm = create_vm(a, world, "nested")
    ip = vm["vmNics"][0]["ip"]
    assert [v["uuid"] for v in query(a, "/vm-instances", f"vmNics.ip={ip}")] == [vm["uuid"]]
    assert vm["uuid"] in [v["uuid"] for v in query(a, "/vm-instances", f"allVolumes.size={IMAGE_SIZE}")]
    assert vm["uuid"] in [v["uuid"] for v in query(a, "/vm-instances", "host.cluster.name=vm-cluster")]
    assert vm["uuid"] in [v["uuid"] for v in query(a, "/vm-instances", "zone.name=vm-zone", "image.name=vm-centos")]
    nics = query(a, "/vm-instances/nics", f"vmInstanceUuid={vm['uuid']}", "l3Network.name=vm-public")
    assert [n["ip"] for n in nics] == [ip]
    volumes = query(a, "/volumes", "vmInstance.name=nested", "primaryStorage.name=vm-ps")
    assert [v["uuid"] for v in volumes] == [vm["rootVolumeUuid"]]


# -- wrong input -------------------------------------------------------------------------------


def _refused(call, status: int, code: str) -> dict:
    with pytest.raises(ApiError) as info:
        call()
    assert (info.value.status, info.value.code) == (status, code), info.value.body
    return info.value.body


def test_wrong_input_is_a_4xx_and_changes_nothing(a, b, world):
    vm = create_vm(a, world, "victim")
    path = f"/vm-instances/{vm['uuid']}/actions"
    before = (count(a, "/vm-instances"), count(a, "/volumes"), count(a, "/vm-instances/nics"), usage(a, world))
    # A uuid that is not one, one that names nothing, a missing parameter, an unknown one.
    _refused(lambda: a.action("/vm-instances/not-a-uuid/actions", "stopVmInstance"), 400, "SYS.1007")
    _refused(lambda: a.action(f"/vm-instances/{'0' * 32}/actions", "stopVmInstance"), 404, "SYS.1003")
    _refused(lambda: a.call("POST", "/vm-instances", json={"params": {"imageUuid": world["image"]}}), 400,
             "SYS.1007")
    _refused(lambda: create_vm(a, world, "x", instanceOfferingUuid="0" * 32), 404, "SYS.1003")
    _refused(lambda: create_vm(a, world, "x", bogus=1), 400, "SYS.1007")
    _refused(lambda: a.action(path, "stopVmInstance", {"type": "gentle"}), 400, "SYS.1007")
    # Wrong states: 409 with ZStack's VM.1010 as the cause.
    body = _refused(lambda: b.action(path, "resumeVmInstance"), 409, "SYS.1006")
    assert body["error"]["cause"]["code"] == "VM.1010"
    _refused(lambda: a.action(path, "expungeVmInstance"), 409, "SYS.1006")
    _refused(lambda: a.action(path, "migrateVm", {"hostUuid": vm["hostUuid"]}), 409, "SYS.1006")
    _refused(lambda: b.call("POST", f"/vm-instances/{vm['uuid']}/l3-networks/{world['l3']}",
                            json={"params": {}}), 409, "SYS.1006")
    # Disabled image: 409 before anything exists.
    a.action(f"/images/{world['image']}/actions", "changeImageState", {"stateEvent": "disable"})
    try:
        _refused(lambda: create_vm(b, world, "from-disabled"), 409, "SYS.1006")
    finally:
        a.action(f"/images/{world['image']}/actions", "changeImageState", {"stateEvent": "enable"})
    after = (count(a, "/vm-instances"), count(a, "/volumes"), count(a, "/vm-instances/nics"), usage(a, world))
    assert after == before


# -- many MNs ----------------------------------------------------------------------------------


def test_two_hundred_creates_through_three_mns_never_overcommit_nor_share_an_address(mns, a, b, c):
    """Each host fits 32 VMs (memory, overcommit ratio 1): 200 creates get 64 VMs,
    136 clear refusals, and the accounting of what the 64 hold."""
    crowd = build_world(a, b, "crowd", 40)
    clients = [(mns[i].url, api.session) for i, api in enumerate((a, b, c))]
    with ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(try_create, *clients[i % 3], crowd, f"crowd-{i}") for i in range(200)]
        results = [f.result() for f in futures]
    created = [r for r in results if isinstance(r, dict)]
    failed = [r for r in results if isinstance(r, ApiError)]
    assert len(created) + len(failed) == 200
    assert len(created) == 2 * HOST_MEMORY // VM_MEMORY, [f.body for f in failed[:3]]
    for err in failed:
        assert err.code == "VM.1000" and "no host" in err.body["error"]["details"], err.body
    hosts = query(a, "/hosts", f"uuid?={','.join(crowd['hosts'])}")
    for host in hosts:
        on_host = query(a, "/vm-instances", f"hostUuid={host['uuid']}")
        assert sum(v["memorySize"] for v in on_host) <= host["totalMemoryCapacity"]
        assert sum(v["cpuNum"] for v in on_host) <= host["totalCpuCapacity"]
        assert host["totalMemoryCapacity"] - host["availableMemoryCapacity"] == sum(v["memorySize"] for v in on_host)
    ips = [v["vmNics"][0]["ip"] for v in created]
    assert len(set(ips)) == len(ips)
    assert count(a, "/l3-networks/ip-address", f"l3NetworkUuid={crowd['l3']}") == len(created)
    a.call("DELETE", f"/zones/{crowd['zone']}")
    assert count(a, "/vm-instances", "name~=crowd-%") == 0


def test_a_create_whose_mn_dies_is_rolled_back_by_a_peer(mns, a, b, c, world):
    """The create chain is durable: kill -9 the MN running it half-way and the MN
    that owns the VM next rolls it back, giving everything back."""
    victim = mns[2]
    ring = Ring([mn.uuid for mn in mns])
    vm_uuid = next(u for u in iter(new_uuid, None) if ring.owner(u) == victim.uuid)
    before = usage(a, world)
    delay = "/global-configurations/simulator/vm.operation.delay/actions"
    a.action(delay, "updateGlobalConfig", {"value": "5"})
    try:
        job = a.request("POST", "/vm-instances", json={"params": {
            "name": "doomed", "resourceUuid": vm_uuid, "instanceOfferingUuid": world["offering"],
            "imageUuid": world["image"], "l3NetworkUuids": [world["l3"]]}})
        assert job.status_code == 202
        deadline = time.monotonic() + 20
        while not query(a, "/vm-instances", f"uuid={vm_uuid}", "state=Created", "vmNics.ip not null"):
            assert time.monotonic() < deadline, "the create never reached the hypervisor step"
            time.sleep(0.1)
        victim.kill()
        deadline = time.monotonic() + 45
        while count(a, "/vm-instances", f"uuid={vm_uuid}"):
            assert time.monotonic() < deadline, "no peer rolled the create back"
            time.sleep(0.5)
    finally:
        a.action(delay, "updateGlobalConfig", {"value": "0"})
    assert count(a, "/volumes", "name=ROOT-for-doomed") == 0
    assert count(a, "/vm-instances/nics", f"vmInstanceUuid={vm_uuid}") == 0
    assert usage(a, world) == before


# -- cascade -----------------------------------------------------------------------------------


def test_deleting_the_zone_leaves_nothing(a, b, world):
    create_vm(a, world, "last-1", dataDiskOfferingUuids=[world["disk"]])
    create_vm(b, world, "last-2", strategy="JustCreate")
    volume = a.create("/volumes/data", {"name": "loose", "diskSize": GIB, "primaryStorageUuid": world["ps"]})
    assert volume["status"] == "Ready"
    assert count(a, "/vm-instances") > 0
    b.call("DELETE", f"/zones/{world['zone']}")
    for path in ("/vm-instances", "/vm-instances/nics", "/volumes", "/hosts", "/clusters", "/primary-storage",
                 "/l2-networks", "/l3-networks", "/l3-networks/ip-address"):
        assert count(a, path) == 0, (path, query(a, path))
    assert count(a, "/zones", f"uuid={world['zone']}") == 0
