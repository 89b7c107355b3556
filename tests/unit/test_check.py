"""``zstack-ctl check`` over SQLite: a cloud made through the VM and volume
services is clean; each way of corrupting it is reported by its check, and
by no other."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mn.check import run_checks
from mn.ctl import main as ctl
from mn.db.models.api_job import ApiJobVO
from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.management_node import ManagementNodeVO
from mn.db.models.network import UsedIpVO
from mn.db.models.offering import InstanceOfferingVO
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.types import utcnow
from mn.host.config import MEMORY_OVERPROVISIONING_RATIO
from mn.ids import new_uuid
from mn.vm.messages import (
    APIChangeInstanceOfferingMsg,
    APICreateVmInstanceMsg,
    APIDestroyVmInstanceMsg,
    APIExpungeVmInstanceMsg,
    APIMigrateVmMsg,
    APIPauseVmInstanceMsg,
    APIStopVmInstanceMsg,
)
from mn.volume.messages import APIAttachDataVolumeToVmMsg, APICreateDataVolumeMsg, APIDeleteDataVolumeMsg
from tests.support.vm_world import GIB, build_world, start_vm_node, stop_vm_node


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url)
    yield node
    await stop_vm_node(node)


async def call(node, msg):
    return await node.intercept_and_call(msg)


async def new_vm(node, world, name, **kw):
    msg = APICreateVmInstanceMsg(name=name, instanceOfferingUuid=world.offering, imageUuid=world.image,
                                 l3NetworkUuids=[world.l3], **kw)
    return (await call(node, msg)).inventory


async def populate(node, world) -> dict:
    """VMs in most states, with data volumes, made through the services."""
    running = await new_vm(node, world, "running", hostUuid=world.hosts[0],
                           dataDiskOfferingUuids=[world.disk_offering])
    stopped = await new_vm(node, world, "stopped", strategy="CreateStopped")
    paused = await new_vm(node, world, "paused", hostUuid=world.hosts[1])
    await call(node, APIPauseVmInstanceMsg(uuid=paused.uuid))
    destroyed = await new_vm(node, world, "destroyed", dataDiskOfferingUuids=[world.disk_offering])
    await call(node, APIDestroyVmInstanceMsg(uuid=destroyed.uuid))
    loose = (await call(node, APICreateDataVolumeMsg(name="loose", diskSize=GIB))).inventory
    await call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=stopped.uuid, volumeUuid=loose.uuid))
    await call(node, APICreateDataVolumeMsg(name="unplaced", diskSize=GIB))
    return dict(running=running, stopped=stopped, paused=paused, destroyed=destroyed, loose=loose)


@pytest.fixture
async def world(node):
    return await node.db.run(lambda s: build_world(s, vm_cpu=2, vm_memory=2 * GIB))


@pytest.fixture
async def vms(node, world):
    return await populate(node, world)


async def problems(node, **options):
    return await node.db.run(lambda s: run_checks(s, **options))


def only(found, check: str, *uuids: str):
    """Every problem is of ``check``, and the problems name exactly ``uuids``."""
    assert {p.check for p in found} == {check}, found
    assert {p.resource_uuid for p in found} == set(uuids), found


def corrupt(url: str, *statements: tuple[str, tuple]) -> None:
    """Write behind the services' back, foreign keys off (sqlite3's default)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


# -- clean --------------------------------------------------------------------------------------------


async def test_a_cloud_made_through_the_services_is_clean(node, world, vms):
    assert await problems(node) == []
    assert await problems(node, strict_storage=True) == []


async def test_the_whole_life_cycle_stays_clean(node, world, vms):
    vm = vms["running"]
    await call(node, APIMigrateVmMsg(vmInstanceUuid=vm.uuid))

    def offering(session):
        big = InstanceOfferingVO(name="big", cpuNum=3, memorySize=3 * GIB + 7, state="Enabled", type="UserVm")
        session.add(big)
        session.flush()
        return big.uuid

    big = await node.db.run(offering)
    await call(node, APIChangeInstanceOfferingMsg(vmInstanceUuid=vm.uuid, instanceOfferingUuid=big))
    await call(node, APIStopVmInstanceMsg(uuid=vms["paused"].uuid))
    await call(node, APIExpungeVmInstanceMsg(uuid=vms["destroyed"].uuid))
    await call(node, APIDestroyVmInstanceMsg(uuid=vms["stopped"].uuid))
    await call(node, APIDeleteDataVolumeMsg(uuid=vms["loose"].uuid))
    assert await problems(node, strict_storage=True) == []


