"""How GET/DELETE query strings become API parameters."""

from mn.api.message import APIMessage, Rest
from mn.api.rest import single_values


class APITestParamsShapeMsg(APIMessage):
    FULL_NAME = "org.zstack.test.APITestParamsShapeMsg"
    SERVICE = "test.params"
    REST = Rest("GET", "/test/params-shape", all_to=None)
    names: list[str] = []
    mode: str | None = None


def test_a_list_field_keeps_a_single_value_as_a_list():
    params = single_values(APITestParamsShapeMsg, {"names": ["a"], "mode": ["fast"]})
    assert params == {"names": ["a"], "mode": "fast"}
    assert APITestParamsShapeMsg.model_validate(params).names == ["a"]


def test_repeated_values_stay_a_list():
    assert single_values(APITestParamsShapeMsg, {"names": ["a", "b"]}) == {"names": ["a", "b"]}


def test_variables_at_one_place_share_a_name_and_map_back():
    from mn.api.rest import normalize

    canonical: dict = {}
    assert normalize("/clusters/{uuid}", canonical) == ("/clusters/{uuid}", {"uuid": "uuid"})
    template, rename = normalize("/clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}", canonical)
    assert template == "/clusters/{uuid}/primary-storage/{primaryStorageUuid}"
    assert rename == {"uuid": "clusterUuid", "primaryStorageUuid": "primaryStorageUuid"}


def test_refs_are_found_inside_optional_and_list_annotations():
    from typing import Annotated

    from mn.api.message import Ref, ref_of

    class APITestRefShapesMsg(APIMessage):
        FULL_NAME = "org.zstack.test.APITestRefShapesMsg"
        SERVICE = "test.params"
        plain: Annotated[str, Ref("ZoneVO")] = ""
        optional: Annotated[str, Ref("HostVO")] | None = None
        many: list[Annotated[str, Ref("L3NetworkVO")]] = []
        none: str = ""

    fields = APITestRefShapesMsg.model_fields
    assert ref_of(fields["plain"]).resource_type == "ZoneVO"
    assert ref_of(fields["optional"]).resource_type == "HostVO"
    assert ref_of(fields["many"]).resource_type == "L3NetworkVO"
    assert ref_of(fields["none"]) is None
