"""``zstack-cli``: call any API of a management node by its ZStack name.

    zstack-cli [-s http://host:port] [--json] API [name=value ...]
    zstack-cli API --help          the API's parameters
    zstack-cli --list [WORD]       the APIs the MN offers
    zstack-cli                     a shell reading one command a line

Exit status: 0 success, 1 the API failed (or the MN could not be reached),
2 bad arguments, 130 interrupted while waiting for a job.
"""

from __future__ import annotations

import difflib
import sys
from typing import Any, Callable, TextIO

import click
import httpx

from mn.cli.args import HASHED_PASSWORD_APIS, QUERY_OPS, ArgumentError, build_call, schema_kind
from mn.cli.catalog import ApiSpec, Catalog, CatalogError, load_catalog
from mn.cli.client import OPENAPI_PATH, SESSION_ERRORS, ApiError, JobInterrupted, ZStackClient
from mn.cli.home import CliHome, normalize_server
from mn.cli.output import cell, format_error, render
from mn.cli.progress import Spinner

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "ZSTACK_CLI_SERVER"
LOGOUT_API = "LogOut"
#: ZStack's "invalid session": the stored session is of no further use.
INVALID_SESSION = "ID.1001"
HELP_ARGUMENTS = ("-h", "--help", "help")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Cli:
    """One server's session, catalogue and client; :meth:`run` runs one command."""

    def __init__(self, server: str, *, home: CliHome | None = None, as_json: bool = False,
                 refresh: bool = False, transport: httpx.BaseTransport | None = None,
                 out: TextIO | None = None, err: TextIO | None = None):
        self.server = normalize_server(server)
        self.home = home or CliHome()
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.client = ZStackClient(self.server, self.home.session(self.server), transport=transport)
        self._catalog: Catalog | None = None
        self._fresh = False  # the catalogue was fetched by this process
        self._refresh = refresh

    def close(self) -> None:
        self.client.close()

    # -- the API catalogue -------------------------------------------------------------

    def catalog(self, *, refresh: bool = False) -> Catalog:
        refresh = refresh or self._refresh
        if self._catalog is None or (refresh and not self._fresh):
            fetched = []

            def fetch() -> dict[str, Any]:
                fetched.append(True)
                return self.client.openapi()

            try:
                self._catalog = load_catalog(self.home, self.server, fetch, refresh=refresh)
            except ApiError:
                self.error(f"Cannot read the API list of {self.server} (GET {OPENAPI_PATH}):")
                raise
            self._fresh = self._fresh or bool(fetched)
        return self._catalog

    def find(self, name: str) -> ApiSpec:
        spec = self.catalog().find(name)
        if spec is None and not self._fresh:  # an MN upgraded since the cache was written
            spec = self.catalog(refresh=True).find(name)
        if spec is None:
            close = difflib.get_close_matches(name, self.catalog().names(), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; see zstack-cli --list"
            raise ArgumentError(f"{self.server} has no API {name}{hint}")
        return spec

    # -- commands ------------------------------------------------------------------------

    def run(self, name: str, arguments: list[str]) -> int:
        """Run one command; prints the result or the error, returns the exit status.
        ``--json`` among the arguments prints this result as JSON, ``--refresh``
        reads the API list again first."""
        arguments = list(arguments)
        as_json = _take_flag(arguments, "--json") or self.as_json
        refresh = _take_flag(arguments, "--refresh")
        return self.guarded(lambda: self._run(name, arguments, as_json, refresh))

    def list_apis(self, word: str | None = None) -> int:
        """Print the names of the APIs (those containing ``word``)."""

        def list_them() -> int:
            for name in self.catalog().names():
                if not word or word.lower() in name.lower():
                    self.print(name)
            return EXIT_OK

        return self.guarded(list_them)

    def guarded(self, action: Callable[[], int]) -> int:
        """``action()``, with every failure printed and turned into an exit status."""
        try:
            return action()
        except ArgumentError as exc:
            self.error(f"Error: {exc}")
            return EXIT_USAGE
        except CatalogError as exc:
            self.error(f"Error: the API list of {self.server} is unusable: {exc}")
            return EXIT_FAILED
        except ApiError as exc:
            self.report(exc)
            return EXIT_FAILED
        except httpx.HTTPError as exc:
            self.error(f"Error: cannot reach the management node at {self.server}: {exc}")
            return EXIT_FAILED
        except JobInterrupted as exc:
            self.error(f"Interrupted: {exc}")
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            self.error("Interrupted")
            return EXIT_INTERRUPTED

    def _run(self, name: str, arguments: list[str], as_json: bool, refresh: bool) -> int:
        if refresh:
            self.catalog(refresh=True)
        spec = self.find(name)
        if len(arguments) == 1 and arguments[0] in HELP_ARGUMENTS:
            self.print(describe(spec, self.catalog()))
            return EXIT_OK
        if spec.name == LOGOUT_API and not _given("sessionUuid", arguments):
            if not self.client.session:
                self.error(f"Not logged in to {self.server}")
                return EXIT_OK
            arguments.append(f"sessionUuid={self.client.session}")
        call = build_call(spec, self.catalog(), arguments)
        try:
            with Spinner(spec.name, self.err) as spinner:
                body = self.client.call(call, wait=spinner.wait)
        except ApiError as exc:
            self.report(exc, spec)
            return EXIT_FAILED
        self.remember_session(spec, arguments, body)
        text = render(body, as_json=as_json, fields=call.fields)
        if text:
            self.print(text)
        return EXIT_OK

    def remember_session(self, spec: ApiSpec, arguments: list[str], body: dict[str, Any]) -> None:
        """Keep the session of a login; forget ours when a LogOut ended it."""
        inventory = body.get("inventory")
        if spec.name.startswith("LogIn") and isinstance(inventory, dict) and inventory.get("uuid"):
            self.client.session = inventory["uuid"]
            self.home.save_session(self.server, inventory["uuid"])
        elif spec.name == LOGOUT_API and self.client.session \
                and _given("sessionUuid", arguments) == self.client.session:
            self.forget_session()

    def forget_session(self) -> None:
        self.client.session = None
        self.home.clear_session(self.server)

    def report(self, exc: ApiError, spec: ApiSpec | None = None) -> None:
        """Print ZStack's error; after a session error, or without a session, say how to log in."""
        self.error(format_error(exc.error))
        had_session = self.client.session is not None
        if exc.code == INVALID_SESSION and had_session:
            self.forget_session()  # expired, or logged out elsewhere: useless from now on
        logging_in = spec is not None and spec.name.startswith("LogIn")
        needs_session = spec is not None and not spec.public
        if not logging_in and (exc.code in SESSION_ERRORS or (needs_session and not had_session)):
            self.error(f"Log in with: zstack-cli -s {self.server} LogInByAccount "
                       "accountName=admin password=<password>")

    def print(self, text: str) -> None:
        print(text, file=self.out)

    def error(self, text: str) -> None:
        print(text, file=self.err)


def _given(name: str, arguments: list[str]) -> str | None:
    """The value of ``name=...`` among ``arguments``, if given."""
    prefix = name + "="
    return next((a[len(prefix):] for a in arguments if a.startswith(prefix)), None)


def describe(spec: ApiSpec, catalog: Catalog) -> str:
    """What ``zstack-cli <API> --help`` shows."""
    mode = "query" if spec.query else ("answered at once" if spec.sync else "runs as a job")
    lines = [f"{spec.name}  ({spec.full_name or 'no full name'}; {mode}"
             f"{'; no login needed' if spec.public else ''})",
             f"{spec.method} /zstack/v1{spec.path}", ""]
    if spec.query:
        return "\n".join(lines + [
            f"conditions: field<op>value, op one of {' '.join(QUERY_OPS)}",
            "            (?= in, !?= not in, ~= like, !~= not like; values of in: a,b,c),",
            "            field=null, field!=null, 'field is null', 'field not null';",
            "            fields of related resources too (zone.name=z1)",
            "options:    limit=N start=N count=true replyWithCount=true sort=+field|-field",
            "            (or sortBy=field sortDirection=asc|desc) fields=f1,f2 groupBy=field"])
    lines.append("parameters:")
    required = set(spec.required)
    names = [*spec.path_params, *(p for p in spec.params if p not in spec.path_params)]
    width = max(len(n) for n in [*names, "systemTags"])
    for name in names:
        schema = spec.params.get(name, {"type": "string"})
        kind = schema_kind(schema, catalog)
        notes = [_type_text(kind)]
        if name in required or name in spec.path_params:
            notes.append("required")
        if name in spec.path_params:
            notes.append("in the URL")
        if name == "password" and spec.name in HASHED_PASSWORD_APIS:
            notes.append("sent as its SHA-512")
        default = catalog.resolve(schema).get("default", kind.get("default"))
        if default is not None:
            notes.append(f"default {cell(default)}")
        lines.append(f"  {name.ljust(width)}  {', '.join(notes)}")
    lines.append(f"  {'systemTags'.ljust(width)}  list of tags (a,b)")
    lines.append(f"  {'userTags'.ljust(width)}  list of tags (a,b)")
    return "\n".join(lines)


def _type_text(kind: dict[str, Any]) -> str:
    if "enum" in kind:
        return "one of " + "|".join(str(v) for v in kind["enum"] if v is not None)
    type_ = kind.get("type") or "any"
    if type_ == "array":
        item = kind.get("items") or {}
        return f"list of {item.get('type', 'values')} (a,b,c)"
    if type_ == "object":
        return "JSON object"
    return type_


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.option("-s", "--server", envvar=SERVER_ENV, default=DEFAULT_SERVER, show_default=True,
              help=f"the management node's URL (env {SERVER_ENV})")
@click.option("--json", "as_json", is_flag=True, help="print the raw JSON result")
@click.option("--refresh", is_flag=True, help="read the MN's API list again instead of the cached one")
@click.option("-l", "--list", "list_only", is_flag=True, help="list the APIs (containing API, if given)")
@click.argument("api", required=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def command(server: str, as_json: bool, refresh: bool, list_only: bool, api: str | None,
            arguments: tuple[str, ...]) -> None:
    """Call API (e.g. CreateZone, QueryZone) with name=value ARGUMENTS.

    \b
      zstack-cli LogInByAccount accountName=admin password=password
      zstack-cli CreateZone name=z1
      zstack-cli QueryZone name~=z% state!=Disabled fields=uuid,name sort=+name
      zstack-cli ChangeZoneState uuid=<uuid> stateEvent=disable
      zstack-cli CreateZone --help

    --json and --refresh may also follow the arguments. Without API, reads
    commands from stdin (an interactive shell on a terminal).
    """
    cli = Cli(server, as_json=as_json, refresh=refresh)
    try:
        if list_only:
            status = cli.list_apis(api)
        elif api is None:
            from mn.cli.shell import run_shell

            status = run_shell(cli, sys.stdin)
        else:
            status = cli.run(api, list(arguments))
    finally:
        cli.close()
    sys.exit(status)


def _take_flag(arguments: list[str], flag: str) -> bool:
    """Remove ``flag`` from ``arguments`` (no API argument starts with ``-``)."""
    found = flag in arguments
    while flag in arguments:
        arguments.remove(flag)
    return found


def main() -> None:
    command(prog_name="zstack-cli")


if __name__ == "__main__":
    main()
