"""Fixtures shared by every test suite."""

import os
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from mn.db import ensure_database_exists

DEFAULT_TEST_DB_URL = "mysql+pymysql://root@127.0.0.1/"


@pytest.fixture
def sqlite_url(tmp_path):
    """URL of a not yet created SQLite database file in tmp_path."""
    return f"sqlite:///{tmp_path / 'zstack.db'}"


@pytest.fixture(scope="module")
def mariadb_url():
    """URL of a fresh, empty MariaDB database, dropped after the test module.

    The server comes from ZSTACK_TEST_DB_URL (its database name is ignored).
    """
    server = make_url(os.environ.get("ZSTACK_TEST_DB_URL", DEFAULT_TEST_DB_URL))
    name = f"zstack_t_{secrets.token_hex(6)}"
    url = server.set(database=name).render_as_string(hide_password=False)
    ensure_database_exists(url)
    yield url
    engine = create_engine(server.set(database=""), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        engine.dispose()


DEFAULT_TEST_BUS_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _rabbitmqctl(*args: str) -> None:
    import subprocess

    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def amqp_url():
    """URL of a fresh RabbitMQ virtual host, deleted after the test module.

    The broker comes from ZSTACK_TEST_BUS_URL; a vhost per module keeps one
    module's queues and broadcasts away from the next.
    """
    base = os.environ.get("ZSTACK_TEST_BUS_URL", DEFAULT_TEST_BUS_URL).rstrip("/")
    vhost = f"zstack_t_{secrets.token_hex(6)}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"{base}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)
