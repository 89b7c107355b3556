"""Image URLs and the simulated download: protocols, local path filters, size hints."""

from __future__ import annotations

import pytest

from mn.errors import OperationError, SysErrors
from mn.image.config import LOCAL_PATH_CUSTOM_FILTER, LOCAL_PATH_WHITELIST
from mn.image.download import DEFAULT_SIMULATED_SIZE, install_path, parse_size, simulate
from mn.image.url import ant_match, normalize_image_url

GiB = 1024 ** 3


@pytest.mark.parametrize("url, stored", [
    ("http://images.example/c.qcow2", "http://images.example/c.qcow2"),
    ("  https://images.example/c.qcow2 ", "https://images.example/c.qcow2"),
    ("ftp://h/c.img", "ftp://h/c.img"),
    ("sftp://u@h/c.img", "sftp://u@h/c.img"),
    ("/opt/images/c.qcow2", "file:///opt/images/c.qcow2"),
    ("file:///mnt/c.qcow2", "file:///mnt/c.qcow2"),
])
def test_accepted_urls(url, stored):
    assert normalize_image_url(url) == stored


@pytest.mark.parametrize("url, words", [
    ("c.qcow2", "url must starts with"),
    ("file://relative/c.qcow2", "url must starts with"),
    ("zstore://x", "backup storage agent"),
    ("/proc/self/environ", "black list"),
    ("/var/log/messages", "black list"),
    ("/root/~backup/c.qcow2", "black list"),
])
def test_refused_urls(url, words):
    with pytest.raises(OperationError) as info:
        normalize_image_url(url)
    assert info.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert words in info.value.error.details


def test_the_whitelist_applies_when_chosen(monkeypatch):
    # As if an admin had set the global config (its value is what the entry holds).
    monkeypatch.setattr(LOCAL_PATH_CUSTOM_FILTER, "_value", "blacklist;whitelist")
    assert normalize_image_url("/home/u/c.qcow2") == "file:///home/u/c.qcow2"
    with pytest.raises(OperationError, match="not in white list"):
        normalize_image_url("/srv/c.qcow2")
    monkeypatch.setattr(LOCAL_PATH_WHITELIST, "_value", "")
    with pytest.raises(OperationError, match="all images on this server cannot be used"):
        normalize_image_url("/home/u/c.qcow2")


@pytest.mark.parametrize("pattern, path, matches", [
    ("/etc/**", "/etc", True),
    ("/etc/**", "/etc/ssh/sshd_config", True),
    ("/etc/**", "/etcetera/x", False),
    ("/**/.*/**", "/home/u/.ssh/id_rsa", True),
    ("/**/.*/**", "/home/u/a.b/c", False),
    ("/home/*/img", "/home/u/img", True),
    ("/home/*/img", "/home/u/v/img", False),
    ("/home/?/img", "/home/u/img", True),
])
def test_ant_patterns(pattern, path, matches):
    assert ant_match(pattern, path) is matches


@pytest.mark.parametrize("text, size", [
    ("1048576", 1024 ** 2), ("20G", 20 * GiB), ("20g", 20 * GiB), ("512MiB", 512 * 1024 ** 2),
    ("1TB", 1024 ** 4), (" 3 K ", 3 * 1024),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1G", "12Q"])
def test_parse_size_refuses_what_is_no_size(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_simulated_download_reads_sizes_from_the_url():
    image = simulate("http://x/c.qcow2?size=10G&actualSize=2G")
    assert (image.size, image.actual_size) == (10 * GiB, 2 * GiB)
    assert simulate("http://x/c.qcow2?size=10G").actual_size == 10 * GiB
    plain = simulate("http://x/c.qcow2")
    assert (plain.size, plain.actual_size) == (DEFAULT_SIMULATED_SIZE, DEFAULT_SIMULATED_SIZE)
    assert plain.md5 == simulate("http://x/c.qcow2").md5 != simulate("http://x/d.qcow2").md5
    with pytest.raises(OperationError, match="given 2 times"):
        simulate("http://x/c.qcow2?size=1G&size=2G")


def test_install_path_under_the_backup_storage_url():
    assert install_path("/data/bs/", "ISO", "u1") == "/data/bs/ISO/u1/u1.img"
    assert install_path(None, "RootVolumeTemplate", "u2") == "/RootVolumeTemplate/u2/u2.img"
