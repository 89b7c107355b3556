"""System tag patterns, token validators and the per-resource-type registry (no database)."""

import pytest

from mn.db.models.tag import TAG_MAX_LENGTH
from mn.errors import OperationError, SysErrors
from mn.tags import PatternedSystemTag, SystemTag, SystemTagRegistry
from mn.tags import validators

L3 = "a" * 32

HOSTNAME = PatternedSystemTag("hostname::{hostname}", "VmInstanceVO",
                              validators={"hostname": validators.hostname})
STATIC_IP = PatternedSystemTag(
    "staticIp::{l3NetworkUuid}::{ip}", "VmInstanceVO",
    validators={"l3NetworkUuid": validators.uuid, "ip": validators.ip},
    spanning={"ip"}, multi=True)
NEVER_STOP = SystemTag("ha::NeverStop", "VmInstanceVO")


def invalid(excinfo) -> str:
    """The details of an INVALID_ARGUMENT_ERROR (fails on any other error)."""
    assert excinfo.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    return excinfo.value.error.details


def test_matches_and_tokens():
    assert HOSTNAME.matches("hostname::web-1")
    assert HOSTNAME.tokens("hostname::web-1") == {"hostname": "web-1"}
    assert not HOSTNAME.matches("hostname::")
    assert not HOSTNAME.matches("hostname:web-1")
    assert not HOSTNAME.matches("xhostname::web-1")
    assert not HOSTNAME.matches("hostname::web-1\n::x")
    assert not HOSTNAME.matches(None)
    assert HOSTNAME.token_names == ("hostname",)


def test_tokens_of_a_mismatch_name_the_pattern():
    with pytest.raises(OperationError) as excinfo:
        HOSTNAME.tokens("hostnam::web")
    assert invalid(excinfo) == "system tag 'hostnam::web' does not match pattern 'hostname::{hostname}'"


def test_a_token_stops_at_the_separator_unless_spanning():
    # An ordinary token is one part: "a::b" is two.
    assert not HOSTNAME.matches("hostname::a::b")
    # A single colon is fine inside a part.
    assert HOSTNAME.tokens("hostname::a:b") == {"hostname": "a:b"}
    # The spanning ip token takes an IPv6 address with its "::".
    assert STATIC_IP.tokens(f"staticIp::{L3}::fe80::1") == {"l3NetworkUuid": L3, "ip": "fe80::1"}
    # ... while l3NetworkUuid, an ordinary token, cannot swallow a separator.
    assert STATIC_IP.tokens("staticIp::x::y::z") == {"l3NetworkUuid": "x", "ip": "y::z"}


def test_literal_text_is_not_a_regex():
    dotted = PatternedSystemTag("a.b+::{x}", "HostVO")
    assert dotted.matches("a.b+::1")
    assert not dotted.matches("aXb+::1")
    assert not dotted.matches("a.bb::1")


def test_instantiate_round_trips():
    tag = STATIC_IP.instantiate(l3NetworkUuid=L3, ip="2001:db8::7")
    assert tag == f"staticIp::{L3}::2001:db8::7"
    assert STATIC_IP.tokens(tag) == {"l3NetworkUuid": L3, "ip": "2001:db8::7"}
    assert PatternedSystemTag("cpu::{n}", "HostVO").instantiate(n=4) == "cpu::4"
    assert NEVER_STOP.instantiate() == "ha::NeverStop"


def test_instantiate_wants_exactly_the_tokens():
    with pytest.raises(TypeError, match=r"missing \['ip'\], unexpected \['mask'\]"):
        STATIC_IP.instantiate(l3NetworkUuid=L3, mask="24")


def test_instantiate_refuses_values_that_would_make_a_bad_tag():
    with pytest.raises(OperationError) as excinfo:
        HOSTNAME.instantiate(hostname="a::b")
    assert "does not match pattern 'hostname::{hostname}'" in invalid(excinfo)
    with pytest.raises(OperationError) as excinfo:
        HOSTNAME.instantiate(hostname="-bad-")
    assert invalid(excinfo) == (
        "cannot make system tag 'hostname::-bad-': token hostname='-bad-' of pattern "
        "'hostname::{hostname}' is invalid: not a host name (letters, digits, '-' and '.', "
        "labels of 1-63 characters that neither start nor end with '-')")


