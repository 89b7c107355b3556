"""The real ``zstack-ctl check`` on MariaDB: clean after VMs made through the
services, 1 with the problem printed after a corruption, 2 when the
database cannot be read."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from mn.db import ensure_database_exists
from mn.vm.messages import APICreateVmInstanceMsg, APIDestroyVmInstanceMsg, APIStopVmInstanceMsg
from tests.support.vm_world import GIB, build_world, start_vm_node, stop_vm_node

pytestmark = pytest.mark.integration

ZSTACK_CTL = str(Path(sys.executable).with_name("zstack-ctl"))


async def zstack_ctl_check(*args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(subprocess.run, [ZSTACK_CTL, "check", *args], capture_output=True, text=True,
                                   timeout=120)


def execute(url: str, sql: str, **params) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


@pytest.fixture
async def node(mariadb_url):
    node = await start_vm_node(mariadb_url)
    yield node
    await stop_vm_node(node)


async def test_check_is_clean_then_reports_a_corruption(node, mariadb_url):
    world = await node.db.run(lambda s: build_world(s, vm_cpu=2, vm_memory=2 * GIB))
    vms = []
    for i in range(4):
        msg = APICreateVmInstanceMsg(name=f"vm{i}", instanceOfferingUuid=world.offering, imageUuid=world.image,
                                     l3NetworkUuids=[world.l3], dataDiskOfferingUuids=[world.disk_offering])
        vms.append((await node.intercept_and_call(msg)).inventory)
    await node.intercept_and_call(APIStopVmInstanceMsg(uuid=vms[1].uuid))
    await node.intercept_and_call(APIDestroyVmInstanceMsg(uuid=vms[2].uuid))

    clean = await zstack_ctl_check("--db-url", mariadb_url, "--strict-storage")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.startswith("no problems found")

    host = vms[0].hostUuid
    execute(mariadb_url, "UPDATE HostCapacityVO SET availableCpu = availableCpu + 1 WHERE uuid = :host", host=host)
    dirty = await zstack_ctl_check("--db-url", mariadb_url)
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert dirty.stdout.splitlines()[0].startswith("host-capacity: 1 problem(s)")
    assert f"HostVO {host}: host {host}: used cpu" in dirty.stdout
    assert dirty.stdout.splitlines()[-1] == "1 problem(s) found by 1 of 6 checks"

    as_json = await zstack_ctl_check("--db-url", mariadb_url, "--json")
    assert as_json.returncode == 1
    assert [(p["check"], p["resource_uuid"]) for p in json.loads(as_json.stdout)] == [("host-capacity", host)]


async def test_check_exits_2_when_the_database_cannot_be_read(mariadb_url):
    url = make_url(mariadb_url)
    refused = url.set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
    unreachable = await zstack_ctl_check("--db-url", refused)
    assert unreachable.returncode == 2, unreachable.stdout + unreachable.stderr
    assert "cannot read the database" in unreachable.stderr
    missing = await zstack_ctl_check("--db-url", url.set(database=f"{url.database}_missing")
                                     .render_as_string(hide_password=False))
    assert missing.returncode == 2 and "Unknown database" in missing.stderr, missing.stderr
    # A database with no ZStack schema in it.
    empty = url.set(database=f"{url.database}_empty").render_as_string(hide_password=False)
    ensure_database_exists(empty)
    try:
        result = await zstack_ctl_check("--db-url", empty)
    finally:
        execute(mariadb_url, f"DROP DATABASE IF EXISTS `{url.database}_empty`")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot read the database" in result.stderr and "doesn't exist" in result.stderr
