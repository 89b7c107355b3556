"""The API definitions of zones, clusters, global config, tags and management
nodes match ZStack's @RestRequest / @RestResponse (read from ZStack's source)."""

from __future__ import annotations

import pytest

from mn.api.message import APIEvent, APIMessage, APIQueryMessage, APIQueryReply, APIReply, Ref
from mn.cluster import messages as cluster
from mn.globalconfig import api as globalconfig
from mn.services import management_node
from mn.tags import api as tags
from mn.zone import messages as zone

Z, C = "org.zstack.header.zone.", "org.zstack.header.cluster."
G, T, M = "org.zstack.core.config.", "org.zstack.header.tag.", "org.zstack.header.managementnode."

# API: (FULL_NAME, method, path, optionalPaths, isAction, response FULL_NAME, allTo, fieldsTo)
ZSTACK = {
    zone.APICreateZoneMsg: (Z + "APICreateZoneMsg", "POST", "/zones", (), False,
                            Z + "APICreateZoneEvent", "inventory", ()),
    zone.APIQueryZoneMsg: (Z + "APIQueryZoneMsg", "GET", "/zones", ("/zones/{uuid}",), False,
                           Z + "APIQueryZoneReply", "inventories", ()),
    zone.APIUpdateZoneMsg: (Z + "APIUpdateZoneMsg", "PUT", "/zones/{uuid}/actions", (), True,
                            Z + "APIUpdateZoneEvent", "inventory", ()),
    zone.APIChangeZoneStateMsg: (Z + "APIChangeZoneStateMsg", "PUT", "/zones/{uuid}/actions", (), True,
                                 Z + "APIChangeZoneStateEvent", "inventory", ()),
    zone.APIDeleteZoneMsg: (Z + "APIDeleteZoneMsg", "DELETE", "/zones/{uuid}", (), False,
                            Z + "APIDeleteZoneEvent", None, ()),
    cluster.APICreateClusterMsg: (C + "APICreateClusterMsg", "POST", "/clusters", (), False,
                                  C + "APICreateClusterEvent", "inventory", ()),
    cluster.APIQueryClusterMsg: (C + "APIQueryClusterMsg", "GET", "/clusters", ("/clusters/{uuid}",), False,
                                 C + "APIQueryClusterReply", "inventories", ()),
    cluster.APIUpdateClusterMsg: (C + "APIUpdateClusterMsg", "PUT", "/clusters/{uuid}/actions", (), True,
                                  C + "APIUpdateClusterEvent", "inventory", ()),
    cluster.APIChangeClusterStateMsg: (C + "APIChangeClusterStateMsg", "PUT", "/clusters/{uuid}/actions", (),
                                       True, C + "APIChangeClusterStateEvent", "inventory", ()),
    cluster.APIDeleteClusterMsg: (C + "APIDeleteClusterMsg", "DELETE", "/clusters/{uuid}", (), False,
                                  C + "APIDeleteClusterEvent", None, ()),
    globalconfig.APIQueryGlobalConfigMsg: (G + "APIQueryGlobalConfigMsg", "GET", "/global-configurations", (),
                                           False, G + "APIQueryGlobalConfigReply", "inventories", ()),
    globalconfig.APIUpdateGlobalConfigMsg: (G + "APIUpdateGlobalConfigMsg", "PUT",
                                            "/global-configurations/{category}/{name}/actions", (), True,
                                            G + "APIUpdateGlobalConfigEvent", "inventory", ()),
    globalconfig.APIResetGlobalConfigMsg: (G + "APIResetGlobalConfigMsg", "PUT", "/global-configurations/actions",
                                           (), True, G + "APIResetGlobalConfigEvent", None, ()),
    globalconfig.APIGetGlobalConfigOptionsMsg: (G + "APIGetGlobalConfigOptionsMsg", "GET",
                                                "/global-configurations/{category}/{name}", (), False,
                                                G + "APIGetGlobalConfigOptionsReply", None, ("options",)),
    tags.APICreateSystemTagMsg: (T + "APICreateSystemTagMsg", "POST", "/system-tags", (), False,
                                 T + "APICreateSystemTagEvent", "inventory", ()),
    tags.APICreateUserTagMsg: (T + "APICreateUserTagMsg", "POST", "/user-tags", (), False,
                               T + "APICreateUserTagEvent", "inventory", ()),
    tags.APIQuerySystemTagMsg: (T + "APIQuerySystemTagMsg", "GET", "/system-tags", ("/system-tags/{uuid}",),
                                False, T + "APIQuerySystemTagReply", "inventories", ()),
    tags.APIQueryUserTagMsg: (T + "APIQueryUserTagMsg", "GET", "/user-tags", ("/user-tags/{uuid}",), False,
                              T + "APIQueryUserTagReply", "inventories", ()),
    tags.APIUpdateSystemTagMsg: (T + "APIUpdateSystemTagMsg", "PUT", "/system-tags/{uuid}/actions", (), True,
                                 T + "APIUpdateSystemTagEvent", "inventory", ()),
    tags.APIDeleteTagMsg: (T + "APIDeleteTagMsg", "DELETE", "/tags/{uuid}", (), False,
                           T + "APIDeleteTagEvent", None, ()),
    management_node.APIQueryManagementNodeMsg: (
        M + "APIQueryManagementNodeMsg", "GET", "/management-nodes", ("/management-nodes/{uuid}",), False,
        M + "APIQueryManagementNodeReply", "inventories", ()),
}