def test_invalid_reason_runs_every_validator():
    assert STATIC_IP.invalid_reason(f"staticIp::{L3}::10.0.0.1") is None
    assert STATIC_IP.invalid_reason("staticIp::nope::10.0.0.1") == (
        "token l3NetworkUuid='nope' of pattern 'staticIp::{l3NetworkUuid}::{ip}' is invalid: "
        "not a resource uuid (32 lower-case hex digits)")
    assert STATIC_IP.invalid_reason(f"staticIp::{L3}::10.0.0.300").endswith("not an IP address")
    assert HOSTNAME.invalid_reason("other::x") == "it does not match pattern 'hostname::{hostname}'"


def test_a_validator_may_answer_false_instead_of_raising():
    even = PatternedSystemTag("even::{n}", "HostVO", validators={"n": lambda v: int(v) % 2 == 0})
    assert even.invalid_reason("even::4") is None
    assert even.invalid_reason("even::3") == "token n='3' of pattern 'even::{n}' is invalid"


def test_like_pattern_escapes_wildcards():
    assert HOSTNAME.sql_like == "hostname::%"
    assert STATIC_IP.sql_like == "staticIp::%::%"
    assert PatternedSystemTag("cpu_%/x::{n}", "HostVO").sql_like == "cpu/_/%//x::%"


@pytest.mark.parametrize("pattern, message", [
    ("a::{x}::{x}", r"repeats tokens \['x'\]"),
    ("a::{x", "brace outside a {token}"),
    ("a::{x-y}", "brace outside a {token}"),
    ("a::{x}{y}", "adjacent tokens {x}{y}"),
    ("", "must not be empty"),
])
def test_bad_patterns_are_programming_errors(pattern, message):
    with pytest.raises(ValueError, match=message):
        PatternedSystemTag(pattern, "HostVO")


def test_validators_and_spanning_must_name_tokens():
    with pytest.raises(ValueError, match=r"validators of system tag pattern 'a::\{x\}' name "
                                         r"unknown tokens \['y'\]"):
        PatternedSystemTag("a::{x}", "HostVO", validators={"y": validators.uuid})
    with pytest.raises(ValueError, match=r"spanning .* unknown tokens \['z'\]"):
        PatternedSystemTag("a::{x}", "HostVO", spanning=["z"])
    with pytest.raises(ValueError, match="needs a resource type"):
        PatternedSystemTag("a::{x}", "")


def test_fixed_system_tag():
    assert NEVER_STOP.matches("ha::NeverStop")
    assert not NEVER_STOP.matches("ha::neverstop")
    assert NEVER_STOP.tokens("ha::NeverStop") == {}
    assert NEVER_STOP.tag == "ha::NeverStop"
    assert NEVER_STOP.sql_like == "ha::NeverStop"
    with pytest.raises(ValueError, match="use PatternedSystemTag"):
        SystemTag("ha::{mode}", "VmInstanceVO")


@pytest.mark.parametrize("validator, good, bad, reason", [
    (validators.uuid, "0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF",
     "not a resource uuid"),
    (validators.ipv4, "192.168.0.1", "fe80::1", "not an IPv4 address"),
    (validators.ip, "fe80::1", "256.0.0.1", "not an IP address"),
    (validators.hostname, "db-2.example.com", "under_score", "not a host name"),
    (validators.hostname, "x" * 63, "x" * 64, "not a host name"),
    (validators.integer(1, 64), "64", "65", "greater than 64"),
    (validators.integer(1, 64), "1", "0", "less than 1"),
    (validators.integer(), "-3", "3.5", "not an integer"),
    (validators.one_of("Legacy", "UEFI"), "UEFI", "uefi", "not one of Legacy, UEFI"),
])
def test_stock_validators(validator, good, bad, reason):
    validator(good)
    with pytest.raises(ValueError, match=reason):
        validator(bad)


@pytest.fixture
def registry():
    registry = SystemTagRegistry()
    registry.register(HOSTNAME, STATIC_IP, NEVER_STOP)
    return registry