async def test_memory_overcommit_is_counted_with_the_ratio(node, world):
    await MEMORY_OVERPROVISIONING_RATIO.update("1.5")
    try:
        vms = await populate(node, world)
        vm = vms["running"]
        await call(node, APIMigrateVmMsg(vmInstanceUuid=vm.uuid))

        def odd(session):
            offering = InstanceOfferingVO(name="odd", cpuNum=1, memorySize=3 * GIB + 1, state="Enabled",
                                          type="UserVm")
            session.add(offering)
            session.flush()
            return offering.uuid

        # A resize reserves the difference, rounded up on its own.
        await call(node, APIChangeInstanceOfferingMsg(vmInstanceUuid=vm.uuid,
                                                      instanceOfferingUuid=await node.db.run(odd)))
        assert await problems(node) == []
        host = (await node.services["vmInstance"].inventory(vm.uuid)).hostUuid
        # 2 GiB at 1.5 takes ceil(2 GiB / 1.5); one VM's worth more is a problem.
        corrupt(node.db_url, ("UPDATE HostCapacityVO SET availableMemory = availableMemory - 100 WHERE uuid = ?",
                              (host,)))
        found = await problems(node)
        only(found, "host-capacity", host)
        assert "ratio 1.5" in found[0].details
    finally:
        await MEMORY_OVERPROVISIONING_RATIO.update("1.0")


# -- host capacity --------------------------------------------------------------------------------------


async def test_a_wrong_available_cpu_is_reported(node, world, vms):
    host = world.hosts[0]
    corrupt(node.db_url, ("UPDATE HostCapacityVO SET availableCpu = availableCpu - 2 WHERE uuid = ?", (host,)))
    found = await problems(node)
    only(found, "host-capacity", host)
    # Host 0 runs "running" (2 CPUs) and "stopped" went nowhere: used 4, held 2.
    assert "used cpu 4" in found[0].details and "hold 2" in found[0].details


async def test_available_above_total_and_a_released_vm_are_reported(node, world, vms):
    corrupt(node.db_url, ("UPDATE HostCapacityVO SET availableMemory = totalMemory + 1 WHERE uuid = ?",
                          (world.hosts[1],)))
    found = await problems(node)
    only(found, "host-capacity", world.hosts[1])
    assert any("above totalMemory" in p.details for p in found)
    assert any("used memory -1 bytes" in p.details for p in found)


async def test_reservations_of_chains_in_flight_are_not_problems(node, world, vms):
    mn = new_uuid()
    host = world.hosts[0]

    def start_chains(session):
        session.add(ManagementNodeVO(uuid=mn, hostName="mn", port=1))
        # A create at its allocation step: its reservation is committed, its host not yet recorded.
        session.add(FlowChainVO(chainName="vm.create", managementNodeUuid=mn, state="Running",
                                resourceUuid=new_uuid(), resourceType="VmInstanceVO",
                                currentStep="3/mn.vm.flows.common.VmAllocateHostFlow", completedSteps="[]",
                                data=json.dumps({"vmUuid": new_uuid(), "cpuNum": 2, "memorySize": 2 * GIB})))

    await node.db.run(start_chains)
    corrupt(node.db_url, ("UPDATE HostCapacityVO SET availableCpu = availableCpu - 2, "
                          "availableMemory = availableMemory - ? WHERE uuid = ?", (2 * GIB, host)))
    assert await problems(node) == []
    # Twice that is more than the chain can explain.
    corrupt(node.db_url, ("UPDATE HostCapacityVO SET availableCpu = availableCpu - 2 WHERE uuid = ?", (host,)))
    only(await problems(node), "host-capacity", host)


async def test_a_migration_in_flight_holds_its_destination(node, world, vms):
    mn, vm = new_uuid(), vms["running"]

    def migrating(session):
        session.add(ManagementNodeVO(uuid=mn, hostName="mn", port=1))
        session.add(FlowChainVO(chainName="vm.migrate", managementNodeUuid=mn, state="Running",
                                resourceUuid=vm.uuid, resourceType="VmInstanceVO",
                                currentStep="3/mn.vm.flows.lifecycle.VmMigrateOnHypervisorFlow",
                                completedSteps="[]",
                                data=json.dumps({"vmUuid": vm.uuid, "cpuNum": 2, "memorySize": 2 * GIB,
                                                 "sourceHostUuid": world.hosts[0],
                                                 "destHostUuid": world.hosts[1]})))

    await node.db.run(migrating)
    corrupt(node.db_url, ("UPDATE HostCapacityVO SET availableCpu = availableCpu - 2, "
                          "availableMemory = availableMemory - ? WHERE uuid = ?", (2 * GIB, world.hosts[1])))
    assert await problems(node) == []