# Fields ZStack's inventories show, in ZStack's order.
INVENTORY_FIELDS = {
    zone.ZoneInventory: ["uuid", "name", "description", "state", "type", "isDefault", "createDate",
                         "lastOpDate"],
    cluster.ClusterInventory: ["name", "uuid", "description", "state", "hypervisorType", "createDate",
                               "lastOpDate", "zoneUuid", "type", "architecture"],
    globalconfig.GlobalConfigInventory: ["id", "name", "category", "description", "defaultValue", "value"],
    tags.SystemTagInventory: ["uuid", "resourceUuid", "resourceType", "tag", "type", "inherent", "createDate",
                              "lastOpDate"],
    tags.UserTagInventory: ["uuid", "resourceUuid", "resourceType", "tag", "type", "createDate", "lastOpDate"],
    # ZStack's four fields, then this MN's port and state.
    management_node.ManagementNodeInventory: ["uuid", "hostName", "port", "state", "joinDate", "heartBeat"],
}


@pytest.mark.parametrize("api", list(ZSTACK), ids=lambda api: api.__name__)
def test_rest_spec_matches_zstack(api: type[APIMessage]):
    full_name, method, path, optional, is_action, response, all_to, fields = ZSTACK[api]
    rest = api.REST
    assert (api.FULL_NAME, rest.method, rest.path, rest.optional_paths, rest.is_action) == (
        full_name, method, path, optional, is_action)
    assert api.RESPONSE.FULL_NAME == response and api.RESPONSE.__name__ == response.rsplit(".", 1)[1]
    assert (rest.all_to, rest.fields) == (all_to, fields)
    assert api.__name__ == full_name.rsplit(".", 1)[1]
    assert api.SERVICE in {"zone", "cluster", "globalConfig", "tag", "managementNode"}
    if issubclass(api, APIQueryMessage):
        assert issubclass(api.RESPONSE, APIQueryReply) and api.INVENTORY in INVENTORY_FIELDS
    elif api.SYNC:
        assert issubclass(api.RESPONSE, APIReply)
    else:
        assert issubclass(api.RESPONSE, APIEvent)
    if rest.all_to == "inventory":
        assert "inventory" in api.RESPONSE.model_fields
    elif rest.all_to is None and not fields:
        assert set(api.RESPONSE.model_fields) == {"success", "error"}  # ZStack's bare @RestResponse
    for name in fields:
        assert name in api.RESPONSE.model_fields


def test_path_variables_are_fields():
    for api in ZSTACK:
        for path in api.REST.paths:
            for var in (part[1:-1] for part in path.split("/") if part.startswith("{")):
                assert var in api.model_fields or issubclass(api, APIQueryMessage), (api, var)


@pytest.mark.parametrize("inventory", list(INVENTORY_FIELDS), ids=lambda i: i.__name__)
def test_inventory_fields_match_zstack_and_are_columns(inventory):
    assert list(inventory.model_fields) == INVENTORY_FIELDS[inventory]
    columns = set(inventory.VO.__table__.columns.keys())
    assert set(inventory.column_fields()) <= columns


def test_mutating_zone_and_cluster_apis_are_admin_only_resource_apis_route_by_uuid():
    # ZStack's RBAC: org.zstack.header.zone.** and cluster.** are admin-only but the queries.
    for api in ZSTACK:
        if api.SERVICE in ("zone", "cluster", "globalConfig") and not api.__name__.startswith(("APIQuery",
                                                                                                "APIGet")):
            assert api.ADMIN_ONLY, api
        if "/{uuid}" in api.REST.path and api.SERVICE in ("zone", "cluster"):
            assert api.ROUTE_BY == "uuid", api
    assert not zone.APIQueryZoneMsg.ADMIN_ONLY and not cluster.APIQueryClusterMsg.ADMIN_ONLY


def test_resource_fields_carry_refs():
    def refs(api, field):
        return [m.resource_type for m in api.model_fields[field].metadata if isinstance(m, Ref)]

    assert refs(cluster.APICreateClusterMsg, "zoneUuid") == ["ZoneVO"]
    for api in (zone.APIUpdateZoneMsg, zone.APIChangeZoneStateMsg):
        assert refs(api, "uuid") == ["ZoneVO"]
    for api in (cluster.APIUpdateClusterMsg, cluster.APIChangeClusterStateMsg):
        assert refs(api, "uuid") == ["ClusterVO"]
    # Deleting what does not exist succeeds in ZStack: no 404 from the API layer.
    for api in (zone.APIDeleteZoneMsg, cluster.APIDeleteClusterMsg, tags.APIDeleteTagMsg):
        assert refs(api, "uuid") == []


def test_relations_are_zstacks_expanded_queries():
    cluster_zone = cluster.ClusterInventory.RELATIONS["zone"]
    assert (cluster_zone.target_class(), cluster_zone.local_key, cluster_zone.remote_key,
            cluster_zone.many, cluster_zone.expanded) == (zone.ZoneInventory, "zoneUuid", "uuid", False, True)
    zone_cluster = zone.ZoneInventory.RELATIONS["cluster"]
    assert (zone_cluster.target_class(), zone_cluster.local_key, zone_cluster.remote_key,
            zone_cluster.many, zone_cluster.expanded) == (cluster.ClusterInventory, "uuid", "zoneUuid", True, True)