def test_registry_finds_the_pattern_of_a_tag(registry):
    assert registry.pattern_of("VmInstanceVO", "hostname::web") is HOSTNAME
    assert registry.pattern_of("VmInstanceVO", "ha::NeverStop") is NEVER_STOP
    assert registry.patterns_of("VmInstanceVO") == [HOSTNAME, STATIC_IP, NEVER_STOP]
    assert registry.patterns_of("HostVO") == []
    assert registry.resource_types() == ["VmInstanceVO"]


def test_a_tag_matching_no_pattern_is_rejected_with_the_patterns(registry):
    with pytest.raises(OperationError) as excinfo:
        registry.pattern_of("VmInstanceVO", "hostnme::web")
    assert invalid(excinfo) == (
        "system tag 'hostnme::web' matches no system tag pattern of VmInstanceVO; the patterns "
        "are: hostname::{hostname}, staticIp::{l3NetworkUuid}::{ip}, ha::NeverStop")


def test_a_tag_failing_a_validator_is_rejected_with_the_reason(registry):
    with pytest.raises(OperationError) as excinfo:
        registry.pattern_of("VmInstanceVO", f"staticIp::{L3}::10.0.0.999")
    assert invalid(excinfo) == (
        f"system tag 'staticIp::{L3}::10.0.0.999' is invalid for VmInstanceVO: token "
        "ip='10.0.0.999' of pattern 'staticIp::{l3NetworkUuid}::{ip}' is invalid: "
        "not an IP address")


def test_a_resource_type_without_patterns_takes_no_system_tag(registry):
    with pytest.raises(OperationError) as excinfo:
        registry.pattern_of("ZoneVO", "hostname::web")
    assert invalid(excinfo) == ("system tag 'hostname::web' is invalid: resource type "
                                "'ZoneVO' has no system tags")


@pytest.mark.parametrize("tag, message", [
    ("", "a system tag must not be empty"),
    ("   ", "a system tag must not be empty"),
    (None, "a system tag must be a string, got NoneType"),
    ("hostname::" + "a" * TAG_MAX_LENGTH, f"characters long; the limit is {TAG_MAX_LENGTH}"),
])
def test_empty_odd_and_long_tags_are_rejected(registry, tag, message):
    with pytest.raises(OperationError) as excinfo:
        registry.pattern_of("VmInstanceVO", tag)
    assert message in invalid(excinfo)


def test_a_pattern_with_an_overlapping_twin_still_validates():
    loose = PatternedSystemTag("role::{role}", "VmInstanceVO")
    strict = PatternedSystemTag("role::{role}::{n}", "VmInstanceVO",
                                validators={"n": validators.integer()})
    registry = SystemTagRegistry()
    registry.register(strict, loose)
    assert registry.pattern_of("VmInstanceVO", "role::lb") is loose
    assert registry.pattern_of("VmInstanceVO", "role::lb::2") is strict


def test_validate_a_list(registry):
    tags = ["hostname::web", f"staticIp::{L3}::10.0.0.1", f"staticIp::{'b' * 32}::10.0.1.1",
            "hostname::web"]
    assert registry.validate("VmInstanceVO", tags) == [HOSTNAME, STATIC_IP, STATIC_IP, HOSTNAME]
    with pytest.raises(OperationError) as excinfo:
        registry.validate("VmInstanceVO", ["hostname::web", "ha::NeverStop", "hostname::db"])
    assert invalid(excinfo) == ("system tags 'hostname::web' and 'hostname::db' are both of "
                                "pattern 'hostname::{hostname}', of which a resource has at most one")


def test_registering_twice(registry):
    registry.register(HOSTNAME)  # the same declaration: nothing changes
    assert registry.patterns_of("VmInstanceVO").count(HOSTNAME) == 1
    with pytest.raises(ValueError, match="already registered for VmInstanceVO"):
        registry.register(PatternedSystemTag("hostname::{hostname}", "VmInstanceVO"))
    # The same text on another resource type is another pattern.
    registry.register(PatternedSystemTag("hostname::{hostname}", "HostVO"))
