"""Global configuration read by identity, with ZStack's categories, names and defaults."""

from __future__ import annotations

from mn.globalconfig import GlobalConfig, at_least, number_range

CATEGORY = "identity"

#: Seconds a session lives after its last use (ZStack renews a session on every API call).
SESSION_TIMEOUT = GlobalConfig(
    CATEGORY, "session.timeout", int, 7200,
    description="A timeout period assigned to a session. After timeout, the session will be "
                "cleaned out.",
    validators=[number_range(1, 31536000)])

#: Most live sessions one account may hold; one more login is refused with ID.1006.
SESSION_MAX_CONCURRENT = GlobalConfig(
    CATEGORY, "session.maxConcurrent", int, 500,
    description="Max number of sessions management server accepts for every user. When this "
                "limit met, new session will be rejected",
    validators=[at_least(1)])

#: Seconds between two sweeps deleting expired sessions.
SESSION_CLEANUP_INTERVAL = GlobalConfig(
    CATEGORY, "session.cleanup.interval", int, 3600,
    description="The interval management server checks expired sessions, in seconds",
    validators=[at_least(1)])

#: ZStack's rest/checkTimeZone: whether the zone written in an AccessKey
#: request's Date header counts. False (ZStack's default) compares the
#: header's wall-clock time with the server's; we also accept a Date that
#: is right as an instant (see mn.identity.signature.check_request_time).
CHECK_TIME_ZONE = GlobalConfig(
    "rest", "checkTimeZone", bool, False,
    description="Check the time zone of the request time if enabled. Ignore the time zone of "
                "that if disabled")
