"""The ``image`` global configuration, with ZStack's names, defaults and checks."""

from __future__ import annotations

from mn.globalconfig import GlobalConfig, at_least, valid_values

CATEGORY = "image"

#: Delete the bits at once.
DIRECT = "Direct"
#: Mark the copies Deleted (recoverable); the expunger removes them after ``expungePeriod``.
DELAY = "Delay"
#: Mark the copies Deleted and never expunge them automatically.
NEVER = "Never"
#: Drop the copy's record only, never its bits or capacity: what deleting a
#: backup storage does to the images on it (not a value of the global config).
DELETE_REFERENCE = "DeleteReference"

DELETION_POLICY = GlobalConfig(
    CATEGORY, "deletionPolicy", str, DELAY,
    description="the behavior of deleting a image, options are [Direct, Delay, Never]. Direct: delete "
                "the image from database and directly delete its root volume; Delay: change the "
                "image's state to Destroyed in database; after the period controlled by "
                "'expungePeriod' passes, delete the image from database and delete it's root volume; "
                "Never: delete the image from database but never delete its root volume",
    validators=[valid_values(DIRECT, DELAY, NEVER)])

EXPUNGE_PERIOD = GlobalConfig(
    CATEGORY, "expungePeriod", int, 259200,
    description="the period before a destroyed image being deleted from database and before its root "
                "volume being deleted from backup storage, in seconds",
    validators=[at_least(0)])

EXPUNGE_INTERVAL = GlobalConfig(
    CATEGORY, "expungeInterval", int, 3600,
    description="the interval the expunging image task runs, in seconds",
    validators=[at_least(1)])


def _path_list(value: str) -> None:
    # ZStack: paths separated by ';', each absolute; empty means none.
    bad = [p for p in value.split(";") if p and not p.startswith("/")]
    if bad:
        raise ValueError(f"invalid value: {value}, path must separated by ';' and start with '/'")


def _filter_list(value: str) -> None:
    names = value.split(";")
    if not all(name in ("blacklist", "whitelist") for name in names):
        raise ValueError(f"{value} is not in [blacklist, whitelist]")


LOCAL_PATH_BLACKLIST = GlobalConfig(
    CATEGORY, "download.localPath.blacklist", str,
    "/**/.*/**;/**/~*/**;/etc/**;/usr/local/zstack/**;/var/log/**;/dev/**;/proc/**;/sys/**",
    description="the black list to filter local download path",
    validators=[_path_list])

LOCAL_PATH_WHITELIST = GlobalConfig(
    CATEGORY, "download.localPath.whitelist", str, "/home/**;/mnt/**;/opt/**;/root/**;",
    description="the white list to specify local available download paths",
    validators=[_path_list])

LOCAL_PATH_CUSTOM_FILTER = GlobalConfig(
    CATEGORY, "download.localPath.customFilter", str, "blacklist",
    description="default download path list for local image",
    validators=[_filter_list])
