"""zstack-cli: HTTP calls, API jobs, sessions and catalogues on disk
(mn/cli/client.py, home.py, catalog.py, progress.py)."""

import importlib
import io
import json
import stat

import httpx
import pytest

from mn.cli.args import HttpCall
from mn.cli.catalog import ApiSpec, Catalog, CatalogError, load_catalog
from mn.cli.client import MAX_POLL_INTERVAL, ApiError, JobInterrupted, ZStackClient
from mn.cli.home import CliHome, normalize_server
from mn.cli.progress import Spinner

SERVER = "http://mn.test:8080"


def client_of(handler, session=None):
    return ZStackClient(SERVER, session, transport=httpx.MockTransport(handler))


# -- client ---------------------------------------------------------------------------


def test_a_sync_call_returns_the_body_and_sends_the_session():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"inventories": [{"uuid": "u"}]})

    with client_of(handler, session="s1") as client:
        body = client.call(HttpCall("GET", "/zones", query=[("q", "name=z1"), ("sort", "+name")]))
    assert body == {"inventories": [{"uuid": "u"}]}
    assert seen[0].headers["Authorization"] == "OAuth s1"
    assert seen[0].url.path == "/zstack/v1/zones"
    assert seen[0].url.query == b"q=name%3Dz1&sort=%2Bname"


def test_no_session_no_authorization_header():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={})

    client_of(handler).call(HttpCall("PUT", "/accounts/login", body={"logInByAccount": {}}))
    assert "Authorization" not in seen[0].headers
    assert json.loads(seen[0].content) == {"logInByAccount": {}}


def test_an_api_job_is_polled_with_growing_intervals_until_it_ends():
    polls = []

    def handler(request):
        if request.method == "POST":
            return httpx.Response(202, json={"location": f"{SERVER}/zstack/v1/api-jobs/j1"})
        polls.append(request)
        if len(polls) < 12:
            return httpx.Response(202, json={})
        return httpx.Response(200, json={"inventory": {"uuid": "z"}})

    waits = []
    body = client_of(handler, "s").call(HttpCall("POST", "/zones", body={"params": {}}), wait=waits.append)
    assert body == {"inventory": {"uuid": "z"}}
    assert len(polls) == 12 and polls[0].headers["Authorization"] == "OAuth s"
    assert waits == sorted(waits) and waits[0] < 0.1 and waits[-1] == MAX_POLL_INTERVAL


def test_a_failed_job_raises_its_error():
    def handler(request):
        if request.method == "DELETE":
            return httpx.Response(202, json={"location": f"{SERVER}/zstack/v1/api-jobs/j1"})
        return httpx.Response(503, json={"error": {"code": "SYS.1006", "description": "An operation failed",
                                                   "details": "boom"}})

    with pytest.raises(ApiError) as caught:
        client_of(handler).call(HttpCall("DELETE", "/zones/z"), wait=lambda s: None)
    assert (caught.value.status, caught.value.code, caught.value.error["details"]) == (503, "SYS.1006", "boom")


def test_an_error_without_zstack_shape_still_raises_readably():
    client = client_of(lambda request: httpx.Response(502, text="Bad Gateway from the proxy"))
    with pytest.raises(ApiError) as caught:
        client.call(HttpCall("GET", "/zones"))
    assert caught.value.code == "HTTP.502"
    assert caught.value.error["details"] == "Bad Gateway from the proxy"


def test_interrupting_the_wait_says_where_the_job_is():
    def handler(request):
        if request.method == "POST":
            return httpx.Response(202, json={"location": f"{SERVER}/zstack/v1/api-jobs/j9"})
        return httpx.Response(202, json={})

    def wait(seconds):
        raise KeyboardInterrupt

    with pytest.raises(JobInterrupted, match="api-jobs/j9"):
        client_of(handler).call(HttpCall("POST", "/zones", body={}), wait=wait)


# -- home -----------------------------------------------------------------------------------


def test_sessions_are_kept_per_server_in_a_private_file(tmp_path):
    home = CliHome(tmp_path / "cli")
    home.save_session("mn.test:8080", "s1")
    home.save_session("http://other:8080/", "s2")
    assert home.session(SERVER) == "s1" and home.session("http://other:8080") == "s2"
    path = tmp_path / "cli" / "session"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cli").stat().st_mode) == 0o700
    home.clear_session(SERVER)
    assert home.session(SERVER) is None and CliHome(tmp_path / "cli").session("http://other:8080") == "s2"


def test_a_damaged_session_file_counts_as_none(tmp_path):
    (tmp_path / "session").write_text("{not json")
    assert CliHome(tmp_path).session(SERVER) is None


def test_normalize_server():
    assert normalize_server(" 10.0.0.1:8080/ ") == "http://10.0.0.1:8080"
    assert normalize_server("https://mn") == "https://mn"


# -- catalogue -------------------------------------------------------------------------------

