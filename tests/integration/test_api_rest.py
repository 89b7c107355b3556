"""The REST API driven with plain HTTP, exactly as a ZStack client does, on
two MN processes sharing real MariaDB and RabbitMQ."""

from __future__ import annotations

import json
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from mn.ids import new_uuid
from tests.support import failing_api
from tests.support.api_client import ApiError, ZStackClient, sha512, sign
from tests.support.cluster import start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def mns(tmp_path_factory, mariadb_url, amqp_url):
    nodes = start_cluster(tmp_path_factory.mktemp("api"), 2, db_url=mariadb_url, bus_url=amqp_url,
                          services=failing_api.SPEC)
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def admin(mns):
    client = ZStackClient(mns[0].url)
    client.login()
    yield client
    client.close()


@pytest.fixture(scope="module")
def admin_b(mns):
    """The admin, talking to the other MN."""
    client = ZStackClient(mns[1].url)
    client.login()
    yield client
    client.close()


def zone(admin: ZStackClient, name: str, **params) -> dict:
    return admin.create("/zones", {"name": name, **params})


# -- logging in ---------------------------------------------------------------------


def test_login_by_v1_gives_a_session_that_authenticates(mns, admin):
    assert len(admin.session) == 32
    assert admin.query("/zones", count=True)["total"] >= 0
    bad = ZStackClient(mns[0].url)
    with pytest.raises(ApiError) as info:
        bad.login(password="wrong")
    assert info.value.status == 401 and info.value.code == "ID.1000"
    bad.session = new_uuid()
    with pytest.raises(ApiError) as info:
        bad.query("/zones")
    assert info.value.status == 401 and info.value.code == "ID.1001"


def test_login_and_calls_by_legacy_rpc(mns, admin):
    http = httpx.Client(base_url=mns[1].url, timeout=30)
    rsp = http.post("/zstack/api/", json={"org.zstack.header.identity.APILogInByAccountMsg": {
        "accountName": "admin", "password": sha512("password")}}).json()
    assert rsp["state"] == "Done"
    reply = json.loads(rsp["result"])["org.zstack.header.identity.APILogInReply"]
    assert reply["success"] is True
    session = reply["inventory"]["uuid"]

    # An asynchronous API: Processing, then Done with the event under its class name.
    name = f"legacy-{new_uuid()[:8]}"
    rsp = http.post("/zstack/api", json={"org.zstack.header.zone.APICreateZoneMsg": {
        "name": name, "session": {"uuid": session}}}).json()
    deadline = time.monotonic() + 30
    while rsp["state"] != "Done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
        rsp = http.get(f"/zstack/api/result/{rsp['uuid']}").json()
    event = json.loads(rsp["result"])["org.zstack.header.zone.APICreateZoneEvent"]
    assert event["success"] and event["inventory"]["name"] == name

    # A query with ZStack's QueryOp names.
    rsp = http.post("/zstack/api", json={"org.zstack.header.zone.APIQueryZoneMsg": {
        "conditions": [{"name": "name", "op": "like", "value": "legacy-%"}],
        "session": {"uuid": session}}}).json()
    found = json.loads(rsp["result"])["org.zstack.header.zone.APIQueryZoneReply"]
    assert name in [z["name"] for z in found["inventories"]]

    # A bad session is a failed result, as apibinding expects.
    rsp = http.post("/zstack/api", json={"org.zstack.header.zone.APIQueryZoneMsg": {
        "session": {"uuid": new_uuid()}}}).json()
    failed = json.loads(rsp["result"])["org.zstack.header.zone.APIQueryZoneReply"]
    assert failed["success"] is False and failed["error"]["code"] == "ID.1001"


# -- AccessKeys ---------------------------------------------------------------------


def test_access_key_signatures_good_skewed_forged_disabled(mns, admin):
    account = admin.query("/accounts", "name=admin")["inventories"][0]
    key = admin.create("/accesskeys", {"accountUuid": account["uuid"], "userUuid": account["uuid"]})
    key_id, secret = key["AccessKeyID"], key["AccessKeySecret"]
    http = httpx.Client(base_url=mns[1].url, timeout=30)

    def get(secret_used: str, date: str):
        headers = {"Date": date,
                   "Authorization": f"ZStack {key_id}:{sign(secret_used, 'GET', date, '/zstack/v1/zones')}"}
        return http.get("/zstack/v1/zones", headers=headers)

    now = formatdate(usegmt=True)
    assert get(secret, now).status_code == 200
    skewed = formatdate(time.time() - 20 * 60, usegmt=True)
    rsp = get(secret, skewed)
    assert rsp.status_code == 403, rsp.text
    rsp = get("not-the-secret", now)
    assert rsp.status_code == 401 and rsp.json()["error"]["code"] == "ID.1000"

    admin.action(f"/accesskeys/{key['uuid']}/actions", "changeAccessKeyState", {"stateEvent": "disable"})
    assert get(secret, formatdate(usegmt=True)).status_code == 401


