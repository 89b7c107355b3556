"""The Authorization header and AccessKey signatures, exactly as ZStack's SDKs send them.

Two schemes (``rest/RestServer.java``)::

    Authorization: OAuth <session uuid>
    Authorization: ZStack <AccessKeyID>:<signature>
    Date: Thu, 17 Oct 2024 13:43:35 Asia/Shanghai

The signature is ``base64(HMAC-SHA1(AccessKeySecret, string_to_sign))``
with the string to sign (ZStack's ``ZSClient.calculateAccessKeySignature``
and zssdk.py's ``calculateAccessKey``)::

    <HTTP method>\\n<Date header, verbatim>\\n/v1<API path>

where the path is the request's URL path from ``/v1`` on (no context path
such as ``/zstack``, no query string), e.g. ``PUT\\n...\\n/v1/zones/<uuid>/actions``.
The Java SDK writes the Date as ``EEE, dd MMM yyyy HH:mm:ss VV`` (a zone id
such as ``Asia/Shanghai``), zssdk.py as local time followed by ``CST``;
the server parses ``EEE, dd MMM yyyy HH:mm:ss z`` and refuses a request
more than 15 minutes away from its clock.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import zoneinfo
from datetime import datetime, timedelta, timezone, tzinfo

from mn.errors import OperationError, SysErrors
from mn.identity.errors import request_time_too_skewed

OAUTH = "OAuth"
ACCESS_KEY = "ZStack"
#: ZStack's RestConstants.REQUEST_DURATION_MINUTES.
MAX_CLOCK_SKEW = timedelta(minutes=15)
#: How ZStack names the format in its error message.
DATE_FORMAT = "EEE, dd MMM yyyy HH:mm:ss z"
API_VERSION_PREFIX = "/v1"


@dataclasses.dataclass(frozen=True)
class SessionCredential:
    """``OAuth <uuid>``."""

    session_uuid: str


@dataclasses.dataclass(frozen=True)
class AccessKeyCredential:
    """``ZStack <AccessKeyID>:<signature>``."""

    access_key_id: str
    signature: str


def parse_authorization(header: str | None) -> SessionCredential | AccessKeyCredential:
    """The credential in an Authorization header; SYS.1007 if it is missing or malformed.

    Like ZStack, the scheme is matched as a prefix and the rest is trimmed.
    """
    if header is None:
        raise _invalid("missing header 'Authorization'")
    header = header.strip()
    if header.startswith(OAUTH):
        return SessionCredential(header[len(OAUTH):].strip())
    if header.startswith(ACCESS_KEY):
        parts = header[len(ACCESS_KEY):].strip().split(":")
        if len(parts) != 2 or not all(parts):
            raise _invalid("accessKey format is 'ZStack AccessKeyId:Signature'")
        return AccessKeyCredential(parts[0], parts[1])
    raise _invalid(f"Authorization type must be '{OAUTH}' or '{ACCESS_KEY}'")


def api_path(path: str) -> str:
    """The part of a request path that is signed: from ``/v1`` on, without a
    context path (``/zstack``) or query string."""
    path = path.split("?", 1)[0]
    if path == API_VERSION_PREFIX or path.startswith(API_VERSION_PREFIX + "/"):
        return path
    index = path.find(API_VERSION_PREFIX + "/")
    if index < 0 and path.endswith(API_VERSION_PREFIX):
        index = len(path) - len(API_VERSION_PREFIX)
    return path[index:] if index >= 0 else path


def string_to_sign(method: str, date: str, path: str) -> str:
    return f"{method.upper()}\n{date}\n{api_path(path)}"


def sign(secret: str, method: str, date: str, path: str) -> str:
    """The signature a ZStack SDK puts after ``ZStack <AccessKeyID>:``."""
    digest = hmac.new(secret.encode(), string_to_sign(method, date, path).encode(),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_matches(secret: str, signature: str, method: str, date: str, path: str) -> bool:
    return hmac.compare_digest(sign(secret, method, date, path).encode(), signature.encode())


def format_date(when: datetime) -> str:
    """``when`` (aware) as a Date header the server accepts, in GMT."""
    utc = when.astimezone(timezone.utc)
    return (f"{_DAYS[utc.weekday()]}, {utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year} "
            f"{utc:%H:%M:%S} GMT")


# -- the request time ----------------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(r"(?P<dow>[A-Za-z]{3}),\s+(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3})\s+"
                   r"(?P<year>\d{4})\s+(?P<hms>\d{2}:\d{2}:\d{2})\s+(?P<zone>\S+)")
_OFFSET = re.compile(r"(?:GMT|UTC|UT)?(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?")
#: Zone names Java's ``z`` and RFC 822 agree on. ``CST`` is US Central for
#: Java too, although zssdk.py writes it after China's local time: the
#: wall-clock comparison (checkTimeZone false) is what accepts those.
_NAMED_ZONES = {"GMT": 0, "UTC": 0, "UT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6,
                "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_ZONE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")


def parse_date(value: str) -> tuple[datetime, tzinfo]:
    """The wall-clock time (naive) and zone of a Date header; SYS.1007 if malformed."""
    match = _DATE.fullmatch(value.strip())
    if match is None:
        raise _bad_date()
    try:
        month = [m.lower() for m in _MONTHS].index(match["month"].lower()) + 1
        wall = datetime.strptime(f"{match['year']}-{month}-{match['day']} {match['hms']}",
                                 "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise _bad_date() from None
    if _DAYS[wall.weekday()].lower() != match["dow"].lower():
        raise _bad_date()  # as Java, which checks the day of week against the date
    return wall, _zone(match["zone"])


def check_request_time(value: str | None, *, check_time_zone: bool,
                       now: datetime | None = None) -> None:
    """Refuse a missing or malformed Date (SYS.1007) or one too far from now (ID.1002).

    With ``check_time_zone`` the Date must be within 15 minutes of ``now`` as
    an instant. Without it (ZStack's default) ZStack compares the header's
    wall-clock time with the server's local wall-clock time, ignoring the
    zone; we accept a Date that passes either comparison, so clients whose
    zone differs from the server's and clients that write a wrong zone name
    (zssdk.py's fixed ``CST``) both work.
    """
    if value is None:
        raise _invalid("'Date' must be included in request header")
    wall, zone = parse_date(value)
    now = now or datetime.now(timezone.utc)
    fits = abs(wall.replace(tzinfo=zone) - now) <= MAX_CLOCK_SKEW
    if not check_time_zone and not fits:
        local_wall = now.astimezone().replace(tzinfo=None)
        fits = abs(wall - local_wall) <= MAX_CLOCK_SKEW
    if not fits:
        raise request_time_too_skewed(
            f"the request's Date '{value}' is more than {MAX_CLOCK_SKEW.seconds // 60} minutes "
            f"away from the server's time {format_date(now)}")


def _zone(name: str) -> tzinfo:
    upper = name.upper()
    if upper in _NAMED_ZONES:
        return timezone(timedelta(hours=_NAMED_ZONES[upper]))
    offset = _OFFSET.fullmatch(upper)
    if offset is not None:
        delta = timedelta(hours=int(offset["hours"]), minutes=int(offset["minutes"] or 0))
        if delta > timedelta(hours=18):
            raise _bad_date()
        return timezone(-delta if offset["sign"] == "-" else delta)
    if _ZONE_ID.fullmatch(name):
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise _bad_date()


def _bad_date() -> OperationError:
    return _invalid(f"'Date' format error, correct format is '{DATE_FORMAT}'")


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)
