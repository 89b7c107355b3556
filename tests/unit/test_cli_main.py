"""zstack-cli end to end against a fake MN over httpx.MockTransport (mn/cli/main.py, shell.py)."""

import functools
import hashlib
import io
import json
import stat

import httpx
import pytest
from click.testing import CliRunner

import mn.cli.main as cli_main
from mn.cli.home import CliHome
from mn.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Cli
from mn.cli.shell import completions

SERVER = "http://mn.test:8080"
ADMIN_SHA512 = hashlib.sha512(b"password").hexdigest()


def x_api(name, method, path, *, action=False, query=False, sync=False, public=False, params=None,
          required=()):
    path_params = [p[1:-1] for p in path.split("/") if p.startswith("{")]
    return {"name": name, "fullName": f"org.zstack.API{name}Msg", "method": method, "path": path,
            "isAction": action, "actionName": name[0].lower() + name[1:], "parameterName": "params",
            "query": query, "sync": sync, "public": public, "pathParams": path_params,
            "params": params or {}, "required": list(required)}


APIS = [
    x_api("LogInByAccount", "PUT", "/accounts/login", action=True, sync=True, public=True,
          params={"accountName": {"type": "string"}, "password": {"type": "string"}},
          required=("accountName", "password")),
    x_api("LogOut", "DELETE", "/accounts/sessions/{sessionUuid}", sync=True, public=True),
    x_api("CreateZone", "POST", "/zones", params={"name": {"type": "string", "maxLength": 255},
                                                  "description": {"anyOf": [{"type": "string"}, {"type": "null"}],
                                                                  "default": None}},
          required=("name",)),
    x_api("QueryZone", "GET", "/zones", query=True, sync=True),
    x_api("ChangeZoneState", "PUT", "/zones/{uuid}/actions", action=True,
          params={"stateEvent": {"enum": ["enable", "disable"], "type": "string"}}, required=("stateEvent",)),
    x_api("DeleteZone", "DELETE", "/zones/{uuid}",
          params={"deleteMode": {"enum": ["Permissive", "Enforcing"], "type": "string", "default": "Permissive"}}),
]


class FakeMN:
    """Just enough of the REST API: login, zones as API jobs, queries, errors."""

    def __init__(self, apis=APIS):
        self.apis = list(apis)
        self.sessions: set[str] = set()
        self.zones: dict[str, dict] = {}
        self.requests: list[httpx.Request] = []
        self.openapi_fetches = 0
        self.jobs: dict[str, tuple[int, dict]] = {}

    def doc(self):
        return {"openapi": "3.1.0", "paths": {}, "x-zstack-apis": {a["name"]: a for a in self.apis}}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path.removeprefix("/zstack/v1"), request.method
        if path == "/openapi.json":
            self.openapi_fetches += 1
            return httpx.Response(200, json=self.doc())
        if path.startswith("/api-jobs/"):
            status, body = self.jobs.pop(path.rsplit("/", 1)[1])
            return httpx.Response(status, json=body)
        body = json.loads(request.content) if request.content else {}
        if path == "/accounts/login":
            creds = body["logInByAccount"]
            if (creds["accountName"], creds["password"]) != ("admin", ADMIN_SHA512):
                return self.error(401, "ID.1000", "wrong account name or password")
            session = f"s{len(self.sessions) + 1:031d}"
            self.sessions.add(session)
            return httpx.Response(200, json={"inventory": {"uuid": session, "accountUuid": "a" * 32}})
        if path.startswith("/accounts/sessions/") and method == "DELETE":
            self.sessions.discard(path.rsplit("/", 1)[1])
            return httpx.Response(200, json={})
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("OAuth ") not in self.sessions:
            return self.error(401, "ID.1001", "invalid session")
        if path == "/zones" and method == "POST":
            uuid = f"{len(self.zones) + 1:032x}"
            zone = {"uuid": uuid, "name": body["params"]["name"], "state": "Enabled",
                    "description": body["params"].get("description")}
            self.zones[uuid] = zone
            return self.job(200, {"inventory": zone})
        if path == "/zones" and method == "GET":
            conditions = request.url.params.get_list("q")
            rows = [z for z in self.zones.values() if all(f"{c.split('=')[0]}={z.get(c.split('=')[0])}" == c
                                                          for c in conditions)]
            fields = request.url.params.get("fields")
            if fields:
                rows = [{f: r[f] for f in fields.split(",")} for r in rows]
            return httpx.Response(200, json={"inventories": rows})
        if not path.startswith("/zones/"):
            return self.error(404, "SYS.1003", f"no route {path}")
        uuid = path.split("/")[2]
        if uuid not in self.zones:
            return self.error(404, "SYS.1003", f"ZoneVO[uuid:{uuid}] is not found")
        if method == "PUT":
            event = body["changeZoneState"]["stateEvent"]
            if event == "enable" and self.zones[uuid]["state"] == "Enabled":
                return self.job(503, {"error": {"code": "SYS.1005", "description": "state", "details": "already"}})
            self.zones[uuid]["state"] = "Disabled" if event == "disable" else "Enabled"
            return self.job(200, {"inventory": self.zones[uuid]})
        del self.zones[uuid]
        return self.job(200, {})

    def job(self, status, body):
        uuid = f"j{len(self.requests)}"
        self.jobs[uuid] = (status, body)
        return httpx.Response(202, json={"location": f"{SERVER}/zstack/v1/api-jobs/{uuid}"})

    @staticmethod
    def error(status, code, details):
        return httpx.Response(status, json={"error": {"code": code, "description": "failed", "details": details,
                                                      "elaboration": None, "cause": None}})


