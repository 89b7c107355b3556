"""The offering APIs and inventories match ZStack's (read from ZStack's
org.zstack.header.configuration sources): names, routes, responses, parameters,
fields and who may call them."""

from __future__ import annotations

import pytest

from mn.api.message import APIEvent, APIMessage, APIQueryMessage, APIQueryReply, Ref
from mn.offering import inventory as inv
from mn.offering import messages as m

P = "org.zstack.header.configuration."

# API: (method, path, isAction, allTo, ADMIN_ONLY)
ZSTACK = {
    m.APICreateInstanceOfferingMsg: ("POST", "/instance-offerings", False, "inventory", True),
    m.APIQueryInstanceOfferingMsg: ("GET", "/instance-offerings", False, "inventories", False),
    m.APIUpdateInstanceOfferingMsg: ("PUT", "/instance-offerings/{uuid}/actions", True, "inventory", True),
    m.APIChangeInstanceOfferingStateMsg: ("PUT", "/instance-offerings/{uuid}/actions", True, "inventory", True),
    m.APIDeleteInstanceOfferingMsg: ("DELETE", "/instance-offerings/{uuid}", False, None, True),
    m.APICreateDiskOfferingMsg: ("POST", "/disk-offerings", False, "inventory", False),
    m.APIQueryDiskOfferingMsg: ("GET", "/disk-offerings", False, "inventories", False),
    m.APIUpdateDiskOfferingMsg: ("PUT", "/disk-offerings/{uuid}/actions", True, "inventory", True),
    m.APIChangeDiskOfferingStateMsg: ("PUT", "/disk-offerings/{uuid}/actions", True, "inventory", True),
    m.APIDeleteDiskOfferingMsg: ("DELETE", "/disk-offerings/{uuid}", False, None, True),
}

PARAMETERS = {
    m.APICreateInstanceOfferingMsg: {"name", "description", "cpuNum", "cpuSpeed", "memorySize",
                                     "reservedMemorySize", "allocatorStrategy", "sortKey", "type", "resourceUuid"},
    m.APIUpdateInstanceOfferingMsg: {"uuid", "name", "description", "allocatorStrategy"},
    m.APIChangeInstanceOfferingStateMsg: {"uuid", "stateEvent"},
    m.APIDeleteInstanceOfferingMsg: {"uuid", "deleteMode"},
    m.APICreateDiskOfferingMsg: {"name", "description", "diskSize", "sortKey", "allocationStrategy", "type",
                                 "resourceUuid"},
    m.APIUpdateDiskOfferingMsg: {"uuid", "name", "description"},
    m.APIChangeDiskOfferingStateMsg: {"uuid", "stateEvent"},
    m.APIDeleteDiskOfferingMsg: {"uuid", "deleteMode"},
}

INVENTORY_FIELDS = {
    inv.InstanceOfferingInventory: ["uuid", "name", "description", "cpuNum", "cpuSpeed", "memorySize",
                                    "reservedMemorySize", "type", "allocatorStrategy", "sortKey", "createDate",
                                    "lastOpDate", "state"],
    inv.DiskOfferingInventory: ["uuid", "name", "description", "diskSize", "sortKey", "state", "type",
                                "createDate", "lastOpDate", "allocatorStrategy"],
}


@pytest.mark.parametrize("api", list(ZSTACK), ids=lambda api: api.__name__)
def test_rest_spec_matches_zstack(api: type[APIMessage]):
    method, path, is_action, all_to, admin_only = ZSTACK[api]
    rest = api.REST
    assert (api.FULL_NAME, rest.method, rest.path, rest.is_action, rest.all_to) == (
        P + api.__name__, method, path, is_action, all_to)
    assert (api.SERVICE, api.ADMIN_ONLY) == ("configuration", admin_only)
    response = api.RESPONSE
    assert response.FULL_NAME == P + response.__name__
    assert response.__name__ == api.__name__.replace("Msg", "Reply" if api.SYNC else "Event")
    if issubclass(api, APIQueryMessage):
        assert rest.optional_paths == (f"{path}/{{uuid}}",)
        assert issubclass(response, APIQueryReply) and api.INVENTORY in INVENTORY_FIELDS
        return
    assert issubclass(response, APIEvent)
    assert ("inventory" in response.model_fields) == (all_to == "inventory")
    assert set(api.parameter_fields()) - {"systemTags", "userTags"} == PARAMETERS[api]
    assert api.ROUTE_BY == ("uuid" if "{uuid}" in path else None)


@pytest.mark.parametrize("inventory", list(INVENTORY_FIELDS), ids=lambda i: i.__name__)
def test_inventory_fields_match_zstack_and_are_columns(inventory):
    assert list(inventory.model_fields) == INVENTORY_FIELDS[inventory]
    assert set(inventory.column_fields()) <= set(inventory.VO.__table__.columns.keys())


def test_resource_fields_carry_refs():
    def refs(api):
        return [r.resource_type for r in api.model_fields["uuid"].metadata if isinstance(r, Ref)]

    for api in (m.APIUpdateInstanceOfferingMsg, m.APIChangeInstanceOfferingStateMsg):
        assert refs(api) == ["InstanceOfferingVO"]
    for api in (m.APIUpdateDiskOfferingMsg, m.APIChangeDiskOfferingStateMsg):
        assert refs(api) == ["DiskOfferingVO"]
    # Deleting what does not exist succeeds in ZStack: no 404 from the API layer.
    assert refs(m.APIDeleteInstanceOfferingMsg) == refs(m.APIDeleteDiskOfferingMsg) == []
