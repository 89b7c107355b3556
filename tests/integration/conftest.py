"""Fixtures of tests that drive real MN processes over the bus."""

import pytest

from mn.bus import CloudBus


@pytest.fixture
async def client(amqp_url):
    """A bus client (not an MN) on the module's vhost; address MNs with node=."""
    bus = CloudBus(amqp_url, member=False, call_timeout=30)
    await bus.start()
    yield bus
    await bus.stop()