@pytest.fixture
def mn():
    return FakeMN()


@pytest.fixture
def home(tmp_path):
    return CliHome(tmp_path / "cli")


class Run:
    """One CLI process: its output and status."""

    def __init__(self, mn, home, *, as_json=False):
        self.out, self.err = io.StringIO(), io.StringIO()
        self.cli = Cli(SERVER, home=home, as_json=as_json, transport=httpx.MockTransport(mn),
                       out=self.out, err=self.err)

    def __call__(self, api, *arguments):
        self.status = self.cli.run(api, list(arguments))
        return self.status


def run(mn, home, api, *arguments, as_json=False) -> Run:
    process = Run(mn, home, as_json=as_json)
    process(api, *arguments)
    process.cli.close()
    return process


def record(text):
    """A printed ``field : value`` record as a dict."""
    pairs = (line.partition(" :") for line in text.splitlines())
    return {name.strip(): value.strip() for name, _, value in pairs}


def login(mn, home):
    assert run(mn, home, "LogInByAccount", "accountName=admin", "password=password").status == EXIT_OK


def test_a_session_lives_from_login_to_logout(mn, home):
    r = run(mn, home, "LogInByAccount", "accountName=admin", "password=password")
    assert r.status == EXIT_OK and "uuid" in r.out.getvalue()
    session = home.session(SERVER)
    assert session in mn.sessions
    assert stat.S_IMODE((home.root / "session").stat().st_mode) == 0o600

    assert run(mn, home, "CreateZone", "name=z1").status == EXIT_OK
    assert mn.requests[-2].headers["Authorization"] == f"OAuth {session}"

    r = run(mn, home, "LogOut")
    assert r.status == EXIT_OK
    assert (mn.requests[-1].method, mn.requests[-1].url.path) == ("DELETE", f"/zstack/v1/accounts/sessions/{session}")
    assert home.session(SERVER) is None and session not in mn.sessions


def test_zone_lifecycle_as_a_user_sees_it(mn, home):
    login(mn, home)
    r = run(mn, home, "CreateZone", "name=z1", "description=first zone")
    assert r.status == EXIT_OK
    shown = record(r.out.getvalue())
    uuid = shown["uuid"]
    assert shown == {"uuid": uuid, "name": "z1", "state": "Enabled", "description": "first zone"}
    assert uuid in mn.zones
    run(mn, home, "CreateZone", "name=z2")

    r = run(mn, home, "QueryZone", "name=z1", "fields=name,uuid")
    table = r.out.getvalue().splitlines()
    assert table[0].split() == ["name", "uuid"] and table[2].split() == ["z1", uuid] and len(table) == 3
    assert mn.requests[-1].url.params.get_list("q") == ["name=z1"]

    r = run(mn, home, "ChangeZoneState", f"uuid={uuid}", "stateEvent=disable")
    assert r.status == EXIT_OK and mn.zones[uuid]["state"] == "Disabled"
    assert mn.requests[-2].url.path == f"/zstack/v1/zones/{uuid}/actions"

    r = run(mn, home, "QueryZone", "state=Disabled", as_json=True)
    assert json.loads(r.out.getvalue()) == {"inventories": [mn.zones[uuid]]}

    r = run(mn, home, "DeleteZone", f"uuid={uuid}", "deleteMode=Enforcing")
    assert (r.status, r.out.getvalue()) == (EXIT_OK, "")
    assert mn.requests[-2].url.query == b"deleteMode=Enforcing"
    assert uuid not in mn.zones


