"""``zstack-cli`` without an API: one command a line from stdin.

On a terminal it is an interactive shell with a prompt, history
(``~/.zstack/cli/history``) and tab completion of API and parameter names;
otherwise it runs a script (``zstack-cli < setup.txt``), ``#`` starting a
comment, and exits 1 if any command failed.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, TextIO

from mn.cli.args import QUERY_OPTIONS, TAG_PARAMS

if TYPE_CHECKING:
    from mn.cli.main import Cli

PROMPT = "zstack-cli >>> "
EXIT_WORDS = ("exit", "quit")
HISTORY_FILE = "history"
HISTORY_LENGTH = 1000


def run_shell(cli: "Cli", stdin: TextIO) -> int:
    interactive = _is_tty(stdin)
    if interactive:
        _enable_readline(cli)
        cli.print(f"{cli.server}: type an API name and name=value arguments "
                  "(tab completes, 'CreateZone --help' describes, 'exit' leaves)")
    failed = False
    while True:
        try:
            line = input(PROMPT) if interactive else stdin.readline()
        except EOFError:
            break
        except KeyboardInterrupt:
            cli.print("")
            continue
        if not interactive and line == "":
            break
        if interactive and "password" in line.lower():
            _forget_last_line()
        status = run_line(cli, line)
        if status is None:
            break
        failed = failed or status != 0
    if interactive:
        _save_history(cli)
        return 0
    return 1 if failed else 0


def run_line(cli: "Cli", line: str) -> int | None:
    """Run one line; the exit status of its command, None for ``exit``."""
    line = line.strip()
    if not line or line.startswith("#"):
        return 0
    try:
        words = shlex.split(line)
    except ValueError as exc:
        cli.error(f"Error: {exc}")
        return 2
    if words[0] in EXIT_WORDS:
        return None
    return cli.run(words[0], words[1:])


def completions(cli: "Cli", line: str, text: str) -> list[str]:
    """What tab may complete ``text`` to, the line before it being ``line``."""
    words = line.split()
    if not words:
        return [n for n in cli.catalog().names() if n.startswith(text)]
    spec = cli.catalog().find(words[0])
    if spec is None:
        return []
    names = list(spec.params) + list(QUERY_OPTIONS if spec.query else TAG_PARAMS)
    return sorted(f"{n}=" for n in dict.fromkeys(names) if n.startswith(text) and n != "session")


def _enable_readline(cli: "Cli") -> None:
    try:
        import readline
    except ImportError:  # not on every platform; the shell works without it
        return

    def complete(text: str, state: int) -> str | None:
        try:
            options = completions(cli, readline.get_line_buffer()[:readline.get_begidx()], text)
        except Exception:  # the MN is unreachable: just don't complete
            return None
        return options[state] if state < len(options) else None

    readline.set_completer_delims(" \t")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(cli.home.root / HISTORY_FILE)
    except OSError:
        pass


def _forget_last_line() -> None:
    """Keep passwords out of the history (and its file)."""
    try:
        import readline

        length = readline.get_current_history_length()
        if length:
            readline.remove_history_item(length - 1)
    except (ImportError, ValueError):
        pass


def _save_history(cli: "Cli") -> None:
    try:
        import readline

        path = cli.home.root / HISTORY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        readline.write_history_file(path)
    except (ImportError, OSError):
        pass


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
