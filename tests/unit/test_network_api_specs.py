"""The L2 and L3 network API definitions match ZStack's @RestRequest /
@RestResponse and inventories (read from ZStack's source)."""

from __future__ import annotations

import pytest

from mn.api.message import APICreateMessage, APIEvent, APIMessage, APIQueryMessage, APIQueryReply, APIReply, Ref
from mn.network.l2 import inventory as l2inv
from mn.network.l2 import messages as l2
from mn.network.l3 import inventory as l3inv
from mn.network.l3 import messages as l3

L2, L3 = "org.zstack.header.network.l2.", "org.zstack.header.network.l3."
CAPACITY = ("totalCapacity", "availableCapacity", "usedIpAddressNumber", "ipv4TotalCapacity", "ipv4AvailableCapacity",
            "ipv4UsedIpAddressNumber", "ipv6TotalCapacity", "ipv6AvailableCapacity", "ipv6UsedIpAddressNumber",
            "capacityData", "resourceType")

# API: (package, method, path, optionalPaths, isAction, response, allTo, fieldsTo)
ZSTACK = {
    l2.APICreateL2NoVlanNetworkMsg: (L2, "POST", "/l2-networks/no-vlan", (), False, "APICreateL2NetworkEvent",
                                     "inventory", ()),
    l2.APICreateL2VlanNetworkMsg: (L2, "POST", "/l2-networks/vlan", (), False, "APICreateL2VlanNetworkEvent",
                                   "inventory", ()),
    l2.APIQueryL2NetworkMsg: (L2, "GET", "/l2-networks", ("/l2-networks/{uuid}",), False, "APIQueryL2NetworkReply",
                              "inventories", ()),
    l2.APIQueryL2VlanNetworkMsg: (L2, "GET", "/l2-networks/vlan", ("/l2-networks/vlan/{uuid}",), False,
                                  "APIQueryL2VlanNetworkReply", "inventories", ()),
    l2.APIUpdateL2NetworkMsg: (L2, "PUT", "/l2-networks/{uuid}/actions", (), True, "APIUpdateL2NetworkEvent",
                               "inventory", ()),
    l2.APIDeleteL2NetworkMsg: (L2, "DELETE", "/l2-networks/{uuid}", (), False, "APIDeleteL2NetworkEvent", None, ()),
    l2.APIAttachL2NetworkToClusterMsg: (L2, "POST", "/l2-networks/{l2NetworkUuid}/clusters/{clusterUuid}", (),
                                        False, "APIAttachL2NetworkToClusterEvent", "inventory", ()),
    l2.APIDetachL2NetworkFromClusterMsg: (L2, "DELETE", "/l2-networks/{l2NetworkUuid}/clusters/{clusterUuid}", (),
                                          False, "APIDetachL2NetworkFromClusterEvent", "inventory", ()),
    l3.APICreateL3NetworkMsg: (L3, "POST", "/l3-networks", (), False, "APICreateL3NetworkEvent", "inventory", ()),
    l3.APIQueryL3NetworkMsg: (L3, "GET", "/l3-networks", ("/l3-networks/{uuid}",), False, "APIQueryL3NetworkReply",
                              "inventories", ()),
    l3.APIUpdateL3NetworkMsg: (L3, "PUT", "/l3-networks/{uuid}/actions", (), True, "APIUpdateL3NetworkEvent",
                               "inventory", ()),
    l3.APIChangeL3NetworkStateMsg: (L3, "PUT", "/l3-networks/{uuid}/actions", (), True,
                                    "APIChangeL3NetworkStateEvent", "inventory", ()),
    l3.APIDeleteL3NetworkMsg: (L3, "DELETE", "/l3-networks/{uuid}", (), False, "APIDeleteL3NetworkEvent", None, ()),
    l3.APIAddIpRangeMsg: (L3, "POST", "/l3-networks/{l3NetworkUuid}/ip-ranges", (), False, "APIAddIpRangeEvent",
                          "inventory", ()),
    l3.APIAddIpRangeByNetworkCidrMsg: (L3, "POST", "/l3-networks/{l3NetworkUuid}/ip-ranges/by-cidr", (), False,
                                       "APIAddIpRangeByNetworkCidrEvent", None, ("inventory", "inventories")),
    l3.APIUpdateIpRangeMsg: (L3, "PUT", "/l3-networks/ip-ranges/{uuid}/actions", (), True, "APIUpdateIpRangeEvent",
                             "inventory", ()),
    l3.APIDeleteIpRangeMsg: (L3, "DELETE", "/l3-networks/ip-ranges/{uuid}", (), False, "APIDeleteIpRangeEvent",
                             None, ()),
    l3.APIQueryIpRangeMsg: (L3, "GET", "/l3-networks/ip-ranges", ("/l3-networks/ip-ranges/{uuid}",), False,
                            "APIQueryIpRangeReply", "inventories", ()),
    l3.APIQueryIpAddressMsg: (L3, "GET", "/l3-networks/ip-address", ("/l3-networks/ip-address/{uuid}",), False,
                              "APIQueryIpAddressReply", "inventories", ()),
    l3.APIAddDnsToL3NetworkMsg: (L3, "POST", "/l3-networks/{l3NetworkUuid}/dns", (), False,
                                 "APIAddDnsToL3NetworkEvent", "inventory", ()),
    l3.APIRemoveDnsFromL3NetworkMsg: (L3, "DELETE", "/l3-networks/{l3NetworkUuid}/dns/{dns}", (), False,
                                      "APIRemoveDnsFromL3NetworkEvent", "inventory", ()),
    l3.APICheckIpAvailabilityMsg: (L3, "GET", "/l3-networks/{l3NetworkUuid}/ip/{ip}/availability", (), False,
                                   "APICheckIpAvailabilityReply", None, ("available", "reason")),
    l3.APIGetIpAddressCapacityMsg: (L3, "GET", "/ip-capacity", (), False, "APIGetIpAddressCapacityReply", None,
                                    CAPACITY),
}