X_CREATE = {"name": "CreateZone", "fullName": "org.zstack.header.zone.APICreateZoneMsg", "method": "POST",
            "path": "/zones", "isAction": False, "actionName": "createZone", "parameterName": "params",
            "query": False, "sync": False, "public": False, "pathParams": [],
            "params": {"name": {"type": "string"}}, "required": ["name"]}
X_QUERY = {"name": "QueryZone", "method": "GET", "path": "/zones/{uuid}", "query": True, "pathParams": ["uuid"]}
DOC = {"openapi": "3.1.0",
       "paths": {"/zstack/v1/zones": {"post": {"operationId": "CreateZone"}},
                 "/zstack/v1/zones/{uuid}": {"get": {"operationId": "QueryZoneByPath", "x-zstack": X_QUERY}}},
       "components": {"schemas": {"Cond": {"type": "object"}}},
       "x-zstack-apis": {"CreateZone": X_CREATE,
                         "QueryZone": {**X_QUERY, "path": "/zones", "pathParams": []}}}


def test_catalog_reads_the_api_map_and_operation_objects():
    catalog = Catalog.from_openapi(DOC)
    assert catalog.names() == ["CreateZone", "QueryZone"]
    create = catalog.find("CreateZone")
    assert (create.method, create.path, create.parameter_name, create.required) == ("POST", "/zones", "params", ("name",))
    assert catalog.find("QueryZone").path == "/zones"  # the route without path variables
    assert catalog.resolve({"$ref": "#/components/schemas/Cond"}) == {"type": "object"}
    assert catalog.resolve({"$ref": "#/components/schemas/Missing"}) == {}


def test_catalog_finds_apis_by_zstack_class_name_or_any_case():
    catalog = Catalog.from_openapi(DOC)
    assert catalog.find("APICreateZoneMsg").name == "CreateZone"
    assert catalog.find("createzone").name == "CreateZone"
    assert catalog.find("CreateCluster") is None


def test_a_document_without_what_the_cli_needs_is_refused():
    with pytest.raises(CatalogError):
        Catalog.from_openapi({"openapi": "3.1.0"})
    with pytest.raises(CatalogError, match="lacks its name, path or method"):
        Catalog.from_openapi({"paths": {}, "x-zstack-apis": {"X": {"name": "X"}}})


def test_catalog_is_cached_per_server_until_refreshed(tmp_path):
    home = CliHome(tmp_path)
    fetches = []

    def fetch():
        fetches.append(1)
        return DOC

    first = load_catalog(home, SERVER, fetch)
    again = load_catalog(home, SERVER, fetch)
    assert len(fetches) == 1 and again.find("CreateZone") == first.find("CreateZone")
    load_catalog(home, SERVER, fetch, refresh=True)
    load_catalog(home, "http://other:8080", fetch)
    assert len(fetches) == 3
    assert stat.S_IMODE(home.catalog_path(SERVER).stat().st_mode) == 0o600


def test_a_cache_of_another_format_is_fetched_again(tmp_path):
    home = CliHome(tmp_path)
    home.save_catalog(SERVER, {"format": 0, "apis": []})
    assert load_catalog(home, SERVER, lambda: DOC).names() == ["CreateZone", "QueryZone"]


def test_the_mns_own_document_is_understood():
    """The contract with mn/api/openapi.py: the CLI reads what the MN publishes."""
    from mn.api.openapi import build_openapi

    importlib.import_module("mn.zone.messages")  # registers the zone APIs

    catalog = Catalog.from_openapi(json.loads(json.dumps(build_openapi())))
    change = catalog.find("ChangeZoneState")
    assert (change.method, change.path, change.is_action, change.action_name, change.path_params) == \
        ("PUT", "/zones/{uuid}/actions", True, "changeZoneState", ("uuid",))
    assert catalog.find("QueryZone").query and catalog.find("QueryZone").path == "/zones"
    assert catalog.find("CreateZone").required == ("name",)


def test_spec_round_trips_through_the_cache():
    spec = ApiSpec.from_x_zstack(X_CREATE)
    assert ApiSpec.from_x_zstack(spec.to_x_zstack()) == spec


# -- progress -------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_the_spinner_turns_while_waiting_and_clears_its_line():
    clock, stream = FakeClock(), io.StringIO()
    with Spinner("CreateZone", stream, enabled=True, clock=clock, sleep=clock.sleep) as spinner:
        spinner.wait(0.35)
        spinner.wait(1.0)
    out = stream.getvalue()
    assert out.count("\r") >= 10 and "CreateZone 1.3s" in out
    assert out.endswith("\r\x1b[K")
    assert clock.now == pytest.approx(101.35)


def test_the_spinner_draws_nothing_off_a_terminal():
    clock, stream = FakeClock(), io.StringIO()
    with Spinner("CreateZone", stream, clock=clock, sleep=clock.sleep) as spinner:  # StringIO is no tty
        spinner.wait(0.5)
    assert stream.getvalue() == "" and clock.now == pytest.approx(100.5)