# -- API jobs -------------------------------------------------------------------------


def test_a_job_accepted_by_one_mn_is_polled_on_the_other(mns, admin):
    rsp = admin.request("POST", "/zones", json={"params": {"name": "polled-elsewhere"}})
    assert rsp.status_code == 202
    location = rsp.json()["location"]
    assert location.startswith(mns[0].url) and "/zstack/v1/api-jobs/" in location
    on_other = location.replace(mns[0].url, mns[1].url)
    body = admin.wait(on_other)
    assert body["inventory"]["name"] == "polled-elsewhere"
    assert httpx.get(on_other).json() == body  # polled again: the same result


def test_a_retried_job_uuid_is_one_operation(mns, admin, admin_b):
    job = new_uuid()
    name = f"once-{job[:8]}"
    first = admin.request("POST", "/zones", json={"params": {"name": name}}, headers={"X-Job-UUID": job})
    second = admin_b.request("POST", "/zones", json={"params": {"name": name}}, headers={"X-Job-UUID": job})
    assert first.status_code == second.status_code == 202
    assert first.json()["location"].endswith(f"/api-jobs/{job}")
    assert second.json()["location"].endswith(f"/api-jobs/{job}")
    admin.wait(first.json()["location"])
    third = admin.request("POST", "/zones", json={"params": {"name": name}}, headers={"X-Job-UUID": job})
    assert third.status_code == 202
    assert admin.query("/zones", f"name={name}", count=True)["total"] == 1


def test_a_failed_job_answers_503_with_the_error(admin, admin_b):
    rsp = admin.request("POST", "/test/failing", json={"params": {"reason": "the disk is on fire"}})
    assert rsp.status_code == 202
    location = rsp.json()["location"]
    with pytest.raises(ApiError) as info:
        admin_b.wait(location.replace(admin.base, admin_b.base))
    assert info.value.status == 503
    assert info.value.code == "SYS.1006" and "the disk is on fire" in str(info.value)
    assert admin.request("GET", f"/api-jobs/{new_uuid()}").status_code == 404


def test_a_refused_global_config_value_is_a_400(admin):
    rsp = admin.request("PUT", "/global-configurations/api/job.expiry/actions",
                        json={"updateGlobalConfig": {"value": "0"}})
    assert rsp.status_code == 400 and rsp.json()["error"]["code"] == "SYS.1007"
    rsp = admin.request("PUT", "/global-configurations/api/no.such.entry/actions",
                        json={"updateGlobalConfig": {"value": "1"}})
    assert rsp.status_code == 400, rsp.text


