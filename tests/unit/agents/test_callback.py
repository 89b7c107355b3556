"""Delivering callbacks: retries within a bound, and other MNs when the own one is gone."""

from __future__ import annotations

import socket

from agents.kvm.callback import post_with_retries, same_path_on
from tests.unit.agents.fake_mn import FakeMN


def dead_url(path: str = "/zstack/asyncrest/callback") -> str:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def test_same_path_on_the_other_mns():
    url = "http://10.0.0.1:8080/zstack/asyncrest/callback?x=1"
    assert same_path_on(url, ["http://10.0.0.1:8080", "http://10.0.0.2:8080/"]) == [
        "http://10.0.0.2:8080/zstack/asyncrest/callback?x=1"]


def test_a_callback_whose_mn_is_gone_goes_to_another_mn():
    sleeps: list[float] = []
    with FakeMN() as other:
        delivered = post_with_retries(dead_url(), {"success": True}, {"taskuuid": "t-1"}, retries=3,
                                      interval=0.5, sleep=sleeps.append, alternatives=lambda: [other.callback_url])
        assert delivered and sleeps == []
        assert other.wait_callback("t-1").body == {"success": True}


def test_without_a_reachable_mn_it_gives_up_after_its_retries():
    sleeps: list[float] = []
    delivered = post_with_retries(dead_url(), {}, {"taskuuid": "t-2"}, retries=2, interval=0.5,
                                  sleep=sleeps.append, alternatives=lambda: [dead_url()])
    assert not delivered and sleeps == [0.5, 1.0]