# Fields ZStack's inventories show, in ZStack's order.
L2_FIELDS = ["uuid", "name", "description", "zoneUuid", "physicalInterface", "type", "vSwitchType",
             "virtualNetworkId", "isolated", "pvlan", "createDate", "lastOpDate", "attachedClusterUuids"]
INVENTORY_FIELDS = {
    l2inv.L2NetworkInventory: L2_FIELDS,
    l2inv.L2VlanNetworkInventory: [*L2_FIELDS, "vlan"],
    l2inv.L2NetworkClusterRefInventory: ["clusterUuid", "l2NetworkUuid", "l2ProviderType", "createDate",
                                         "lastOpDate"],
    l3inv.L3NetworkInventory: ["uuid", "name", "description", "type", "zoneUuid", "l2NetworkUuid", "state",
                               "dnsDomain", "system", "category", "ipVersion", "enableIPAM", "isolated",
                               "createDate", "lastOpDate", "dns", "ipRanges", "networkServices", "hostRoute",
                               "reservedIpRanges"],
    l3inv.IpRangeInventory: ["uuid", "l3NetworkUuid", "name", "description", "startIp", "endIp", "netmask",
                             "gateway", "networkCidr", "ipVersion", "addressMode", "prefixLen", "ipRangeType",
                             "createDate", "lastOpDate"],
    # ZStack's ipInBinary (IPv6) is not kept.
    l3inv.UsedIpInventory: ["uuid", "ipRangeUuid", "l3NetworkUuid", "ipVersion", "ip", "netmask", "gateway",
                            "usedFor", "metaData", "ipInLong", "vmNicUuid", "createDate", "lastOpDate"],
    l3inv.L3NetworkDnsInventory: ["l3NetworkUuid", "dns", "createDate", "lastOpDate"],
}


@pytest.mark.parametrize("api", list(ZSTACK), ids=lambda api: api.__name__)
def test_rest_spec_matches_zstack(api: type[APIMessage]):
    package, method, path, optional, is_action, response, all_to, fields = ZSTACK[api]
    rest = api.REST
    assert (api.FULL_NAME, rest.method, rest.path, rest.optional_paths, rest.is_action) == (
        package + api.__name__, method, path, optional, is_action)
    assert (api.RESPONSE.FULL_NAME, api.RESPONSE.__name__) == (package + response, response)
    assert (rest.all_to, rest.fields) == (all_to, fields)
    assert api.SERVICE == ("network.l2" if package == L2 else "network.l3")
    if issubclass(api, APIQueryMessage):
        assert issubclass(api.RESPONSE, APIQueryReply) and api.INVENTORY in INVENTORY_FIELDS
    elif api.SYNC:
        assert issubclass(api.RESPONSE, APIReply)
    else:
        assert issubclass(api.RESPONSE, APIEvent)
    for name in fields or ((all_to,) if all_to and all_to != "inventories" else ()):
        assert name in api.RESPONSE.model_fields
    if all_to is None and not fields:
        assert set(api.RESPONSE.model_fields) == {"success", "error"}  # ZStack's bare @RestResponse


