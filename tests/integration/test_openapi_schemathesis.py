"""schemathesis against the MN's own OpenAPI document: no 5xx, no response
that breaks the schema, for every operation, on real MariaDB and RabbitMQ."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.api_client import ZStackClient
from tests.support.cluster import MNProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Examples per operation; with a fixed seed the run is the same every time.
EXAMPLES = 15
SEED = 1


@pytest.fixture(scope="module")
def mn(tmp_path_factory, mariadb_url, amqp_url):
    node = MNProcess(tmp_path_factory.mktemp("schemathesis"), db_url=mariadb_url, bus_url=amqp_url)
    node.start()
    node.wait_ready()
    yield node
    node.stop()


def test_openapi_document_describes_every_api(mn):
    doc = httpx.get(f"{mn.url}/zstack/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for name in ("CreateZone", "QueryZone", "ChangeZoneState", "LogInByAccount", "CreateAccessKey",
                 "QueryGlobalConfig", "UpdateGlobalConfig", "CreateSystemTag", "QueryManagementNode"):
        assert name in doc["x-zstack-apis"], name
    assert "put" in doc["paths"]["/zstack/v1/zones/{uuid}/actions"]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(mn, tmp_path):
    client = ZStackClient(mn.url)
    session = client.login()
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [st, "run", f"{mn.url}/zstack/v1/openapi.json",
         "-H", f"Authorization: OAuth {session}",
         "-c", "not_a_server_error,response_schema_conformance",
         "-n", str(EXAMPLES), "--seed", str(SEED), "--no-color", "--request-timeout", "20",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    summary = result.stdout[result.stdout.find("SUMMARY"):]
    print(summary)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Tested:" in summary