async def test_a_vm_on_a_host_that_does_not_exist_is_reported(node, world, vms):
    vm = vms["running"]
    corrupt(node.db_url, ("UPDATE VmInstanceVO SET hostUuid = ? WHERE uuid = ?", ("0" * 32, vm.uuid)))
    found = await problems(node)
    # The VM's host no longer counts it: that host now holds 2 CPUs nobody uses.
    only(found, "host-capacity", vm.uuid, world.hosts[0])


# -- primary storage ----------------------------------------------------------------------------------


async def test_a_primary_storage_with_too_much_available_is_reported(node, world, vms):
    corrupt(node.db_url, ("UPDATE PrimaryStorageCapacityVO SET availableCapacity = availableCapacity + ? "
                          "WHERE uuid = ?", (GIB, world.ps)))
    found = await problems(node)
    only(found, "primary-storage-capacity", world.ps)
    assert "but its volumes hold" in found[0].details


async def test_too_little_available_is_a_leak_only_on_storage_added_empty(node, world, vms):
    corrupt(node.db_url, ("UPDATE PrimaryStorageCapacityVO SET availableCapacity = availableCapacity - ? "
                          "WHERE uuid = ?", (GIB, world.ps)))
    # A SimulatorPrimaryStorage may have been added partly used.
    assert await problems(node) == []
    only(await problems(node, strict_storage=True), "primary-storage-capacity", world.ps)


async def test_negative_available_capacity_is_reported(node, world, vms):
    corrupt(node.db_url, ("UPDATE PrimaryStorageCapacityVO SET availableCapacity = -1 WHERE uuid = ?", (world.ps,)))
    found = await problems(node)
    only(found, "primary-storage-capacity", world.ps)
    assert any("below zero" in p.details for p in found)


@pytest.fixture
async def local_world(node):
    return await node.db.run(lambda s: build_world(s, vm_cpu=2, vm_memory=2 * GIB, ps_type="LocalStorage",
                                                   ps_capacity=100 * GIB))


async def test_local_storage_shares_and_records(node, local_world):
    world = local_world
    await populate(node, world)
    assert await problems(node, strict_storage=True) == []

    # A share that lost a gigabyte, the storage's sum with it: the share does not match its volumes.
    corrupt(node.db_url,
            ("UPDATE LocalStorageHostRefVO SET availableCapacity = availableCapacity - ? WHERE hostUuid = ?",
             (GIB, world.hosts[1])),
            ("UPDATE PrimaryStorageCapacityVO SET availableCapacity = availableCapacity - ? WHERE uuid = ?",
             (GIB, world.ps)))
    found = await problems(node)
    only(found, "primary-storage-capacity", world.ps)
    assert len(found) == 1 and f"on host {world.hosts[1]}" in found[0].details

    # The storage's row alone: it no longer adds up to its shares.
    corrupt(node.db_url,
            ("UPDATE LocalStorageHostRefVO SET availableCapacity = availableCapacity + ? WHERE hostUuid = ?",
             (GIB, world.hosts[1])))
    found = await problems(node)
    only(found, "primary-storage-capacity", world.ps)
    assert len(found) == 1 and "add up to" in found[0].details


async def test_a_local_storage_record_of_a_volume_that_is_gone_is_reported(node, local_world):
    world = local_world
    await populate(node, world)
    corrupt(node.db_url, ("INSERT INTO LocalStorageResourceRefVO (resourceUuid, primaryStorageUuid, hostUuid, "
                          "size, resourceType, createDate, lastOpDate) VALUES (?, ?, ?, ?, 'VolumeVO', "
                          "'2024-01-01', '2024-01-01')", ("f" * 32, world.ps, world.hosts[0], GIB)))
    found = await problems(node)
    only(found, "primary-storage-capacity", world.ps)
    assert {"does not exist" in p.details for p in found} == {True, False}  # and the share no longer adds up


# -- addresses ------------------------------------------------------------------------------------------


