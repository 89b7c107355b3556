"""The storage API definitions match ZStack's @RestRequest / @RestResponse, API
parameters and inventories (read from ZStack's source)."""

from __future__ import annotations

import pytest

from mn.api.message import APIQueryMessage, APIQueryReply, Ref
from mn.storage.backup import inventory as bs_inventory
from mn.storage.backup import messages as bs
from mn.storage.primary import inventory as ps_inventory
from mn.storage.primary import messages as ps

P, SIM_P = "org.zstack.header.storage.primary.", "org.zstack.header.simulator.storage.primary."
B, SIM_B = "org.zstack.header.storage.backup.", "org.zstack.header.simulator.storage.backup."
L = "org.zstack.storage.primary.local."

# API: (FULL_NAME, method, path, isAction, response FULL_NAME, allTo, fieldsTo)
ZSTACK = {
    ps.APIAddSimulatorPrimaryStorageMsg: (SIM_P + "APIAddSimulatorPrimaryStorageMsg", "POST",
                                          "/primary-storage/simulators", False, P + "APIAddPrimaryStorageEvent",
                                          "inventory", ()),
    ps.APIAddLocalPrimaryStorageMsg: (L + "APIAddLocalPrimaryStorageMsg", "POST", "/primary-storage/local-storage",
                                      False, P + "APIAddPrimaryStorageEvent", "inventory", ()),
    ps.APIQueryPrimaryStorageMsg: (P + "APIQueryPrimaryStorageMsg", "GET", "/primary-storage", False,
                                   P + "APIQueryPrimaryStorageReply", "inventories", ()),
    ps.APIUpdatePrimaryStorageMsg: (P + "APIUpdatePrimaryStorageMsg", "PUT", "/primary-storage/{uuid}/actions",
                                    True, P + "APIUpdatePrimaryStorageEvent", "inventory", ()),
    ps.APIChangePrimaryStorageStateMsg: (P + "APIChangePrimaryStorageStateMsg", "PUT",
                                         "/primary-storage/{uuid}/actions", True,
                                         P + "APIChangePrimaryStorageStateEvent", "inventory", ()),
    ps.APIReconnectPrimaryStorageMsg: (P + "APIReconnectPrimaryStorageMsg", "PUT",
                                       "/primary-storage/{uuid}/actions", True,
                                       P + "APIReconnectPrimaryStorageEvent", "inventory", ()),
    ps.APIDeletePrimaryStorageMsg: (P + "APIDeletePrimaryStorageMsg", "DELETE", "/primary-storage/{uuid}", False,
                                    P + "APIDeletePrimaryStorageEvent", None, ()),
    ps.APIAttachPrimaryStorageToClusterMsg: (P + "APIAttachPrimaryStorageToClusterMsg", "POST",
                                             "/clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}", False,
                                             P + "APIAttachPrimaryStorageToClusterEvent", "inventory", ()),
    ps.APIDetachPrimaryStorageFromClusterMsg: (P + "APIDetachPrimaryStorageFromClusterMsg", "DELETE",
                                               "/clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}",
                                               False, P + "APIDetachPrimaryStorageFromClusterEvent", "inventory",
                                               ()),
    # ZStack's fieldsTo = {"all"}: every field of the reply.
    ps.APIGetPrimaryStorageCapacityMsg: (P + "APIGetPrimaryStorageCapacityMsg", "GET",
                                         "/primary-storage/capacities", False,
                                         P + "APIGetPrimaryStorageCapacityReply", None,
                                         ("totalCapacity", "availableCapacity", "totalPhysicalCapacity",
                                          "availablePhysicalCapacity")),
    ps.APIGetPrimaryStorageTypesMsg: (P + "APIGetPrimaryStorageTypesMsg", "GET", "/primary-storage/types", False,
                                      P + "APIGetPrimaryStorageTypesReply", None, ("types=primaryStorageTypes",)),
    ps.APIQueryLocalStorageResourceRefMsg: (L + "APIQueryLocalStorageResourceRefMsg", "GET",
                                            "/primary-storage/local-storage/resource-refs", False,
                                            L + "APIQueryLocalStorageResourceRefReply", "inventories", ()),
    ps.APIGetLocalStorageHostDiskCapacityMsg: (L + "APIGetLocalStorageHostDiskCapacityMsg", "GET",
                                               "/primary-storage/local-storage/{primaryStorageUuid}/capacities",
                                               False, L + "APIGetLocalStorageHostDiskCapacityReply",
                                               "inventories", ()),
    bs.APIAddSimulatorBackupStorageMsg: (SIM_B + "APIAddSimulatorBackupStorageMsg", "POST",
                                         "/backup-storage/simulators", False, B + "APIAddBackupStorageEvent",
                                         "inventory", ()),
    bs.APIQueryBackupStorageMsg: (B + "APIQueryBackupStorageMsg", "GET", "/backup-storage", False,
                                  B + "APIQueryBackupStorageReply", "inventories", ()),
    bs.APIUpdateBackupStorageMsg: (B + "APIUpdateBackupStorageMsg", "PUT", "/backup-storage/{uuid}/actions", True,
                                   B + "APIUpdateBackupStorageEvent", "inventory", ()),
    bs.APIChangeBackupStorageStateMsg: (B + "APIChangeBackupStorageStateMsg", "PUT",
                                        "/backup-storage/{uuid}/actions", True,
                                        B + "APIChangeBackupStorageStateEvent", "inventory", ()),
    bs.APIReconnectBackupStorageMsg: (B + "APIReconnectBackupStorageMsg", "PUT", "/backup-storage/{uuid}/actions",
                                      True, B + "APIReconnectBackupStorageEvent", "inventory", ()),
    bs.APIDeleteBackupStorageMsg: (B + "APIDeleteBackupStorageMsg", "DELETE", "/backup-storage/{uuid}", False,
                                   B + "APIDeleteBackupStorageEvent", None, ()),
    bs.APIAttachBackupStorageToZoneMsg: (B + "APIAttachBackupStorageToZoneMsg", "POST",
                                         "/zones/{zoneUuid}/backup-storage/{backupStorageUuid}", False,
                                         B + "APIAttachBackupStorageToZoneEvent", "inventory", ()),
    bs.APIDetachBackupStorageFromZoneMsg: (B + "APIDetachBackupStorageFromZoneMsg", "DELETE",
                                           "/zones/{zoneUuid}/backup-storage/{backupStorageUuid}", False,
                                           B + "APIDetachBackupStorageFromZoneEvent", "inventory", ()),
    bs.APIGetBackupStorageCapacityMsg: (B + "APIGetBackupStorageCapacityMsg", "GET", "/backup-storage/capacities",
                                        False, B + "APIGetBackupStorageCapacityReply", None,
                                        ("totalCapacity", "availableCapacity")),
    bs.APIGetBackupStorageTypesMsg: (B + "APIGetBackupStorageTypesMsg", "GET", "/backup-storage/types", False,
                                     B + "APIGetBackupStorageTypesReply", None, ("types=backupStorageTypes",)),
}

