"""Zones and clusters on MariaDB and RabbitMQ, served by two MNs sharing a ring.

Each API is sent from one MN and runs on the owner of its resource, so a
zone's state change reaches clusters owned by the other MN over the bus,
and the cascade of a zone deletion deletes rows another MN created.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from mn.cluster.messages import APICreateClusterMsg, APIDeleteClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.cluster import ClusterVO
from mn.db.models.tag import UserTagVO
from mn.db.models.zone import ZoneVO
from mn.ids import new_uuid
from mn.ring import Ring
from mn.zone.messages import APIChangeZoneStateMsg, APICreateZoneMsg, APIDeleteZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

pytestmark = pytest.mark.integration


@pytest.fixture
async def nodes(mariadb_url, amqp_url):
    uuids = [new_uuid(), new_uuid()]
    pair = [SmallNode(mariadb_url, bus_url=amqp_url, ring=Ring(uuids), uuid=u) for u in uuids]
    try:
        for node in pair:
            await node.start(ClusterService, ZoneService)
        yield pair
    finally:
        for node in pair:
            await node.stop()


def count(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def test_create_follow_state_and_cascade_delete_across_two_mns(nodes):
    a, b = nodes
    zone = (await a.call(APICreateZoneMsg(name="zone-1", userTags=["dc1"]))).inventory
    clusters = []
    for i in range(6):
        sender = nodes[i % 2]
        clusters.append((await sender.call(APICreateClusterMsg(
            zoneUuid=zone.uuid, name=f"cluster-{i}", hypervisorType="KVM", userTags=[f"c{i}"]))).inventory)
    uuids = [c.uuid for c in clusters]
    owners = {a.ring.owner(u) for u in uuids}
    assert owners == {a.uuid, b.uuid}, "six clusters should land on both MNs"

    await b.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="disable"))
    assert count(a, ClusterVO, ClusterVO.zoneUuid == zone.uuid, ClusterVO.state == "Disabled") == 6
    assert count(a, ZoneVO, ZoneVO.uuid == zone.uuid, ZoneVO.state == "Disabled") == 1

    await a.call(APIDeleteClusterMsg(uuid=uuids[0]))
    assert count(a, ClusterVO, ClusterVO.zoneUuid == zone.uuid) == 5

    await b.call(APIDeleteZoneMsg(uuid=zone.uuid))
    assert count(a, ZoneVO, ZoneVO.uuid == zone.uuid) == 0
    assert count(a, ClusterVO, ClusterVO.uuid.in_(uuids)) == 0
    assert count(a, UserTagVO, UserTagVO.resourceUuid.in_([zone.uuid, *uuids])) == 0


async def test_mariadb_schema_and_restrict(nodes):
    a, _ = nodes
    inspector = inspect(a.db.engine)
    [fk] = inspector.get_foreign_keys("ClusterVO")
    assert (fk["referred_table"], fk["constrained_columns"]) == ("ZoneVO", ["zoneUuid"])
    # RESTRICT is InnoDB's default, which SHOW CREATE TABLE does not spell out.
    assert fk["options"].get("ondelete") in (None, "RESTRICT")
    assert {ix["name"] for ix in inspector.get_indexes("ClusterVO")} >= {"ix_ClusterVO_zoneUuid",
                                                                          "ix_ClusterVO_name"}
    zone = (await a.call(APICreateZoneMsg(name="restricted"))).inventory
    await a.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="c", hypervisorType="KVM"))

    def delete_zone_row(session):
        session.delete(session.get(ZoneVO, zone.uuid))

    with pytest.raises(IntegrityError):
        await a.db.run(delete_zone_row)
    await a.call(APIDeleteZoneMsg(uuid=zone.uuid))  # the cascade deletes the cluster first
    assert count(a, ZoneVO, ZoneVO.uuid == zone.uuid) == 0


async def test_concurrent_default_zones_on_one_mn_leave_one_default(nodes):
    a, _ = nodes
    created = await asyncio.gather(*(a.call(APICreateZoneMsg(name=f"d{i}", isDefault=True)) for i in range(5)))
    uuids = [event.inventory.uuid for event in created]
    assert count(a, ZoneVO, ZoneVO.uuid.in_(uuids), ZoneVO.isDefault.is_(True)) == 1
    for uuid in uuids:
        await a.call(APIDeleteZoneMsg(uuid=uuid))