def test_webhook_receives_the_result(admin):
    received: list[tuple[dict, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append((dict(self.headers), json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        rsp = admin.request("POST", "/zones", json={"params": {"name": "hooked"}}, headers={"X-Web-Hook": url})
        job = rsp.json()["location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 15
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        headers, body = received[0]
        assert headers["X-Job-UUID"] == job and headers["X-Job-Success"] == "true"
        assert body["inventory"]["name"] == "hooked"
    finally:
        server.shutdown()


def test_finished_jobs_expire(admin):
    admin.action("/global-configurations/api/job.expiry/actions", "updateGlobalConfig", {"value": "1"})
    try:
        rsp = admin.request("POST", "/zones", json={"params": {"name": "expiring"}})
        location = rsp.json()["location"]
        admin.wait(location)
        time.sleep(1.5)
        assert httpx.get(location).status_code == 404
    finally:
        admin.action("/global-configurations/api/job.expiry/actions", "updateGlobalConfig", {"value": "86400"})


# -- queries --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def query_zones(admin):
    tag = new_uuid()[:6]
    made = [zone(admin, f"q{tag}-{i}", description=None if i == 0 else f"d{i}") for i in range(5)]
    cluster = admin.create("/clusters", {"zoneUuid": made[1]["uuid"], "name": f"c{tag}",
                                         "hypervisorType": "KVM"})
    return tag, made, cluster


@pytest.mark.parametrize("condition, expected", [
    ("name={t}-1", [1]),
    ("name!={t}-1", [0, 2, 3, 4]),
    ("name>{t}-2", [3, 4]),
    ("name>={t}-2", [2, 3, 4]),
    ("name<{t}-2", [0, 1]),
    ("name<={t}-2", [0, 1, 2]),
    ("name?={t}-1,{t}-3", [1, 3]),
    ("name!?={t}-1,{t}-3", [0, 2, 4]),
    ("name~={t}-%", [0, 1, 2, 3, 4]),
    ("description!~=d1%", [2, 3, 4]),    # SQL semantics, as ZStack: a NULL matches no LIKE
    ("description is null", [0]),
    ("description not null", [1, 2, 3, 4]),
])
def test_every_query_operator(admin, query_zones, condition, expected):
    tag, made, _ = query_zones
    found = admin.query("/zones", condition.format(t=f"q{tag}"), f"name~=q{tag}-%", sort="+name")
    assert [z["name"] for z in found["inventories"]] == [made[i]["name"] for i in expected]


def test_nested_condition_paging_count_and_fields(admin, query_zones):
    tag, made, cluster = query_zones
    found = admin.query("/clusters", f"zone.name={made[1]['name']}")
    assert [c["uuid"] for c in found["inventories"]] == [cluster["uuid"]]
    found = admin.query("/zones", f"cluster.name={cluster['name']}", fields="uuid,name")
    assert found["inventories"] == [{"uuid": made[1]["uuid"], "name": made[1]["name"]}]
    page = admin.query("/zones", f"name~=q{tag}-%", sort="-name", limit=2, start=1, replyWithCount=True)
    assert [z["name"] for z in page["inventories"]] == [made[3]["name"], made[2]["name"]]
    assert page["total"] == 5
    with pytest.raises(ApiError) as info:
        admin.query("/zones", "nosuchfield=1")
    assert info.value.status == 400 and "nosuchfield" in str(info.value)


# -- accounts see their own -------------------------------------------------------------


def test_a_normal_account_cannot_see_or_touch_admins_resources(mns, admin):
    name = f"bob{new_uuid()[:6]}"
    bob_account = admin.create("/accounts", {"name": name, "password": sha512("bob-pass")})
    bob = ZStackClient(mns[1].url)
    bob.login(name, "bob-pass")
    admin_account = admin.query("/accounts", "name=admin")["inventories"][0]
    admins_key = admin.create("/accesskeys", {"accountUuid": admin_account["uuid"],
                                              "userUuid": admin_account["uuid"]})
    bobs_key = bob.create("/accesskeys", {"accountUuid": bob_account["uuid"], "userUuid": bob_account["uuid"]})

    assert [k["uuid"] for k in bob.query("/accesskeys")["inventories"]] == [bobs_key["uuid"]]
    assert [a["uuid"] for a in bob.query("/accounts")["inventories"]] == [bob_account["uuid"]]
    for attempt in (
        lambda: bob.call("DELETE", f"/accesskeys/{admins_key['uuid']}"),
        lambda: bob.action(f"/accesskeys/{admins_key['uuid']}/actions", "changeAccessKeyState",
                           {"stateEvent": "disable"}),
        lambda: bob.create("/zones", {"name": "bobs-zone"}),
        lambda: bob.create("/user-tags", {"resourceType": "AccessKeyVO", "resourceUuid": admins_key["uuid"],
                                          "tag": "mine"}),
    ):
        with pytest.raises(ApiError) as info:
            attempt()
        assert info.value.status == 403, info.value
    assert admin.query("/accesskeys", f"uuid={admins_key['uuid']}")["inventories"][0]["state"] == "Enabled"
    assert admin.query("/zones", "name=bobs-zone", count=True)["total"] == 0
    bob.close()


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/zones", {"params": {}}, 400),                                  # missing name
    ("POST", "/zones", {"params": {"name": "x", "colour": "red"}}, 400),      # unknown parameter
    ("POST", "/zones", {"params": {"name": "x" * 300}}, 400),                 # too long
    ("POST", "/clusters", {"params": {"name": "c", "zoneUuid": "not-a-uuid", "hypervisorType": "KVM"}}, 400),
    ("POST", "/clusters", {"params": {"name": "c", "zoneUuid": "0" * 32, "hypervisorType": "KVM"}}, 404),
    ("PUT", "/zones/{uuid}/actions", {"changeZoneState": {"stateEvent": "explode"}}, 400),
    ("PUT", "/zones/{uuid}/actions", {"noSuchAction": {}}, 400),
    ("PUT", "/zones/" + "0" * 32 + "/actions", {"changeZoneState": {"stateEvent": "disable"}}, 404),
])
def test_bad_input_is_a_4xx_with_zstacks_error_and_changes_nothing(admin, method, path, body, status):
    target = zone(admin, f"bad-{new_uuid()[:8]}")
    before = admin.query("/zones", count=True)["total"]
    rsp = admin.request(method, path.format(uuid=target["uuid"]), json=body)
    assert rsp.status_code == status, rsp.text
    error = rsp.json()["error"]
    assert error["code"].startswith(("SYS.", "ID.")) and error["details"]
    assert admin.query("/zones", count=True)["total"] == before
    assert admin.query("/zones", f"uuid={target['uuid']}")["inventories"][0]["state"] == "Enabled"
