"""zstack-cli: key=value arguments -> HTTP requests (mn/cli/args.py)."""

import hashlib

import pytest

from mn.cli.args import ArgumentError, build_call, parse_condition, split_list, typed_value
from mn.cli.catalog import ApiSpec, Catalog

NULLABLE_STR = {"anyOf": [{"type": "string", "maxLength": 2048}, {"type": "null"}], "default": None}

CREATE_ZONE = ApiSpec(name="CreateZone", full_name="org.zstack.header.zone.APICreateZoneMsg",
                      method="POST", path="/zones",
                      params={"name": {"type": "string"}, "description": NULLABLE_STR,
                              "isDefault": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
                      required=("name",))
CHANGE_STATE = ApiSpec(name="ChangeZoneState", full_name="x", method="PUT", path="/zones/{uuid}/actions",
                       is_action=True, action_name="changeZoneState", path_params=("uuid",),
                       params={"stateEvent": {"enum": ["enable", "disable"], "type": "string"}})
DELETE_ZONE = ApiSpec(name="DeleteZone", full_name="x", method="DELETE", path="/zones/{uuid}",
                      path_params=("uuid",),
                      params={"deleteMode": {"enum": ["Permissive", "Enforcing"], "default": "Permissive"}})
QUERY_ZONE = ApiSpec(name="QueryZone", full_name="x", method="GET", path="/zones", query=True, sync=True)
LOGIN = ApiSpec(name="LogInByAccount", full_name="x", method="PUT", path="/accounts/login",
                is_action=True, action_name="logInByAccount", public=True,
                params={"accountName": {"type": "string"}, "password": {"type": "string"},
                        "clientInfo": {"anyOf": [{"type": "object"}, {"type": "null"}]}})
TYPED = ApiSpec(name="Typed", full_name="x", method="POST", path="/typed", parameter_name="params",
                params={"cpuNum": {"type": "integer"}, "ratio": {"type": "number"},
                        "uuids": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
                        "ports": {"type": "array", "items": {"type": "integer"}},
                        "rule": {"$ref": "#/components/schemas/Rule"}})
CATALOG = Catalog({s.name: s for s in (CREATE_ZONE, CHANGE_STATE, DELETE_ZONE, QUERY_ZONE, LOGIN, TYPED)},
                  {"Rule": {"type": "object", "properties": {"port": {"type": "integer"}}}})


def call(spec, *arguments):
    return build_call(spec, CATALOG, list(arguments))


def test_create_posts_params_and_tags_at_top_level():
    c = call(CREATE_ZONE, "name=z1", "description=a = b, c", "systemTags=a::1,b::2", "userTags=web")
    assert (c.method, c.path, c.query) == ("POST", "/zones", [])
    assert c.body == {"params": {"name": "z1", "description": "a = b, c"},
                      "systemTags": ["a::1", "b::2"], "userTags": ["web"]}


def test_a_string_parameter_stays_a_string_even_when_it_looks_like_json_or_a_number():
    c = call(CREATE_ZONE, "name=[1]", "description={x}")
    assert c.body["params"] == {"name": "[1]", "description": "{x}"}
    assert call(CREATE_ZONE, "name=12").body["params"]["name"] == "12"


def test_action_puts_under_the_action_name_with_the_path_variable_in_the_url():
    c = call(CHANGE_STATE, "uuid=ab12", "stateEvent=disable")
    assert (c.method, c.path) == ("PUT", "/zones/ab12/actions")
    assert c.body == {"changeZoneState": {"stateEvent": "disable"}}


def test_delete_sends_the_rest_in_the_query_string():
    c = call(DELETE_ZONE, "uuid=ab12", "deleteMode=Enforcing")
    assert (c.method, c.path, c.body) == ("DELETE", "/zones/ab12", None)
    assert c.query == [("deleteMode", "Enforcing")]


def test_a_missing_path_variable_is_an_argument_error():
    with pytest.raises(ArgumentError, match=r"DeleteZone needs uuid=<value>.*/zones/\{uuid\}"):
        call(DELETE_ZONE)


def test_path_variables_are_url_quoted():
    assert call(DELETE_ZONE, "uuid=a/b c").path == "/zones/a%2Fb%20c"


def test_values_are_typed_from_the_schema():
    c = call(TYPED, "cpuNum=4", "ratio=0.5", "uuids=a,b\\,c", "ports=22,80", 'rule={"port": 22}')
    assert c.body == {"params": {"cpuNum": 4, "ratio": 0.5, "uuids": ["a", "b,c"], "ports": [22, 80],
                                 "rule": {"port": 22}}}
    assert call(CREATE_ZONE, "name=z", "isDefault=TRUE").body["params"]["isDefault"] is True


def test_a_json_list_is_accepted_for_a_list_parameter():
    assert call(TYPED, 'uuids=["a,b", "c"]').body["params"]["uuids"] == ["a,b", "c"]


@pytest.mark.parametrize("argument, message", [
    ("cpuNum=four", "cpuNum must be an integer, not 'four'"),
    ("ratio=x", "ratio must be a number"),
    ("ports=22,http", "ports must be an integer, not 'http'"),
    ("rule=port:22", "rule must be a JSON object"),
    ("rule={port", "rule: '{port' is not valid JSON"),
    ("noequals", "'noequals' is not name=value"),
    ("=x", "'=x' is not name=value"),
])
def test_bad_values_are_argument_errors(argument, message):
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(").replace("[", r"\[")):
        call(TYPED, argument)


def test_a_parameter_given_twice_is_refused():
    with pytest.raises(ArgumentError, match="name is given twice"):
        call(CREATE_ZONE, "name=a", "name=b")


def test_unknown_parameters_are_sent_as_given_for_the_mn_to_judge():
    c = call(CREATE_ZONE, "name=z", "colour=blue", 'extra={"a": 1}')
    assert c.body["params"] == {"name": "z", "colour": "blue", "extra": {"a": 1}}


def test_login_sends_the_sha512_of_the_password():
    c = call(LOGIN, "accountName=admin", "password=password", 'clientInfo={"clientIp": "1.2.3.4"}')
    assert c.body == {"logInByAccount": {"accountName": "admin",
                                         "password": hashlib.sha512(b"password").hexdigest(),
                                         "clientInfo": {"clientIp": "1.2.3.4"}}}


def test_other_apis_send_passwords_as_given():
    spec = ApiSpec(name="AddKVMHost", full_name="x", method="POST", path="/hosts/kvm",
                   params={"password": {"type": "string"}})
    assert build_call(spec, CATALOG, ["password=secret"]).body == {"params": {"password": "secret"}}


def test_query_conditions_and_options():
    c = call(QUERY_ZONE, "name=z1", "state!=Disabled", "fields=uuid,name", "limit=10", "count=TRUE",
             "sort=+name", "start=5", "replyWithCount=false", "groupBy=state")
    assert (c.method, c.path, c.body) == ("GET", "/zones", None)
    assert c.query == [("q", "name=z1"), ("q", "state!=Disabled"), ("fields", "uuid,name"),
                       ("limit", "10"), ("count", "true"), ("sort", "+name"), ("start", "5"),
                       ("replyWithCount", "false"), ("groupBy", "state")]
    assert c.fields == ["uuid", "name"]


@pytest.mark.parametrize("argument, q", [
    ("name=z1", "name=z1"),
    ("name!=z1", "name!=z1"),
    ("memorySize>=1024", "memorySize>=1024"),
    ("memorySize<=1024", "memorySize<=1024"),
    ("cpuNum>2", "cpuNum>2"),
    ("cpuNum<2", "cpuNum<2"),
    ("uuid?=a,b", "uuid?=a,b"),
    ("uuid!?=a,b", "uuid!?=a,b"),
    ("name~=web%", "name~=web%"),
    ("name!~=web_1", "name!~=web_1"),
    ("name~=web", "name~=%web%"),            # ZStack's CLI: like without a wildcard matches anywhere
    ("name!~=web", "name!~=%web%"),
    ("description=a<=b", "description=a<=b"),  # the first operator splits; the value keeps the rest
    ("vmNics.ip=10.0.0.5", "vmNics.ip=10.0.0.5"),
    ("__systemTag__=ha::true", "__systemTag__=ha::true"),
    ("description=null", "description is null"),
    ("description!=null", "description not null"),
    ("description is null", "description is null"),
    ("description not null", "description not null"),
    ("name=", "name="),
])
def test_query_condition_operators(argument, q):
    assert call(QUERY_ZONE, argument).query == [("q", q)]


def test_operators_are_matched_longest_first_at_their_place():
    assert parse_condition("a!~=b") == ("a", "!~=", "b")
    assert parse_condition("a!?=b") == ("a", "!?=", "b")
    assert parse_condition("a>=b=c") == ("a", ">=", "b=c")
    assert parse_condition("a is null") == ("a", "is null", None)


def test_an_option_with_another_operator_is_a_condition():
    assert call(QUERY_ZONE, "limit>3").query == [("q", "limit>3")]


def test_sort_by_and_direction_become_sort():
    assert call(QUERY_ZONE, "sortBy=name", "sortDirection=desc").query == [("sort", "-name")]
    assert call(QUERY_ZONE, "sortBy=name").query == [("sort", "+name")]
    assert call(QUERY_ZONE, "sort=createDate").query == [("sort", "+createDate")]


@pytest.mark.parametrize("arguments, message", [
    (["limit=ten"], "limit must be a non-negative integer"),
    (["start=-1"], "start must be a non-negative integer"),
    (["count=yes"], "count must be true or false"),
    (["sortDirection=up"], "sortDirection must be asc or desc"),
    (["sort=+name", "sortBy=uuid"], "either sort="),
    (["justaword"], "'justaword' is not a condition"),
    (["=x"], "'=x' is not a condition"),
])
def test_bad_query_arguments(arguments, message):
    with pytest.raises(ArgumentError, match=message):
        call(QUERY_ZONE, *arguments)


def test_split_list_escapes():
    assert split_list("a,b") == ["a", "b"]
    assert split_list("a\\,b,c") == ["a,b", "c"]
    assert split_list("a\\\\,b") == ["a\\", "b"]
    assert split_list("") == [""]


def test_typed_value_of_an_enum_and_of_no_schema():
    assert typed_value("x", "1", {"enum": [1, 2]}, CATALOG) == 1
    assert typed_value("x", "plain", None, CATALOG) == "plain"
    assert typed_value("x", "[1, 2]", None, CATALOG) == [1, 2]
    assert typed_value("x", "", {"type": "array"}, CATALOG) == []


def test_get_of_a_non_query_api_repeats_list_parameters():
    spec = ApiSpec(name="GetThings", full_name="x", method="GET", path="/things",
                   params={"uuids": {"type": "array", "items": {"type": "string"}},
                           "all": {"type": "boolean"}})
    c = build_call(spec, CATALOG, ["uuids=a,b", "all=true"])
    assert (c.method, c.body) == ("GET", None)
    assert c.query == [("uuids", "a"), ("uuids", "b"), ("all", "true")]