async def test_a_duplicated_address_is_reported(node, world, vms):
    def nic_and_ip(session):
        nic = session.scalar(select(VmNicVO).where(VmNicVO.vmInstanceUuid == vms["running"].uuid))
        return nic.uuid, session.get(UsedIpVO, nic.usedIpUuid)

    nic_uuid, used = await node.db.run(nic_and_ip)
    columns = ("uuid, ipRangeUuid, l3NetworkUuid, vmNicUuid, ipVersion, ip, gateway, netmask, ipInLong, usedFor, "
               "metaData, createDate, lastOpDate")
    # The schema forbids it (UNIQUE (l3NetworkUuid, ip)); a copy of the table without the constraint does not.
    corrupt(node.db_url,
            (f"CREATE TABLE UsedIpCopy AS SELECT {columns} FROM UsedIpVO", ()),
            ("DROP TABLE UsedIpVO", ()),
            ("ALTER TABLE UsedIpCopy RENAME TO UsedIpVO", ()),
            (f"INSERT INTO UsedIpVO ({columns}) SELECT ?, ipRangeUuid, l3NetworkUuid, ?, ipVersion, ip, gateway, "
             f"netmask, ipInLong, usedFor, metaData, createDate, lastOpDate FROM UsedIpVO WHERE uuid = ?",
             ("d" * 32, nic_uuid, used.uuid)))
    found = await problems(node)
    only(found, "ip-addresses", world.l3, "d" * 32)
    assert any(f"{used.ip} of L3 network {world.l3} is allocated 2 times" in p.details for p in found)


async def test_a_nic_and_its_address_that_disagree_are_reported(node, world, vms):
    nic = await node.db.run(lambda s: s.scalar(select(VmNicVO.uuid)
                                                .where(VmNicVO.vmInstanceUuid == vms["running"].uuid)))
    corrupt(node.db_url, ("UPDATE VmNicVO SET ip = '10.9.9.9' WHERE uuid = ?", (nic,)))
    found = await problems(node)
    only(found, "ip-addresses", nic)
    assert "the nic shows 10.9.9.9" in found[0].details


async def test_an_address_kept_by_a_nic_that_gave_it_back_is_reported(node, world, vms):
    nic = await node.db.run(lambda s: s.scalar(select(VmNicVO.uuid)
                                                .where(VmNicVO.vmInstanceUuid == vms["running"].uuid)))
    used = await node.db.run(lambda s: s.get(VmNicVO, nic).usedIpUuid)
    corrupt(node.db_url, ("UPDATE VmNicVO SET usedIpUuid = NULL, ip = NULL WHERE uuid = ?", (nic,)))
    found = await problems(node)
    only(found, "ip-addresses", used)
    assert "held by nobody" in found[0].details


# -- orphans --------------------------------------------------------------------------------------------


async def test_nics_and_volumes_of_a_deleted_vm_are_reported(node, world, vms):
    vm = vms["stopped"]  # holds no host: only its nic and volumes are left behind
    rows = await node.db.run(lambda s: (s.scalar(select(VmNicVO.uuid).where(VmNicVO.vmInstanceUuid == vm.uuid)),
                                        s.get(VmInstanceVO, vm.uuid).rootVolumeUuid))
    corrupt(node.db_url, ("DELETE FROM VmInstanceVO WHERE uuid = ?", (vm.uuid,)))
    found = await problems(node)
    only(found, "orphans", *rows, vms["loose"].uuid)


async def test_a_nic_inserted_for_a_missing_vm_is_reported(node, world, vms):
    corrupt(node.db_url, ("INSERT INTO VmNicVO (uuid, vmInstanceUuid, l3NetworkUuid, mac, deviceId, type, state, "
                          "createDate, lastOpDate) VALUES (?, ?, ?, 'fa:00:00:00:00:01', 0, 'VNIC', 'enable', "
                          "'2024-01-01', '2024-01-01')", ("e" * 32, "0" * 32, world.l3)))
    found = await problems(node)
    only(found, "orphans", "e" * 32)
    assert f"vm {'0' * 32}, which does not exist" in found[0].details


# -- transitional states ---------------------------------------------------------------------------------


async def test_a_vm_stuck_in_starting_is_reported(node, world, vms):
    vm = vms["running"]
    corrupt(node.db_url, ("UPDATE VmInstanceVO SET state = 'Starting', lastOpDate = ? WHERE uuid = ?",
                          ((utcnow() - timedelta(hours=2)).isoformat(sep=" "), vm.uuid)))
    found = await problems(node)
    only(found, "transitional-states", vm.uuid)
    assert "Starting since" in found[0].details and "timeout 1800s" in found[0].details