def test_a_failed_job_prints_the_zstack_error_and_exits_1(mn, home):
    login(mn, home)
    run(mn, home, "CreateZone", "name=z1")
    uuid = next(iter(mn.zones))
    r = run(mn, home, "ChangeZoneState", f"uuid={uuid}", "stateEvent=enable")
    assert r.status == EXIT_FAILED and r.out.getvalue() == ""
    assert r.err.getvalue().splitlines() == ["Error: SYS.1005 state", "  details: already"]


def test_a_refused_request_prints_the_error(mn, home):
    login(mn, home)
    r = run(mn, home, "DeleteZone", "uuid=" + "f" * 32)
    assert r.status == EXIT_FAILED and "SYS.1003" in r.err.getvalue() and "is not found" in r.err.getvalue()


def test_an_invalid_session_is_forgotten_with_a_hint_to_log_in(mn, home):
    login(mn, home)
    mn.sessions.clear()  # expired on the MN
    r = run(mn, home, "QueryZone")
    assert r.status == EXIT_FAILED
    assert "ID.1001" in r.err.getvalue() and f"zstack-cli -s {SERVER} LogInByAccount" in r.err.getvalue()
    assert home.session(SERVER) is None


def test_a_call_without_session_says_how_to_log_in(mn, home):
    r = run(mn, home, "QueryZone")
    assert r.status == EXIT_FAILED and "Log in with" in r.err.getvalue()
    r = run(mn, home, "LogInByAccount", "accountName=admin", "password=wrong")
    assert r.status == EXIT_FAILED and "Log in with" not in r.err.getvalue()


def test_a_wrong_password_keeps_the_current_session(mn, home):
    login(mn, home)
    session = home.session(SERVER)
    r = run(mn, home, "LogInByAccount", "accountName=admin", "password=wrong")
    assert r.status == EXIT_FAILED and "ID.1000" in r.err.getvalue()
    assert "Log in with" not in r.err.getvalue()
    assert home.session(SERVER) == session


def test_bad_arguments_exit_2_before_any_api_call(mn, home):
    login(mn, home)
    calls = len(mn.requests)
    r = run(mn, home, "DeleteZone", "deleteMode=Enforcing")
    assert r.status == EXIT_USAGE and "DeleteZone needs uuid=" in r.err.getvalue()
    r = run(mn, home, "QueryZone", "limit=ten")
    assert r.status == EXIT_USAGE and "limit must be" in r.err.getvalue()
    assert len(mn.requests) == calls


def test_the_catalogue_is_fetched_once_and_again_for_an_api_it_lacks(mn, home):
    login(mn, home)
    run(mn, home, "QueryZone")
    assert mn.openapi_fetches == 1
    mn.apis.append(x_api("QueryCluster", "GET", "/clusters", query=True, sync=True))
    r = run(mn, home, "QueryCluster")  # unknown to the cache: fetched again, then found
    assert mn.openapi_fetches == 2 and mn.requests[-1].url.path == "/zstack/v1/clusters"
    assert r.status == EXIT_FAILED and "no route /clusters" in r.err.getvalue()


def test_an_unknown_api_suggests_close_names(mn, home):
    r = run(mn, home, "CreateZon", "name=x")
    assert r.status == EXIT_USAGE
    assert "has no API CreateZon; did you mean CreateZone or DeleteZone?" in r.err.getvalue()
    assert mn.openapi_fetches == 1  # fetched by this process already: not again


def test_api_help_describes_the_parameters(mn, home):
    r = run(mn, home, "ChangeZoneState", "--help")
    text = r.out.getvalue()
    assert r.status == EXIT_OK
    assert "PUT /zstack/v1/zones/{uuid}/actions" in text
    assert "uuid        string, required, in the URL" in text
    assert "stateEvent  one of enable|disable, required" in text
    text = run(mn, home, "LogInByAccount", "help").out.getvalue()
    assert "sent as its SHA-512" in text and "no login needed" in text
    assert "conditions: field<op>value" in run(mn, home, "QueryZone", "-h").out.getvalue()


