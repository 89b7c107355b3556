"""IPv4 ranges: ZStack's shape rules for ranges and the ranges of a CIDR."""

from __future__ import annotations

import pytest

from mn.errors import OperationError, SysErrors
from mn.network.ipv4 import Ipv4Range, check_ip, check_range, ranges_of_cidr, to_int, to_text


def refused(fn, *args) -> str:
    with pytest.raises(OperationError) as excinfo:
        fn(*args)
    assert excinfo.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    return excinfo.value.error.details


def span(r: Ipv4Range) -> tuple[str, str, str, str, str]:
    return r.start_ip, r.end_ip, r.gateway_ip, r.netmask, r.network_cidr


def test_a_valid_range_and_its_columns():
    r = check_range("192.168.1.10", "192.168.1.20", "255.255.255.0", "192.168.1.1")
    assert span(r) == ("192.168.1.10", "192.168.1.20", "192.168.1.1", "255.255.255.0", "192.168.1.0/24")
    assert (r.size, r.prefix_len) == (11, 24)
    assert r.contains(to_int("192.168.1.15")) and not r.contains(to_int("192.168.1.21"))
    assert r.overlaps(to_int("192.168.1.20"), to_int("192.168.1.30"))
    assert not r.overlaps(to_int("192.168.1.21"), to_int("192.168.1.30"))


def test_a_single_address_range_and_a_gateway_above_it():
    r = check_range("10.0.0.2", "10.0.0.2", "255.255.255.252", "10.0.0.1")
    assert (r.size, r.network_cidr) == (1, "10.0.0.0/30")


@pytest.mark.parametrize("args, message", [
    (("10.0.0.20", "10.0.0.10", "255.255.255.0", "10.0.0.1"), "start ip[10.0.0.20] is behind end ip[10.0.0.10]"),
    (("10.0.0.10", "10.0.0.20", "255.255.255.0", "10.0.0.15"), "gateway[10.0.0.15] can not be part of range"),
    (("10.0.0.10", "10.0.1.20", "255.255.255.0", "10.0.0.1"), "the endip[10.0.1.20] is not in the subnet"),
    (("10.0.0.10", "10.0.0.20", "255.255.255.0", "10.0.1.1"), "the gateway[10.0.1.1] is not in the subnet"),
    (("10.0.0.10", "10.0.0.20", "255.255.255.0", "10.0.0.255"), "the gateway[10.0.0.255] is not in the subnet"),
    (("10.0.0.0", "10.0.0.20", "255.255.255.0", "10.0.0.254"), "network address or broadcast address"),
    (("10.0.0.10", "10.0.0.255", "255.255.255.0", "10.0.0.1"), "network address or broadcast address"),
    (("10.0.0.10", "10.0.0.20", "255.255.0.255", "10.0.0.1"), "netmask[255.255.0.255] is not a netmask"),
    (("10.0.0.10", "10.0.0.20", "0.0.0.0", "10.0.0.1"), "cannot be 0.0.0.0"),
    (("10.0.0.10", "10.0.0.20", "24", "10.0.0.1"), "netmask[24] is not a netmask"),
    (("10.0.0.300", "10.0.0.20", "255.255.255.0", "10.0.0.1"), "start ip[10.0.0.300] is not a IPv4 address"),
    (("10.0.0.10", "x", "255.255.255.0", "10.0.0.1"), "end ip[x] is not a IPv4 address"),
    (("10.0.0.10", "10.0.0.20", "255.255.255.0", None), "must specify gateway"),
    (("fd00::10", "fd00::20", "255.255.255.0", "fd00::1"), "supports IPv4 only"),
    (("224.0.0.10", "224.0.0.20", "255.255.255.0", "224.0.0.1"), "multicast"),
    (("240.0.0.10", "240.0.0.20", "255.255.255.0", "240.0.0.1"), "E class"),
    (("169.254.1.10", "169.254.1.20", "255.255.255.0", "169.254.1.1"), "link local"),
])
def test_bad_ranges_are_refused_with_the_reason(args, message):
    assert message in refused(check_range, *args)


def test_cidr_gateway_is_the_first_address_and_the_range_the_rest():
    [r] = ranges_of_cidr("192.168.10.0/24")
    assert span(r) == ("192.168.10.2", "192.168.10.254", "192.168.10.1", "255.255.255.0", "192.168.10.0/24")
    assert r.size == 253


def test_cidr_is_normalized_to_its_network():
    [r] = ranges_of_cidr("192.168.10.77/24")
    assert r.network_cidr == "192.168.10.0/24"


def test_cidr_with_the_last_address_as_gateway():
    [r] = ranges_of_cidr("10.1.0.0/16", "10.1.255.254")
    assert span(r)[:3] == ("10.1.0.1", "10.1.255.253", "10.1.255.254")


def test_cidr_with_a_gateway_in_the_middle_gives_two_ranges():
    low, high = ranges_of_cidr("10.0.0.0/24", "10.0.0.100")
    assert span(low)[:3] == ("10.0.0.1", "10.0.0.99", "10.0.0.100")
    assert span(high)[:3] == ("10.0.0.101", "10.0.0.254", "10.0.0.100")


def test_smallest_cidr_with_a_range():
    [r] = ranges_of_cidr("10.0.0.4/30")
    assert span(r)[:3] == ("10.0.0.6", "10.0.0.6", "10.0.0.5")


@pytest.mark.parametrize("cidr, gateway, message", [
    ("10.0.0.0/31", None, "doesn't have usable ip range"),
    ("10.0.0.0/32", None, "doesn't have usable ip range"),
    ("10.0.0.0/33", None, "is not a valid network cidr"),
    ("10.0.0.0", None, "needs a prefix length"),
    ("nonsense", None, "is not a valid network cidr"),
    ("10.0.0.0/24", "10.0.1.1", "the gateway[10.0.1.1] is not in the subnet 10.0.0.0/24"),
    ("10.0.0.0/24", "10.0.0.0", "is not in the subnet"),
    ("10.0.0.0/24", "10.0.0.255", "is not in the subnet"),
    ("224.0.0.0/24", None, "multicast"),
])
def test_bad_cidrs_are_refused(cidr, gateway, message):
    assert message in refused(ranges_of_cidr, cidr, gateway)


def test_addresses_round_trip_and_canonical_text():
    assert to_text(to_int("10.0.0.1")) == "10.0.0.1"
    assert to_int("0.0.1.0") == 256
    assert check_ip("10.0.0.1") == "10.0.0.1"
    assert "is not a IPv4 address" in refused(check_ip, "10.0.0")
    # Leading zeros read as octal by some tools, decimal by others: refused.
    assert "is not a IPv4 address" in refused(check_ip, "010.0.0.1")