# Parameters of each API as ZStack's message class (and its SDK action) names them.
PARAMETERS = {
    ps.APIAddSimulatorPrimaryStorageMsg: {"url", "name", "description", "type", "zoneUuid", "totalCapacity",
                                          "availableCapacity", "totalPhysicalCapacity",
                                          "availablePhysicalCapacity", "resourceUuid"},
    ps.APIAddLocalPrimaryStorageMsg: {"url", "name", "description", "type", "zoneUuid", "resourceUuid"},
    ps.APIUpdatePrimaryStorageMsg: {"uuid", "name", "description", "url"},
    ps.APIChangePrimaryStorageStateMsg: {"uuid", "stateEvent"},
    ps.APIReconnectPrimaryStorageMsg: {"uuid"},
    ps.APIDeletePrimaryStorageMsg: {"uuid", "deleteMode"},
    ps.APIAttachPrimaryStorageToClusterMsg: {"clusterUuid", "primaryStorageUuid"},
    ps.APIDetachPrimaryStorageFromClusterMsg: {"clusterUuid", "primaryStorageUuid"},
    ps.APIGetPrimaryStorageCapacityMsg: {"zoneUuids", "clusterUuids", "primaryStorageUuids", "all"},
    ps.APIGetLocalStorageHostDiskCapacityMsg: {"hostUuid", "primaryStorageUuid"},
    bs.APIAddSimulatorBackupStorageMsg: {"url", "name", "description", "type", "importImages", "totalCapacity",
                                         "availableCapacity", "resourceUuid"},
    bs.APIUpdateBackupStorageMsg: {"uuid", "name", "description"},
    bs.APIChangeBackupStorageStateMsg: {"uuid", "stateEvent"},
    bs.APIReconnectBackupStorageMsg: {"uuid"},
    bs.APIDeleteBackupStorageMsg: {"uuid", "deleteMode"},
    bs.APIAttachBackupStorageToZoneMsg: {"zoneUuid", "backupStorageUuid"},
    bs.APIDetachBackupStorageFromZoneMsg: {"zoneUuid", "backupStorageUuid"},
    bs.APIGetBackupStorageCapacityMsg: {"zoneUuids", "backupStorageUuids", "all"},
}

