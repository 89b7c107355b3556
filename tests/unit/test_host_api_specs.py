"""The host API definitions match ZStack's @RestRequest / @RestResponse and
HostInventory (read from ZStack's source), and the REST layer routes them."""

from __future__ import annotations

import pytest

from mn.api.message import API_BY_NAME, APIEvent, APIQueryMessage, APIQueryReply, Ref
from mn.cluster.inventory import ClusterInventory
from mn.host import messages as host
from mn.zone.inventory import ZoneInventory

H, S = "org.zstack.header.host.", "org.zstack.header.simulator."

# API: (FULL_NAME, method, path, optionalPaths, isAction, response FULL_NAME, allTo)
ZSTACK = {
    host.APIAddSimulatorHostMsg: (S + "APIAddSimulatorHostMsg", "POST", "/hosts/simulators", (), False,
                                  H + "APIAddHostEvent", "inventory"),
    host.APIQueryHostMsg: (H + "APIQueryHostMsg", "GET", "/hosts", ("/hosts/{uuid}",), False,
                           H + "APIQueryHostReply", "inventories"),
    host.APIUpdateHostMsg: (H + "APIUpdateHostMsg", "PUT", "/hosts/{uuid}/actions", (), True,
                            H + "APIUpdateHostEvent", "inventory"),
    host.APIChangeHostStateMsg: (H + "APIChangeHostStateMsg", "PUT", "/hosts/{uuid}/actions", (), True,
                                 H + "APIChangeHostStateEvent", "inventory"),
    host.APIReconnectHostMsg: (H + "APIReconnectHostMsg", "PUT", "/hosts/{uuid}/actions", (), True,
                               H + "APIReconnectHostEvent", "inventory"),
    host.APIDeleteHostMsg: (H + "APIDeleteHostMsg", "DELETE", "/hosts/{uuid}", (), False,
                            H + "APIDeleteHostEvent", None),
}

# ZStack's HostInventory fields, in its order, without the IPMI and hardware-monitor ones.
HOST_INVENTORY_FIELDS = [
    "zoneUuid", "name", "uuid", "clusterUuid", "description", "managementIp", "hypervisorType", "state",
    "status", "totalCpuCapacity", "availableCpuCapacity", "cpuSockets", "totalMemoryCapacity",
    "availableMemoryCapacity", "cpuNum", "architecture", "createDate", "lastOpDate"]


@pytest.mark.parametrize("api", list(ZSTACK), ids=lambda api: api.__name__)
def test_rest_spec_matches_zstack(api):
    full_name, method, path, optional, is_action, response, all_to = ZSTACK[api]
    rest = api.REST
    assert (api.FULL_NAME, rest.method, rest.path, rest.optional_paths, rest.is_action) == (
        full_name, method, path, optional, is_action)
    assert api.RESPONSE.FULL_NAME == response and api.RESPONSE.__name__ == response.rsplit(".", 1)[1]
    assert (api.__name__, api.SERVICE, rest.all_to) == (full_name.rsplit(".", 1)[1], "host", all_to)
    assert API_BY_NAME[api.api_name()] is api
    if issubclass(api, APIQueryMessage):
        assert issubclass(api.RESPONSE, APIQueryReply) and not api.ADMIN_ONLY
    else:
        assert issubclass(api.RESPONSE, APIEvent) and api.ADMIN_ONLY  # ZStack: no @Action, admin only
    if "/{uuid}" in rest.path:
        assert api.ROUTE_BY == "uuid"


def test_add_simulator_host_takes_zstacks_parameters():
    assert set(host.APIAddSimulatorHostMsg.parameter_fields()) == {
        "memoryCapacity", "cpuCapacity", "name", "description", "managementIp", "clusterUuid",
        "resourceUuid", "systemTags", "userTags"}
    required = {name for name, f in host.APIAddSimulatorHostMsg.model_fields.items() if f.is_required()}
    assert required == {"memoryCapacity", "cpuCapacity", "name", "managementIp", "clusterUuid"}


def test_inventory_fields_match_zstack():
    assert list(host.HostInventory.model_fields) == HOST_INVENTORY_FIELDS


def test_resource_fields_carry_refs():
    def refs(api, field):
        return [m.resource_type for m in api.model_fields[field].metadata if isinstance(m, Ref)]

    assert refs(host.APIAddSimulatorHostMsg, "clusterUuid") == ["ClusterVO"]
    for api in (host.APIUpdateHostMsg, host.APIChangeHostStateMsg, host.APIReconnectHostMsg):
        assert refs(api, "uuid") == ["HostVO"]
    assert refs(host.APIDeleteHostMsg, "uuid") == []  # deleting what does not exist succeeds


def test_zone_and_cluster_are_expanded_queries():
    for name, target, key in (("zone", ZoneInventory, "zoneUuid"), ("cluster", ClusterInventory, "clusterUuid")):
        rel = host.HostInventory.RELATIONS[name]
        assert (rel.target_class(), rel.local_key, rel.remote_key, rel.many, rel.expanded) == (
            target, key, "uuid", False, True)
