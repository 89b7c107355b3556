"""The Authorization and Date headers of ZStack's SDKs, and AccessKey signatures."""

from datetime import datetime, timedelta, timezone

import pytest

from mn.errors import OperationError
from mn.identity.signature import (AccessKeyCredential, SessionCredential, api_path,
                                   check_request_time, format_date, parse_authorization, parse_date,
                                   sign, signature_matches, string_to_sign)

SECRET = "Qk9vR3Xz1YbT7uLmN2pW5sJd8hFa0cEe4gKiOyUq"
KEY_UUID = "0123456789abcdef0123456789abcdef"


def code_of(exc_info) -> tuple[str, str]:
    return exc_info.value.error.code, exc_info.value.error.details


# -- signing ---------------------------------------------------------------------------

def test_string_to_sign_is_method_date_and_path_from_v1():
    assert string_to_sign("put", "Thu, 17 Oct 2024 13:43:35 Asia/Shanghai",
                          f"/zstack/v1/accesskeys/{KEY_UUID}/actions?x=1") == (
        f"PUT\nThu, 17 Oct 2024 13:43:35 Asia/Shanghai\n/v1/accesskeys/{KEY_UUID}/actions")


@pytest.mark.parametrize("path, signed", [
    ("/zstack/v1/zones", "/v1/zones"),
    ("/v1/zones", "/v1/zones"),
    ("/v1/zones?q=name=z1&limit=2", "/v1/zones"),
    ("/ctx/deeper/v1/zones/abc", "/v1/zones/abc"),
    ("/zstack/v1", "/v1"),
])
def test_signed_path_has_no_context_path_or_query(path, signed):
    assert api_path(path) == signed


# Vectors computed with `openssl dgst -sha1 -hmac <secret> -binary | base64`,
# i.e. what ZSClient.calculateAccessKeySignature produces.
@pytest.mark.parametrize("method, date, path, expected", [
    ("PUT", "Thu, 17 Oct 2024 13:43:35 Asia/Shanghai",
     f"/zstack/v1/accesskeys/{KEY_UUID}/actions", "XsbggIlpS7niHlXKqOajg8XcP8M="),
    ("GET", "Thu, 17 Oct 2024 05:43:35 GMT", "/zstack/v1/zones?q=name=z", "XL0VqesPEt+MnbTuyVUqJ2CqT+s="),
])
def test_signature_is_base64_hmac_sha1_as_the_sdks_compute_it(method, date, path, expected):
    assert sign(SECRET, method, date, path) == expected
    assert signature_matches(SECRET, expected, method, date, path)
    assert not signature_matches(SECRET, expected, "POST", date, path)
    assert not signature_matches(SECRET + "x", expected, method, date, path)
    assert not signature_matches(SECRET, expected, method, date.replace("35", "36"), path)


# -- the Authorization header ----------------------------------------------------------------

@pytest.mark.parametrize("header, credential", [
    (f"OAuth {KEY_UUID}", SessionCredential(KEY_UUID)),
    (f"  OAuth   {KEY_UUID}  ", SessionCredential(KEY_UUID)),
    ("ZStack ABCDEFGHIJ0123456789:XsbggIlpS7niHlXKqOajg8XcP8M=",
     AccessKeyCredential("ABCDEFGHIJ0123456789", "XsbggIlpS7niHlXKqOajg8XcP8M=")),
])
def test_authorization_schemes(header, credential):
    assert parse_authorization(header) == credential


@pytest.mark.parametrize("header, details", [
    (None, "missing header 'Authorization'"),
    ("Basic YWRtaW46cGFzc3dvcmQ=", "Authorization type must be 'OAuth' or 'ZStack'"),
    ("ZStack ABCDEFGHIJ", "accessKey format is 'ZStack AccessKeyId:Signature'"),
    ("ZStack a:b:c", "accessKey format is 'ZStack AccessKeyId:Signature'"),
    ("ZStack :sig", "accessKey format is 'ZStack AccessKeyId:Signature'"),
])
def test_missing_or_malformed_authorization_is_an_invalid_argument(header, details):
    with pytest.raises(OperationError) as err:
        parse_authorization(header)
    assert code_of(err) == ("SYS.1007", details)


# -- the Date header -------------------------------------------------------------------------

