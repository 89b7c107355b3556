"""IP allocation over SQLite: free addresses, requested ones, exhaustion,
release, rollback, retries after a lost race, and 10,000 used addresses."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, insert, select

from mn.db.models.network import IpRangeVO, UsedIpVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.network import ipam
from mn.network.ipam import allocate_ip, free_addresses, release_ip
from mn.network.ipv4 import to_int, to_text
from mn.network.l2.messages import APICreateL2NoVlanNetworkMsg
from mn.network.l2.service import L2NetworkService
from mn.network.l3.messages import APIAddIpRangeByNetworkCidrMsg, APIAddIpRangeMsg, APICreateL3NetworkMsg
from mn.network.l3.service import L3NetworkService
from mn.zone.messages import APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    await node.start(ZoneService, L2NetworkService, L3NetworkService)
    yield node
    await node.stop()


async def new_l3(node, *ranges: tuple[str, str], cidr: str | None = None) -> str:
    """An L3 network with the given ranges of 10.0.0.0/16 (gateway 10.0.0.1), or a CIDR."""
    zone = (await node.call(APICreateZoneMsg(name="zone"))).inventory
    l2 = (await node.call(APICreateL2NoVlanNetworkMsg(name="l2", zoneUuid=zone.uuid, physicalInterface="eth0"))).inventory
    l3 = (await node.call(APICreateL3NetworkMsg(name="l3", l2NetworkUuid=l2.uuid))).inventory
    for start, end in ranges:
        await node.call(APIAddIpRangeMsg(l3NetworkUuid=l3.uuid, name="r", startIp=start, endIp=end,
                                         netmask="255.255.0.0", gateway="10.0.0.1"))
    if cidr:
        await node.call(APIAddIpRangeByNetworkCidrMsg(l3NetworkUuid=l3.uuid, name="c", networkCidr=cidr))
    return l3.uuid


def used_count(node, l3_uuid: str) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(UsedIpVO).where(UsedIpVO.l3NetworkUuid == l3_uuid))


async def allocate(node, l3_uuid: str, **kw) -> UsedIpVO:
    return await node.db.run(lambda s: allocate_ip(s, l3_uuid, **kw))


async def failure(node, l3_uuid: str, **kw) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await allocate(node, l3_uuid, **kw)
    return excinfo.value


async def test_a_ten_address_network_gives_ten_distinct_addresses_then_a_clear_error(node):
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.20"))
    used = [await allocate(node, l3, vm_nic_uuid=new_uuid()) for _ in range(10)]
    assert sorted(to_int(u.ip) for u in used) == list(range(to_int("10.0.0.11"), to_int("10.0.0.21")))
    first = used[0]
    assert (first.l3NetworkUuid, first.gateway, first.netmask, first.ipVersion, first.usedFor) == (
        l3, "10.0.0.1", "255.255.0.0", 4, "Vm")
    assert first.ipInLong == to_int(first.ip) and first.vmNicUuid is not None
    err = await failure(node, l3)
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert f"L3 network[uuid:{l3}] has no free IP address" in err.error.details
    assert used_count(node, l3) == 10


async def test_released_addresses_are_given_again_and_release_is_idempotent(node):
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.12"))
    a, b = await allocate(node, l3), await allocate(node, l3)
    await node.db.run(lambda s: release_ip(s, a.uuid))
    await node.db.run(lambda s: release_ip(s, a.uuid))
    again = await allocate(node, l3)
    assert again.ip == a.ip and again.uuid != a.uuid
    assert {again.ip, b.ip} == {"10.0.0.11", "10.0.0.12"}


async def test_allocation_covers_every_range_of_the_network(node):
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.13"), ("10.0.5.1", "10.0.5.2"), ("10.0.9.9", "10.0.9.9"))
    ips = {(await allocate(node, l3)).ip for _ in range(6)}
    assert ips == {"10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.5.1", "10.0.5.2", "10.0.9.9"}
    assert "has no free IP address" in (await failure(node, l3)).error.details


async def test_a_cidr_network_never_gives_its_gateway_network_or_broadcast_address(node):
    l3 = await new_l3(node, cidr="192.168.7.0/29")
    ips = {(await allocate(node, l3)).ip for _ in range(5)}
    assert ips == {f"192.168.7.{i}" for i in range(2, 7)}
    assert "has no free IP address" in (await failure(node, l3)).error.details


async def test_a_requested_address_must_be_free_in_a_range_and_not_the_gateway(node):
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.20"))
    used = await allocate(node, l3, ip="10.0.0.15", used_for="Vip")
    assert (used.ip, used.usedFor) == ("10.0.0.15", "Vip")
    taken = await failure(node, l3, ip="10.0.0.15")
    assert taken.error.code == SysErrors.OPERATION_ERROR.value and "already in use" in taken.error.details
    gateway = await failure(node, l3, ip="10.0.0.1")
    assert gateway.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value and "gateway" in gateway.error.details
    outside = await failure(node, l3, ip="10.0.0.21")
    assert outside.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "not in any IP range" in outside.error.details and "10.0.0.11-10.0.0.20" in outside.error.details
    assert "not a IPv4 address" in (await failure(node, l3, ip="10.0.0.256")).error.details
    assert "IPv4 only" in (await failure(node, l3, ip="fd00::1")).error.details
    assert used_count(node, l3) == 1


async def test_networks_without_ranges_or_that_do_not_exist(node):
    l3 = await new_l3(node)
    empty = await failure(node, l3)
    assert empty.error.code == SysErrors.OPERATION_ERROR.value and "it has no IP range" in empty.error.details
    missing = await failure(node, new_uuid())
    assert missing.error.code == SysErrors.RESOURCE_NOT_FOUND.value


async def test_an_allocation_rolls_back_with_its_transaction(node):
    # The insert is the transaction's first write: it must not be committed
    # on its own (pysqlite commits on releasing a first-write SAVEPOINT).
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.20"))

    def allocate_then_fail(session):
        allocate_ip(session, l3)
        raise RuntimeError("a later step of the caller fails")

    with pytest.raises(RuntimeError):
        await node.db.run(allocate_then_fail)
    assert used_count(node, l3) == 0


async def test_a_lost_race_is_retried_and_keeps_the_callers_work(node, monkeypatch):
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.20"))
    taken = await allocate(node, l3, ip="10.0.0.11")
    real_find_free = ipam._find_free
    picks = []

    def find_free_losing_once(session, ranges):
        # First pick: an address another transaction took (invisible to this search).
        found = (ranges[0][0], to_int(taken.ip)) if not picks else real_find_free(session, ranges)
        picks.append(to_text(found[1]))
        return found

    monkeypatch.setattr(ipam, "_find_free", find_free_losing_once)

    def two_allocations(session):
        first = allocate_ip(session, l3, ip="10.0.0.20")
        second = allocate_ip(session, l3)
        return first.ip, second.ip

    first, second = await node.db.run(two_allocations)
    assert picks[0] == "10.0.0.11" and second == picks[-1] and second not in ("10.0.0.11", "10.0.0.20")
    assert first == "10.0.0.20" and used_count(node, l3) == 3


async def test_too_many_lost_races_fail_clearly(node, monkeypatch):
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.20"))
    taken = await allocate(node, l3)
    monkeypatch.setattr(ipam, "_find_free", lambda session, ranges: (ranges[0][0], to_int(taken.ip)))
    err = await failure(node, l3)
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert f"each of the {ipam.MAX_ATTEMPTS} addresses tried" in err.error.details
    assert used_count(node, l3) == 1


async def test_ten_thousand_used_addresses_cost_a_few_statements_per_allocation(node):
    l3 = await new_l3(node, cidr="10.8.0.0/18")  # 16,381 addresses
    with node.db.session() as s:
        row = s.scalars(select(IpRangeVO).where(IpRangeVO.l3NetworkUuid == l3)).one()
        start = to_int(row.startIp)
        s.execute(insert(UsedIpVO), [
            dict(uuid=new_uuid(), ipRangeUuid=row.uuid, l3NetworkUuid=l3, ip=to_text(start + i),
                 ipInLong=start + i, gateway=row.gateway, netmask=row.netmask)
            for i in range(10000)])
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(node.db.engine, "before_cursor_execute", count)
    try:
        new = {(await allocate(node, l3)).ip for _ in range(100)}
    finally:
        event.remove(node.db.engine, "before_cursor_execute", count)
    assert len(new) == 100 and used_count(node, l3) == 10100
    # L3, ranges, a probe, at most one gap search per range segment, the insert and its read back.
    assert len(statements) <= 100 * 7


async def test_free_addresses_skip_used_ones_from_a_start(node, monkeypatch):
    monkeypatch.setattr(ipam, "_SCAN_CHUNK", 2)  # cross several chunks of used addresses
    l3 = await new_l3(node, ("10.0.0.11", "10.0.0.20"))
    for ip in ("10.0.0.12", "10.0.0.13", "10.0.0.14", "10.0.0.16", "10.0.0.20"):
        await allocate(node, l3, ip=ip)
    with node.db.session() as s:
        row = s.scalars(select(IpRangeVO).where(IpRangeVO.l3NetworkUuid == l3)).one()
        listed = [to_text(a) for a in free_addresses(s, row, 0, 100)]
        assert listed == ["10.0.0.11", "10.0.0.15", "10.0.0.17", "10.0.0.18", "10.0.0.19"]
        assert [to_text(a) for a in free_addresses(s, row, to_int("10.0.0.13"), 2)] == ["10.0.0.15", "10.0.0.17"]
        assert free_addresses(s, row, to_int("10.0.0.21"), 10) == []