async def test_the_timeout_is_the_api_timeout_config_or_the_option(node, world, vms):
    vm, volume = vms["running"], vms["loose"]
    ten_minutes_ago = (utcnow() - timedelta(minutes=10)).isoformat(sep=" ")
    corrupt(node.db_url,
            ("UPDATE VmInstanceVO SET state = 'Stopping', lastOpDate = ? WHERE uuid = ?", (ten_minutes_ago, vm.uuid)),
            ("UPDATE VolumeVO SET status = 'Creating', lastOpDate = ? WHERE uuid = ?", (ten_minutes_ago, volume.uuid)),
            ("UPDATE HostVO SET status = 'Connecting', lastOpDate = ? WHERE uuid = ?",
             (ten_minutes_ago, world.hosts[1])))
    assert await problems(node) == []  # within api/timeout's 1800 s
    only(await problems(node, transition_timeout=60), "transitional-states", vm.uuid, volume.uuid, world.hosts[1])
    corrupt(node.db_url, ("UPDATE GlobalConfigVO SET value = '300' WHERE category = 'api' AND name = 'timeout'", ()))
    only(await problems(node), "transitional-states", vm.uuid, volume.uuid, world.hosts[1])
    assert await problems(node, transition_timeout=3600) == []


# -- owners -----------------------------------------------------------------------------------------------


async def test_jobs_and_chains_of_a_vanished_mn_are_reported(node, world, vms):
    live, gone = new_uuid(), new_uuid()
    job, chain = new_uuid(), new_uuid()

    def rows(session):
        session.add(ManagementNodeVO(uuid=live, hostName="live", port=1))
        session.add_all([
            ApiJobVO(uuid=job, apiName="APIStartVmInstanceMsg", state="Processing", managementNodeUuid=gone),
            ApiJobVO(uuid=new_uuid(), apiName="APIStartVmInstanceMsg", state="Processing", managementNodeUuid=live),
            ApiJobVO(uuid=new_uuid(), apiName="APIStartVmInstanceMsg", state="Succeeded", managementNodeUuid=gone),
            FlowChainVO(uuid=chain, chainName="test.chain", managementNodeUuid=gone, state="RollingBack",
                        completedSteps="[]", data="{}"),
            FlowChainVO(chainName="test.chain", managementNodeUuid=live, state="Running", completedSteps="[]",
                        data="{}"),
            FlowChainVO(chainName="test.chain", managementNodeUuid=gone, state="Failed", completedSteps="[]",
                        data="{}"),
        ])

    await node.db.run(rows)
    found = await problems(node)
    only(found, "dead-owners", job, chain)
    assert all(f"management node {gone}" in p.details for p in found)


# -- the API and the command ----------------------------------------------------------------------------


async def test_only_runs_the_checks_named(node, world, vms):
    corrupt(node.db_url, ("UPDATE HostCapacityVO SET availableCpu = 0 WHERE uuid = ?", (world.hosts[0],)))
    assert await problems(node, only=["orphans"]) == []
    assert len(await problems(node, only=["host-capacity"])) == 1
    with pytest.raises(ValueError):
        await problems(node, only=["nonsense"])


async def test_the_command_exits_0_1_or_2(node, world, vms, tmp_path):
    runner = CliRunner()
    clean = runner.invoke(ctl, ["check", "--db-url", node.db_url])
    assert clean.exit_code == 0, clean.output
    assert "no problems found (6 checks" in clean.output

    corrupt(node.db_url, ("UPDATE PrimaryStorageCapacityVO SET availableCapacity = availableCapacity + 1 "
                          "WHERE uuid = ?", (world.ps,)))
    dirty = runner.invoke(ctl, ["check", "--db-url", node.db_url])
    assert dirty.exit_code == 1, dirty.output
    lines = dirty.output.splitlines()
    assert lines[0].startswith("primary-storage-capacity: 1 problem(s)")
    assert lines[1].startswith(f"  PrimaryStorageVO {world.ps}: primary storage {world.ps}: used")
    assert lines[-1] == "1 problem(s) found by 1 of 6 checks"

    as_json = runner.invoke(ctl, ["check", "--db-url", node.db_url, "--json"])
    assert as_json.exit_code == 1
    assert [p["resource_uuid"] for p in json.loads(as_json.output)] == [world.ps]

    missing = runner.invoke(ctl, ["check", "--var-dir", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no SQLite database" in missing.output
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "empty.db").write_bytes(b"")
    empty = runner.invoke(ctl, ["check", "--db-url", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert empty.exit_code == 2 and "cannot read the database" in empty.output