@pytest.mark.parametrize("value, utc", [
    # ZSClient: "EEE, dd MMM yyyy HH:mm:ss VV" with the JVM's zone id
    ("Thu, 17 Oct 2024 13:43:35 Asia/Shanghai", datetime(2024, 10, 17, 5, 43, 35)),
    ("Thu, 17 Oct 2024 05:43:35 GMT", datetime(2024, 10, 17, 5, 43, 35)),
    ("Thu, 17 Oct 2024 05:43:35 Z", datetime(2024, 10, 17, 5, 43, 35)),
    ("thu, 17 OCT 2024 07:43:35 +02:00", datetime(2024, 10, 17, 5, 43, 35)),
    ("Thu, 17 Oct 2024 00:43:35 GMT-05:00", datetime(2024, 10, 17, 5, 43, 35)),
    ("Thu, 17 Oct 2024 01:43:35 EDT", datetime(2024, 10, 17, 5, 43, 35)),
    ("Thu, 7 Nov 2024 05:43:35 UTC", datetime(2024, 11, 7, 5, 43, 35)),
])
def test_dates_the_sdks_send_are_understood(value, utc):
    wall, zone = parse_date(value)
    assert wall.replace(tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None) == utc


@pytest.mark.parametrize("value", [
    "2024-10-17T05:43:35Z",
    "Thu, 17 Oct 2024 05:43:35",  # no zone
    "Fri, 17 Oct 2024 05:43:35 GMT",  # wrong day of week
    "Thu, 32 Oct 2024 05:43:35 GMT",
    "Thu, 17 Foo 2024 05:43:35 GMT",
    "Thu, 17 Oct 2024 05:43:35 Mars/Olympus",
    "Thu, 17 Oct 2024 05:43:35 +25:00",
    "Thu, 17 Oct 2024 05:43:35 ../../etc/passwd",
])
def test_malformed_dates_are_invalid_arguments(value):
    with pytest.raises(OperationError) as err:
        parse_date(value)
    assert code_of(err) == ("SYS.1007", "'Date' format error, correct format is "
                                        "'EEE, dd MMM yyyy HH:mm:ss z'")


def test_format_date_reads_back():
    now = datetime(2024, 10, 17, 13, 43, 35, tzinfo=timezone(timedelta(hours=8)))
    assert format_date(now) == "Thu, 17 Oct 2024 05:43:35 GMT"
    wall, zone = parse_date(format_date(now))
    assert wall.replace(tzinfo=zone) == now


NOW = datetime(2024, 10, 17, 5, 43, 35, tzinfo=timezone.utc)


@pytest.mark.parametrize("check_time_zone", [True, False])
@pytest.mark.parametrize("offset", [timedelta(0), timedelta(minutes=14, seconds=59),
                                    -timedelta(minutes=15)])
def test_a_date_within_15_minutes_is_accepted(check_time_zone, offset):
    check_request_time(format_date(NOW + offset), check_time_zone=check_time_zone, now=NOW)


@pytest.mark.parametrize("check_time_zone", [True, False])
@pytest.mark.parametrize("offset", [timedelta(minutes=15, seconds=1), -timedelta(minutes=16),
                                    timedelta(days=1)])
def test_a_date_further_away_is_refused_as_too_skewed(check_time_zone, offset):
    with pytest.raises(OperationError) as err:
        check_request_time(format_date(NOW + offset), check_time_zone=check_time_zone, now=NOW)
    code, details = code_of(err)
    assert code == "ID.1002"
    assert details.startswith("requestTimeTooSkewed")


def test_without_time_zone_check_the_wall_clock_counts_as_zstack_does():
    # zssdk.py writes local time followed by a fixed "CST", whatever the zone.
    local_wall = NOW.astimezone().strftime("%a, %d %b %Y %H:%M:%S")
    check_request_time(f"{local_wall} CST", check_time_zone=False, now=NOW)
    # A correct instant in a zone other than the server's also passes.
    check_request_time("Thu, 17 Oct 2024 13:43:35 Asia/Shanghai", check_time_zone=False, now=NOW)


def test_with_time_zone_check_only_the_instant_counts():
    check_request_time("Thu, 17 Oct 2024 13:43:35 Asia/Shanghai", check_time_zone=True, now=NOW)
    with pytest.raises(OperationError) as err:
        check_request_time("Thu, 17 Oct 2024 13:43:35 GMT", check_time_zone=True, now=NOW)
    assert code_of(err)[0] == "ID.1002"


def test_a_missing_date_is_an_invalid_argument():
    with pytest.raises(OperationError) as err:
        check_request_time(None, check_time_zone=False, now=NOW)
    assert code_of(err) == ("SYS.1007", "'Date' must be included in request header")
