"""The image APIs and inventories match ZStack's (read from ZStack's
org.zstack.header.image sources): names, routes, responses, parameters, fields."""

from __future__ import annotations

import pytest

from mn.api.message import APIEvent, APIMessage, APIQueryMessage, APIQueryReply, Ref
from mn.image import inventory as inv
from mn.image import messages as m

P = "org.zstack.header.image."

# API: (method, path, isAction, allTo, ROUTE_BY)
ZSTACK = {
    m.APIAddImageMsg: ("POST", "/images", False, "inventory", None),
    m.APIQueryImageMsg: ("GET", "/images", False, "inventories", None),
    m.APIUpdateImageMsg: ("PUT", "/images/{uuid}/actions", True, "inventory", "uuid"),
    m.APIChangeImageStateMsg: ("PUT", "/images/{uuid}/actions", True, "inventory", "uuid"),
    m.APIDeleteImageMsg: ("DELETE", "/images/{uuid}", False, None, "uuid"),
    m.APIExpungeImageMsg: ("PUT", "/images/{imageUuid}/actions", True, None, "imageUuid"),
    m.APIRecoverImageMsg: ("PUT", "/images/{imageUuid}/actions", True, "inventory", "imageUuid"),
}

# ZStack's @APIParam fields of each API (beyond the base classes' own).
PARAMETERS = {
    m.APIAddImageMsg: {"name", "description", "url", "mediaType", "guestOsType", "architecture", "system",
                       "format", "platform", "backupStorageUuids", "type", "virtio", "resourceUuid"},
    m.APIUpdateImageMsg: {"uuid", "name", "description", "guestOsType", "mediaType", "format", "system",
                          "platform", "architecture", "virtio"},
    m.APIChangeImageStateMsg: {"uuid", "stateEvent"},
    m.APIDeleteImageMsg: {"uuid", "backupStorageUuids", "deleteMode"},
    m.APIExpungeImageMsg: {"uuid", "imageUuid", "backupStorageUuids"},
    m.APIRecoverImageMsg: {"imageUuid", "backupStorageUuids"},
}

INVENTORY_FIELDS = {
    inv.ImageInventory: ["uuid", "name", "description", "state", "status", "size", "actualSize", "md5Sum", "url",
                         "mediaType", "guestOsType", "type", "platform", "architecture", "format", "system",
                         "virtio", "createDate", "lastOpDate", "backupStorageRefs"],
    inv.ImageBackupStorageRefInventory: ["imageUuid", "backupStorageUuid", "installPath", "status",
                                         "exportMd5Sum", "exportUrl", "createDate", "lastOpDate"],
}


@pytest.mark.parametrize("api", list(ZSTACK), ids=lambda api: api.__name__)
def test_rest_spec_matches_zstack(api: type[APIMessage]):
    method, path, is_action, all_to, route_by = ZSTACK[api]
    rest = api.REST
    assert (api.FULL_NAME, rest.method, rest.path, rest.is_action, rest.all_to) == (
        P + api.__name__, method, path, is_action, all_to)
    assert (api.SERVICE, api.ROUTE_BY, api.ADMIN_ONLY) == ("image", route_by, False)
    response = api.RESPONSE
    assert response.FULL_NAME == P + response.__name__
    assert response.__name__ == api.__name__.replace("Msg", "Reply" if api.SYNC else "Event")
    if issubclass(api, APIQueryMessage):
        assert rest.optional_paths == ("/images/{uuid}",)
        assert issubclass(response, APIQueryReply) and api.INVENTORY is inv.ImageInventory
        return
    assert issubclass(response, APIEvent) and not api.SYNC
    assert ("inventory" in response.model_fields) == (all_to == "inventory")
    assert set(api.parameter_fields()) - {"systemTags", "userTags"} == PARAMETERS[api]
    for var in (part[1:-1] for part in path.split("/") if part.startswith("{")):
        assert var in api.model_fields


@pytest.mark.parametrize("inventory", list(INVENTORY_FIELDS), ids=lambda i: i.__name__)
def test_inventory_fields_match_zstack_and_are_columns(inventory):
    assert list(inventory.model_fields) == INVENTORY_FIELDS[inventory]
    assert set(inventory.column_fields()) <= set(inventory.VO.__table__.columns.keys())


def test_resource_fields_carry_refs():
    def refs(api, field):
        return [r.resource_type for r in api.model_fields[field].metadata if isinstance(r, Ref)]

    for api in (m.APIAddImageMsg, m.APIDeleteImageMsg, m.APIExpungeImageMsg):
        assert refs(api, "backupStorageUuids") == ["BackupStorageVO"]
    assert refs(m.APIExpungeImageMsg, "uuid") == ["ImageVO"]
    for api in (m.APIUpdateImageMsg, m.APIChangeImageStateMsg):
        assert refs(api, "uuid") == ["ImageVO"]
    for api in (m.APIExpungeImageMsg, m.APIRecoverImageMsg):
        assert refs(api, "imageUuid") == ["ImageVO"]
    # Deleting what does not exist succeeds in ZStack: no 404 from the API layer.
    assert refs(m.APIDeleteImageMsg, "uuid") == []


def test_valid_values_are_zstacks():
    with pytest.raises(ValueError):
        m.APIAddImageMsg(name="i", url="http://x", backupStorageUuids=[])  # nonempty
    for field, bad in (("mediaType", "Disk"), ("platform", "BeOS"), ("architecture", "sparc"), ("type", "x")):
        with pytest.raises(ValueError):
            m.APIAddImageMsg(name="i", url="http://x", backupStorageUuids=["a" * 32], **{field: bad})
    with pytest.raises(ValueError):
        m.APIUpdateImageMsg(uuid="a" * 32, format="vmdk")  # Update accepts raw, qcow2 and iso only
    with pytest.raises(ValueError):
        m.APIAddImageMsg(name="n" * 256, url="http://x", backupStorageUuids=["a" * 32])


def test_relations():
    refs = inv.ImageInventory.RELATIONS["backupStorageRefs"]
    assert (refs.target_class(), refs.local_key, refs.remote_key, refs.many, refs.expanded) == (
        inv.ImageBackupStorageRefInventory, "uuid", "imageUuid", True, False)
    bs = inv.ImageBackupStorageRefInventory.RELATIONS["backupStorage"]
    assert (bs.target, bs.local_key, bs.remote_key, bs.many, bs.expanded) == (
        "BackupStorageInventory", "backupStorageUuid", "uuid", False, True)