def test_an_unreachable_mn_is_reported(home):
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    out, err = io.StringIO(), io.StringIO()
    cli = Cli(SERVER, home=home, transport=httpx.MockTransport(refuse), out=out, err=err)
    assert cli.run("QueryZone", []) == EXIT_FAILED
    assert f"cannot reach the management node at {SERVER}: connection refused" in err.getvalue()


def test_an_mn_without_openapi_document_is_reported(home):
    out, err = io.StringIO(), io.StringIO()
    cli = Cli(SERVER, home=home, transport=httpx.MockTransport(
        lambda r: FakeMN.error(404, "SYS.1003", "no route")), out=out, err=err)
    assert cli.run("QueryZone", []) == EXIT_FAILED
    assert err.getvalue().splitlines()[0] == f"Cannot read the API list of {SERVER} (GET /zstack/v1/openapi.json):"


# -- the click command and the shell -------------------------------------------------------


@pytest.fixture
def command(mn, home, monkeypatch):
    """The zstack-cli command, its Cli talking to the fake MN."""
    monkeypatch.setattr(cli_main, "Cli", functools.partial(Cli, home=home, transport=httpx.MockTransport(mn)))
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(cli_main.command, list(args), input=input)


def test_command_runs_an_api_with_options_before_or_after(command, mn):
    result = command("-s", SERVER, "LogInByAccount", "accountName=admin", "password=password", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inventory"]["uuid"] in mn.sessions
    result = command("--server", "mn.test:8080", "QueryZone", "name~=z")
    assert result.exit_code == 0 and result.stdout == ""
    assert mn.requests[-1].url.params.get_list("q") == ["name~=%z%"]


def test_command_takes_the_server_from_the_environment(command, mn, monkeypatch):
    monkeypatch.setenv("ZSTACK_CLI_SERVER", "http://elsewhere:9999")
    command("QueryZone")
    assert str(mn.requests[0].url).startswith("http://elsewhere:9999/zstack/v1/openapi.json")


def test_command_lists_apis(command):
    result = command("-s", SERVER, "--list", "zone")
    assert result.exit_code == 0
    assert result.stdout.split() == ["ChangeZoneState", "CreateZone", "DeleteZone", "QueryZone"]


def test_command_exit_statuses(command):
    assert command("-s", SERVER, "DeleteZone").exit_code == EXIT_USAGE
    assert command("-s", SERVER, "QueryZone").exit_code == EXIT_FAILED  # not logged in


def test_without_an_api_commands_are_read_from_stdin(command, mn):
    script = "# set up\nLogInByAccount accountName=admin password=password\n\nCreateZone name='zone one'\n"
    result = command("-s", SERVER, input=script)
    assert result.exit_code == 0, result.output
    assert [z["name"] for z in mn.zones.values()] == ["zone one"]
    result = command("-s", SERVER, input="QueryZone limit=x\nQueryZone\n")
    assert result.exit_code == 1 and "limit must be" in result.stderr


def test_a_script_stops_at_exit(command, mn):
    result = command("-s", SERVER, input="LogInByAccount accountName=admin password=password\nexit\n"
                                         "CreateZone name=never\n")
    assert result.exit_code == 0 and mn.zones == {}


def test_shell_completes_api_and_parameter_names(mn, home):
    cli = Run(mn, home).cli
    assert completions(cli, "", "Create") == ["CreateZone"]
    assert completions(cli, "CreateZone ", "") == ["description=", "name=", "systemTags=", "userTags="]
    assert completions(cli, "QueryZone name=z ", "li") == ["limit="]
    assert completions(cli, "NoSuchApi ", "") == []


def test_logout_without_a_session_is_a_no_op(mn, home):
    r = run(mn, home, "LogOut")
    assert r.status == EXIT_OK and "Not logged in" in r.err.getvalue()
    assert [req.url.path for req in mn.requests] == ["/zstack/v1/openapi.json"]


def test_json_and_refresh_may_follow_the_arguments_of_one_command(mn, home):
    login(mn, home)
    process = Run(mn, home)
    assert process("QueryZone", "--json", "--refresh") == EXIT_OK
    assert json.loads(process.out.getvalue()) == {"inventories": []}
    assert mn.openapi_fetches == 2
