"""zstack-cli against a real MN process (MariaDB + RabbitMQ), run as a user runs it:
a separate process with its own HOME, where the session and API list are kept."""

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.support.cluster import REPO, MNProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(tmp_path_factory, mariadb_url, amqp_url):
    mn = MNProcess(tmp_path_factory.mktemp("mn"), db_url=mariadb_url, bus_url=amqp_url)
    mn.start()
    try:
        mn.wait_ready()
        yield mn
    finally:
        mn.stop()


@pytest.fixture
def cli(node, tmp_path):
    """``cli(*args)`` runs ``zstack-cli -s <node> *args`` with HOME=tmp_path."""
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("ZSTACK_CLI_SERVER", None)

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "mn.cli.main", "-s", node.url, *args], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == expect, (f"zstack-cli {' '.join(args)} exited {done.returncode}:\n"
                                           f"{done.stdout}{done.stderr}\n--- MN log ---\n{node.log_tail()}")
        return done

    run.home = tmp_path
    return run


def table(stdout: str) -> list[list[str]]:
    """The rows of a printed table (header first, the dashes dropped)."""
    lines = stdout.splitlines()
    return [line.split() for i, line in enumerate(lines) if i != 1]


def test_zone_lifecycle_from_login_to_logout(cli, node):
    refused = cli("QueryZone", expect=1)
    assert f"Log in with: zstack-cli -s {node.url} LogInByAccount" in refused.stderr

    cli("LogInByAccount", "accountName=admin", "password=password")
    session_file = cli.home / ".zstack" / "cli" / "session"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    session = json.loads(session_file.read_text())[node.url]
    assert len(session) == 32

    created = json.loads(cli("CreateZone", "name=cli-z1", "description=made by zstack-cli", "--json").stdout)
    z1 = created["inventory"]
    assert (z1["name"], z1["description"], z1["state"]) == ("cli-z1", "made by zstack-cli", "Enabled")
    shown = cli("CreateZone", "name=cli-z2").stdout
    assert "cli-z2" in shown and "Enabled" in shown

    rows = table(cli("QueryZone", "name~=cli-z%", "fields=uuid,name", "sort=-name").stdout)
    assert rows[0] == ["uuid", "name"]
    assert [r[1] for r in rows[1:]] == ["cli-z2", "cli-z1"] and rows[2][0] == z1["uuid"]
    assert cli("QueryZone", "name=cli-z1", "count=true").stdout.strip() == "total: 1"
    assert table(cli("QueryZone", "name!=cli-z1", "name~=cli", "fields=name").stdout)[1:] == [["cli-z2"]]

    changed = json.loads(cli("ChangeZoneState", f"uuid={z1['uuid']}", "stateEvent=disable", "--json").stdout)
    assert changed["inventory"]["state"] == "Disabled"
    assert table(cli("QueryZone", "state=Disabled", "fields=name").stdout)[1:] == [["cli-z1"]]

    bad = cli("ChangeZoneState", f"uuid={z1['uuid']}", "stateEvent=sideways", expect=1)
    assert "SYS.1007" in bad.stderr and "stateEvent" in bad.stderr
    missing = cli("ChangeZoneState", "uuid=" + "0" * 32, "stateEvent=enable", expect=1)
    assert "SYS.1003" in missing.stderr and "is not found" in missing.stderr

    assert cli("DeleteZone", f"uuid={z1['uuid']}").stdout == ""
    assert json.loads(cli("QueryZone", f"uuid={z1['uuid']}", "--json").stdout)["inventories"] == []

    cli("LogOut")
    assert node.url not in json.loads(session_file.read_text())
    cli("QueryZone", expect=1)


def test_api_list_and_help_come_from_the_mns_openapi_document(cli, node):
    names = cli("--list", "Zone").stdout.split()
    assert {"CreateZone", "QueryZone", "ChangeZoneState", "DeleteZone", "UpdateZone"} <= set(names)
    help_text = cli("CreateZone", "--help").stdout
    assert "POST /zstack/v1/zones" in help_text and "name" in help_text
    cache = list((cli.home / ".zstack" / "cli" / "apis").glob("*.json"))
    assert len(cache) == 1 and "CreateZone" in cache[0].read_text()


def test_a_script_on_stdin(cli, node, tmp_path):
    script = ("LogInByAccount accountName=admin password=password\n"
              "# a comment\n"
              "CreateZone name='cli script zone'\n"
              "QueryZone name='cli script zone' fields=name\n")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "mn.cli.main", "-s", node.url], input=script, env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "cli script zone"