def test_get_free_ip_has_zstacks_three_paths():
    # ZStack's path is "null" with three optional paths (GetFreeIp, ...OfL3Network, ...OfIpRange).
    api = l3.APIGetFreeIpMsg
    assert set(api.REST.paths) == {"/l3-networks/ip/free", "/l3-networks/{l3NetworkUuid}/ip/free",
                                   "/l3-networks/ip-ranges/{ipRangeUuid}/ip/free"}
    assert (api.FULL_NAME, api.REST.method, api.REST.all_to, api.SYNC) == (
        L3 + "APIGetFreeIpMsg", "GET", "inventories", True)
    assert api.RESPONSE.FULL_NAME == L3 + "APIGetFreeIpReply"
    assert list(l3inv.FreeIpInventory.model_fields) == ["ipRangeUuid", "ip", "netmask", "gateway"]


def test_path_variables_are_fields():
    for api in [*ZSTACK, l3.APIGetFreeIpMsg]:
        for path in api.REST.paths:
            for var in (part[1:-1] for part in path.split("/") if part.startswith("{")):
                assert var in api.model_fields or issubclass(api, APIQueryMessage), (api, var)


@pytest.mark.parametrize("inventory", list(INVENTORY_FIELDS), ids=lambda i: i.__name__)
def test_inventory_fields_match_zstack_and_are_columns_or_relations(inventory):
    assert list(inventory.model_fields) == INVENTORY_FIELDS[inventory]
    columns = set(inventory.VO.__table__.columns.keys()) | {
        c.key for c in inventory.VO.__mapper__.column_attrs}
    unstored = set(getattr(inventory, "UNSTORED", ()))
    assert set(inventory.column_fields()) <= columns
    assert set(inventory.model_fields) <= columns | set(inventory.RELATIONS) | unstored


def test_admin_only_apis_follow_zstacks_rbac():
    # network.l2.** is admin-only but updates and queries; network.l3.** is open to every account.
    for api in ZSTACK:
        expected = api.SERVICE == "network.l2" and api not in (l2.APIUpdateL2NetworkMsg, l2.APIQueryL2NetworkMsg,
                                                               l2.APIQueryL2VlanNetworkMsg)
        assert api.ADMIN_ONLY == expected, api


def test_resource_fields_carry_refs_and_routing():
    def refs(api, field):
        return [m.resource_type for m in api.model_fields[field].metadata if isinstance(m, Ref)]

    assert refs(l2.APICreateL2VlanNetworkMsg, "zoneUuid") == ["ZoneVO"]
    assert refs(l2.APIAttachL2NetworkToClusterMsg, "clusterUuid") == ["ClusterVO"]
    assert refs(l2.APIAttachL2NetworkToClusterMsg, "l2NetworkUuid") == ["L2NetworkVO"]
    assert refs(l3.APIAddIpRangeMsg, "l3NetworkUuid") == ["L3NetworkVO"]
    assert refs(l3.APIUpdateIpRangeMsg, "uuid") == ["IpRangeVO"]
    # ZStack checks no account on the L2 network of a new L3 network, and deleting what is gone succeeds.
    for api, field in ((l3.APICreateL3NetworkMsg, "l2NetworkUuid"), (l2.APIDeleteL2NetworkMsg, "uuid"),
                       (l3.APIDeleteL3NetworkMsg, "uuid"), (l3.APIDeleteIpRangeMsg, "uuid")):
        assert refs(api, field) == []
    # Operations on an existing network run on its owner MN; creations on the MN that got them.
    for api in ZSTACK:
        if issubclass(api, (APIQueryMessage, APICreateMessage)) or api.SYNC:
            assert api.ROUTE_BY is None or api is l3.APIAddIpRangeMsg or api is l3.APIAddIpRangeByNetworkCidrMsg
        else:
            assert api.ROUTE_BY in api.model_fields, api
