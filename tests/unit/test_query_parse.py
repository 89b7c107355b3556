"""parse_rest_query: the query string of a REST Query API, as ZStack's RestServer reads it."""

import pytest

from mn.api.message import QueryCondition
from mn.api.query_parse import REST_OPERATORS, parse_condition, parse_rest_query
from mn.errors import OperationError, SysErrors
from tests.support.query_models import APIQueryQtVmInstanceMsg

MSG = APIQueryQtVmInstanceMsg


def cond(name, op, value=None):
    return QueryCondition(name=name, op=op, value=value)


@pytest.mark.parametrize("text, expected", [
    ("name=web", cond("name", "=", "web")),
    ("name!=web", cond("name", "!=", "web")),
    ("cpuNum>2", cond("cpuNum", ">", "2")),
    ("cpuNum>=2", cond("cpuNum", ">=", "2")),
    ("cpuNum<2", cond("cpuNum", "<", "2")),
    ("cpuNum<=2", cond("cpuNum", "<=", "2")),
    ("name?=a,b", cond("name", "in", "a,b")),
    ("name!?=a,b", cond("name", "not in", "a,b")),
    ("name~=web%", cond("name", "like", "web%")),
    ("name!~=web%", cond("name", "not like", "web%")),
    ("description is null", cond("description", "is null")),
    ("description not null", cond("description", "is not null")),
    ("vmNics.l3Network.name=l3", cond("vmNics.l3Network.name", "=", "l3")),
    ("__userTag__=web", cond("__userTag__", "=", "web")),
    # the name is trimmed, the value kept as sent
    (" name = web ", cond("name", "=", " web ")),
    # an empty value is a value
    ("description=", cond("description", "=", "")),
    # operators inside the value stay in the value
    ("description=a<=b", cond("description", "=", "a<=b")),
    ("description!=x=y", cond("description", "!=", "x=y")),
    ("description=this is null", cond("description", "=", "this is null")),
    ("name~=a!=b", cond("name", "like", "a!=b")),
])
def test_every_condition_form(text, expected):
    assert parse_condition(text) == expected


def test_every_rest_operator_is_covered():
    assert set(REST_OPERATORS) == {"!=", ">=", "<=", "!?=", "!~=", "~=", "?=", "=", ">", "<",
                                   "is null", "not null"}


def test_defaults():
    msg = parse_rest_query(MSG, {})
    assert isinstance(msg, MSG)
    assert (msg.conditions, msg.limit, msg.start, msg.count, msg.replyWithCount) == ([], 1000, 0,
                                                                                     False, False)
    assert (msg.sortBy, msg.sortDirection, msg.fields, msg.groupBy) == (None, "asc", None, None)


def test_every_parameter():
    msg = parse_rest_query(MSG, {
        "q": ["name=web", "vmNics.ip=10.0.0.5"], "limit": ["10"], "start": ["20"],
        "count": ["false"], "replyWithCount": ["TRUE"], "sort": ["-createDate"],
        "fields": ["uuid, name,,"], "groupBy": ["state"]})
    assert msg.conditions == [cond("name", "=", "web"), cond("vmNics.ip", "=", "10.0.0.5")]
    assert (msg.limit, msg.start, msg.count, msg.replyWithCount) == (10, 20, False, True)
    assert (msg.sortBy, msg.sortDirection) == ("createDate", "desc")
    assert msg.fields == ["uuid", "name"]
    assert msg.groupBy == "state"


def test_single_values_as_falcon_gives_them():
    msg = parse_rest_query(MSG, {"q": "name=web", "limit": "5", "count": "true"})
    assert msg.conditions == [cond("name", "=", "web")]
    assert (msg.limit, msg.count) == (5, True)


@pytest.mark.parametrize("sort, field, direction", [
    ("+name", "name", "asc"),
    ("-name", "name", "desc"),
    ("name", "name", "asc"),
    (" name", "name", "asc"),  # "+name" sent unencoded: the "+" is a space
])
def test_sort(sort, field, direction):
    msg = parse_rest_query(MSG, {"sort": [sort]})
    assert (msg.sortBy, msg.sortDirection) == (field, direction)


def test_path_uuid_is_a_uuid_condition():
    msg = parse_rest_query(MSG, {"fields": ["name"]}, path_uuid="a" * 32)
    assert msg.conditions == [cond("uuid", "=", "a" * 32)]
    assert msg.fields == ["name"]


@pytest.mark.parametrize("params, message", [
    ({"foo": ["1"]}, "Invalid query parameter. 'foo' is not a parameter of a query; valid "
                     "parameters are ['q', 'limit', 'start', 'count', 'replyWithCount', 'sort', "
                     "'fields', 'groupBy']"),
    ({"filterName": ["x:y"]}, "Invalid query parameter. 'filterName' is not a parameter"),
    ({"limit": ["abc"]}, "Invalid query parameter. 'limit' must be an integer from 0 to "
                         "2147483647, got 'abc'"),
    ({"limit": ["-1"]}, "'limit' must be an integer from 0"),
    ({"start": ["1.5"]}, "'start' must be an integer from 0"),
    ({"limit": ["2147483648"]}, "'limit' must be an integer from 0"),
    ({"limit": ["1", "2"]}, "Invalid query parameter. 'limit' is given 2 times; give it once"),
    ({"count": ["yes"]}, "Invalid query parameter. 'count' must be true or false, got 'yes'"),
    ({"replyWithCount": [""]}, "'replyWithCount' must be true or false"),
    ({"sort": ["-"]}, "Invalid query parameter. 'sort' must name a field"),
    ({"fields": [" , "]}, "Invalid query parameter. 'fields' contains zero field"),
    ({"groupBy": [""]}, "Invalid query parameter. 'groupBy' must name a field"),
    ({"q": ["name"]}, "Invalid query parameter. The 'name' in the parameter[q] doesn't contain "
                      "any query operator. Valid query operators are ['!=', '>=', '<=', '!?=', "
                      "'!~=', '~=', '?=', '=', '>', '<', 'is null', 'not null']"),
    ({"q": ["=web"]}, "Invalid query parameter. The '=web' in parameter[q] has no field name "
                      "before '='"),
    ({"q": ["name is null x"]}, "Invalid query parameter. The 'name is null x' in parameter[q] "
                                "has text after 'is null'"),
])
def test_bad_parameters_are_invalid_arguments(params, message):
    with pytest.raises(OperationError) as excinfo:
        parse_rest_query(MSG, params)
    assert excinfo.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert message in excinfo.value.error.details