# Fields ZStack's inventories show, in ZStack's order.
INVENTORY_FIELDS = {
    ps_inventory.PrimaryStorageInventory: [
        "uuid", "zoneUuid", "name", "url", "description", "totalCapacity", "availableCapacity",
        "totalPhysicalCapacity", "availablePhysicalCapacity", "systemUsedCapacity", "type", "state", "status",
        "mountPath", "createDate", "lastOpDate", "attachedClusterUuids"],
    ps_inventory.PrimaryStorageClusterRefInventory: ["id", "clusterUuid", "primaryStorageUuid", "createDate",
                                                     "lastOpDate"],
    ps_inventory.LocalStorageHostRefInventory: [
        "primaryStorageUuid", "hostUuid", "totalCapacity", "availableCapacity", "totalPhysicalCapacity",
        "availablePhysicalCapacity", "createDate", "lastOpDate"],
    ps_inventory.LocalStorageResourceRefInventory: ["resourceUuid", "primaryStorageUuid", "hostUuid", "size",
                                                    "resourceType", "createDate", "lastOpDate"],
    bs_inventory.BackupStorageInventory: [
        "uuid", "name", "url", "description", "totalCapacity", "availableCapacity", "type", "state", "status",
        "createDate", "lastOpDate", "attachedZoneUuids"],
    bs_inventory.BackupStorageZoneRefInventory: ["id", "backupStorageUuid", "zoneUuid", "createDate",
                                                 "lastOpDate"],
}


@pytest.mark.parametrize("api", list(ZSTACK), ids=lambda a: a.__name__)
def test_rest_routes_and_responses(api):
    full_name, method, path, is_action, response, all_to, fields = ZSTACK[api]
    assert api.FULL_NAME == full_name
    assert (api.REST.method, api.REST.path, api.REST.is_action) == (method, path, is_action)
    assert api.RESPONSE.FULL_NAME == response
    if issubclass(api, APIQueryMessage):
        assert issubclass(api.RESPONSE, APIQueryReply)
        assert api.REST.optional_paths in ((), (f"{path}/{{uuid}}",))
    else:
        assert (api.REST.all_to, api.REST.fields) == (all_to, fields)
    # Async APIs (events) become jobs; sync ones (replies) answer at once.
    assert api.SYNC == (not response.endswith("Event"))


@pytest.mark.parametrize("api", list(PARAMETERS), ids=lambda a: a.__name__)
def test_parameters(api):
    assert set(api.parameter_fields()) - {"systemTags", "userTags"} == PARAMETERS[api]


@pytest.mark.parametrize("api, field, resource", [
    (ps.APIAttachPrimaryStorageToClusterMsg, "clusterUuid", "ClusterVO"),
    (ps.APIAttachPrimaryStorageToClusterMsg, "primaryStorageUuid", "PrimaryStorageVO"),
    (ps.APIAddLocalPrimaryStorageMsg, "zoneUuid", "ZoneVO"),
    (ps.APIGetPrimaryStorageCapacityMsg, "clusterUuids", "ClusterVO"),
    (ps.APIGetLocalStorageHostDiskCapacityMsg, "hostUuid", "HostVO"),
    (bs.APIAttachBackupStorageToZoneMsg, "zoneUuid", "ZoneVO"),
    (bs.APIGetBackupStorageCapacityMsg, "backupStorageUuids", "BackupStorageVO"),
])
def test_resource_fields_are_checked_by_the_api_layer(api, field, resource):
    refs = [m for m in api.model_fields[field].metadata if isinstance(m, Ref)]
    assert refs == [Ref(resource)]


@pytest.mark.parametrize("inventory", list(INVENTORY_FIELDS), ids=lambda i: i.__name__)
def test_inventory_fields(inventory):
    assert list(inventory.model_fields) == INVENTORY_FIELDS[inventory]
