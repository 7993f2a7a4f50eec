"""Entry point: builds the command tree and maps every IovkitError to a one-line message and exit code."""

from __future__ import annotations

import contextlib
import copy
import errno
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import typer
from typer.core import TyperGroup

from iovkit import __version__
from iovkit.cli.helpview import use_help_view
from iovkit.cli.options import COMMAND_PANELS, exit_codes, rewrite_deprecated
from iovkit.errors import ExitCode, IovkitError

# Which module registers which top-level command. `iovkit [--debug] CMD ...` builds only CMD's module and CMD in
# it (the whole tree is built for everything else: top-level help, completion, an unknown command or a typo, any
# other root option); tests check this table and that pages and errors are the same both ways.
COMMAND_MODULES: dict[str, str] = {
    "collect": "collect",
    "schema": "collect",
    "check": "check",
    "doctor": "check",
    "diagnose": "diagnose",
    "monitor": "diagnose",
    "plan": "plan",
    "apply": "plan",
    "rollback": "plan",
    "relay": "relay",
    "bench": "bench",
    "compare": "compare",
    "script": "script",
    "fleet": "fleet",
    "report": "report",
}
MODULES = ("collect", "check", "diagnose", "plan", "relay", "bench", "compare", "script", "fleet", "report")

# The order of the top-level help: panels in COMMAND_PANELS order, and within a panel this order
# (a command not named here goes last in its panel, in the order it was registered).
COMMAND_ORDER = (
    "doctor",
    "collect",
    "check",
    "diagnose",
    "fleet",
    "report",
    "plan",
    "apply",
    "rollback",
    "monitor",
    "relay",
    "bench",
    "compare",
    "schema",
    "script",
)


def _order_commands(typer_app: typer.Typer) -> None:
    def key(info: typer.models.CommandInfo | typer.models.TyperInfo) -> tuple[int, int]:
        panel = info.rich_help_panel if isinstance(info.rich_help_panel, str) else ""
        rank = COMMAND_PANELS.index(panel) if panel in COMMAND_PANELS else len(COMMAND_PANELS)
        name = info.name if isinstance(info.name, str) else ""
        return rank, COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER)

    typer_app.registered_commands.sort(key=key)
    typer_app.registered_groups.sort(key=key)


def _version(value: bool) -> None:
    if value:
        print(f"iovkit {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks"),
) -> None:
    if debug:
        os.environ["IOVKIT_DEBUG"] = "1"


def build_app(modules: tuple[str, ...] = MODULES) -> typer.Typer:
    """The command tree with the commands of `modules` (iovkit.cli.<name>), help drawn by iovkit.cli.helpview.

    Command modules import only typer and iovkit.cli.options at import time; the work is imported inside each
    command, so `iovkit --version` and any `--help` do not load pydantic, the traffic stack or matplotlib.
    """
    tree = typer.Typer(
        name="iovkit",
        help="Find and remove the virtual-switch bottleneck for packet-heavy VMs (SR-IOV).",
        epilog=exit_codes(
            "findings (not ready, bottleneck, worse)",
            extra={3: "unreachable host or target", 4: "an apply step failed and was rolled back"},
            cannot_answer=True,
        ),
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for name in modules:
        importlib.import_module(f"iovkit.cli.{name}").register(tree)
    _order_commands(tree)
    tree.callback()(_root)
    use_help_view(tree)
    return tree


_APP: list[typer.Typer] = []


def full_app() -> typer.Typer:
    """The whole command tree, built once on first use."""
    if not _APP:
        _APP.append(build_app())
    return _APP[0]


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # `from iovkit.cli.main import app` (tests, tools) still gets the whole tree
        return full_app()
    raise AttributeError(name)


def _listing(tree: typer.Typer) -> typer.Typer:
    """A copy of `tree` whose commands take no parameters, for the top-level help, which lists commands only:
    converting every command's parameters (typer evaluates each annotation) is most of that page's cost."""
    out = copy.copy(tree)
    out.registered_commands = [copy.copy(info) for info in tree.registered_commands]
    for info in out.registered_commands:
        info.callback = _stub(info.callback)
    out.registered_groups = [copy.copy(group) for group in tree.registered_groups]
    for group in out.registered_groups:
        if group.typer_instance is not None:
            group.typer_instance = _listing(group.typer_instance)
    return out


def _stub(callback: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """A callback with `callback`'s name and docstring (what the listing shows) and no parameters."""
    if callback is None:
        return None

    def stub() -> None:
        raise AssertionError("a listing is never invoked")  # pragma: no cover

    stub.__name__, stub.__doc__ = callback.__name__, callback.__doc__
    return stub


def _help_only(args: list[str]) -> Callable[[], object] | None:
    """`iovkit CMD [SUB] --help` (nothing else): print that help from CMD's module alone, else None; `iovkit
    --help` and `iovkit` alone: the command list without building each command's parameters.

    The root's own options are not processed on this path: typer coerces every unset option through pydantic
    (about 40 ms), and the help page needs none of them.
    """
    if args in ([], ["--help"], ["-h"]) and "_IOVKIT_COMPLETE" not in os.environ:

        def top() -> object:
            cmd: typer._click.Command = typer.main.get_command(_listing(build_app()))  # with completion options
            with cmd.make_context("iovkit", list(args), **cmd.context_settings):  # the help option prints and exits
                pass
            return 0

        return top
    if len(args) < 2 or args[-1] not in ("--help", "-h") or any(w.startswith("-") for w in args[:-1]):
        return None
    tree = _command_tree(args[0])
    if tree is None:
        return None

    def show() -> object:
        cmd: typer._click.Command = typer.main.get_group(tree)
        ctx = cmd.context_class(cmd, info_name="iovkit", **cmd.context_settings)
        for word in args[:-2]:
            sub = cmd.get_command(ctx, word) if isinstance(cmd, TyperGroup) else None
            if sub is None:  # a typo below CMD: the full path says so the usual way
                return _invoke(full_app(), args)
            cmd, ctx = sub, sub.context_class(sub, info_name=word, parent=ctx, **sub.context_settings)
        leaf = cmd.get_command(ctx, args[-2]) if isinstance(cmd, TyperGroup) else None
        if leaf is None:
            return _invoke(full_app(), args)
        with leaf.make_context(args[-2], [args[-1]], parent=ctx):  # the help option prints and exits
            pass
        return 0

    return show


def _one_command(args: list[str]) -> typer.Typer | None:
    """The tree of `iovkit [--debug]... CMD ...` holding CMD alone; None where the whole tree must answer."""
    at = 0
    while at < len(args) and args[at] == "--debug":
        at += 1
    return _command_tree(args[at]) if at < len(args) else None


def _command_tree(name: str) -> typer.Typer | None:
    """The tree holding top-level command `name` alone, built from its module only; None for an unknown name or
    a shell-completion request (the whole tree answers those)."""
    module = COMMAND_MODULES.get(name)
    if module is None or "_IOVKIT_COMPLETE" in os.environ:
        return None
    tree = build_app((module,))
    tree.registered_commands = [i for i in tree.registered_commands if i.name == name]
    tree.registered_groups = [g for g in tree.registered_groups if g.name == name]
    return tree


def _invoke(tree: typer.Typer, args: list[str]) -> object:
    """What `tree(args=...)` does, with plain parameter values converted without pydantic (iovkit.cli.coerce)."""
    cmd = typer.main.get_command(tree)
    try:
        from iovkit.cli.coerce import use_plain_coercion

        use_plain_coercion(cmd)
    except (ImportError, AttributeError):  # a typer without (or with moved) runtime params: its own coercion, as
        pass  # ever (tests/test_cli_coerce.py fails loudly on such a typer)
    return cmd.main(args=args, prog_name="iovkit", standalone_mode=False)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args and set(args) <= {"--version", "--debug"} and "--version" in args:
        # Scripts call `iovkit --version` to probe for the tool: answer before typer builds the 16-command tree.
        print(f"iovkit {__version__}")
        return int(ExitCode.OK)
    debug = "--debug" in args or os.environ.get("IOVKIT_DEBUG") == "1"
    previous_term = _catch_sigterm()
    try:
        return _run(args, debug)
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def _catch_sigterm() -> Any:
    """Make SIGTERM (systemd stop, `timeout`, kill) end a run like Ctrl-C: one line, exit 130, no traceback.

    Only where nothing else claimed SIGTERM and only in the main thread (tests call main() in-process);
    returns the handler to restore, or None when nothing was installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous not in (signal.SIG_DFL, None):
            return None
        owner = os.getpid()

        def on_term(signum: int, frame: FrameType | None) -> None:
            if os.getpid() != owner:  # a forked worker that kept this handler: die the default way
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
        return previous
    except (ValueError, OSError):
        return None


def _run(args: list[str], debug: bool) -> int:
    notices: list[str] = []
    args = rewrite_deprecated(args, notices)
    for line in dict.fromkeys(notices):
        print(f"iovkit: warning: {line}", file=sys.stderr)
    try:
        fast = _help_only(args)
        rv = fast() if fast is not None else _invoke(_one_command(args) or full_app(), args)
        code = int(rv) if isinstance(rv, int) else 0
        if code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C (and our SIGTERM) into a silent exit 130
            print("iovkit: interrupted", file=sys.stderr)
    except IovkitError as err:
        if debug:
            raise
        print(f"iovkit: error: {err}", file=sys.stderr)
        code = int(err.exit_code)
    except typer.Exit as ex:
        code = int(getattr(ex, "exit_code", 0))
    except typer.Abort:
        print("iovkit: interrupted", file=sys.stderr)
        code = int(ExitCode.INTERRUPTED)
    except typer.TyperException as ex:  # typer's usage errors (its vendored click)
        if debug:
            raise
        fmt = getattr(ex, "format_message", None)
        msg = (fmt() if callable(fmt) else str(ex)).replace("\n", " ").replace(": Value error, ", ": ").strip()
        if not msg:  # `iovkit` or `iovkit script` alone: the help above lists what to run
            msg = "missing command (the list is above)"
        print(f"iovkit: error: {msg}", file=sys.stderr)
        code = int(ExitCode.USAGE)
    except KeyboardInterrupt:
        print("iovkit: interrupted", file=sys.stderr)
        code = int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # `iovkit ... | head`: the reader left; say nothing more, like any Unix filter.
        _silence_stdout()
        return _BROKEN_PIPE
    except OSError as ex:  # an unreadable device, a full disk or a closed stdout: one line, never a traceback
        if debug:
            raise
        print(f"iovkit: error: {_os_error_line(ex)}", file=sys.stderr)
        code = int(ExitCode.USAGE)
    except Exception as ex:  # a bug: still one line, and the way to the traceback
        if debug:
            raise
        if _is_validation_error(ex):  # an option value a settings model refused (e.g. --max-loss 101)
            from pydantic import ValidationError

            from iovkit.fileio import validation_line

            assert isinstance(ex, ValidationError)
            loc, msg = validation_line(ex)
            print(f"iovkit: error: {loc}: {msg}" if loc else f"iovkit: error: {msg}", file=sys.stderr)
            return _flush(int(ExitCode.USAGE))
        text = " ".join(str(ex).split())[:200]
        print(
            f"iovkit: error: internal error {type(ex).__name__}: {text} (a bug: rerun with --debug for the "
            "traceback and report it)",
            file=sys.stderr,
        )
        code = int(ExitCode.INTERNAL)
    return _flush(code)


def _is_validation_error(ex: BaseException) -> bool:
    """A pydantic ValidationError, recognised without importing pydantic (start-up time)."""
    return "pydantic" in sys.modules and any(
        c.__name__ == "ValidationError" and c.__module__.startswith("pydantic") for c in type(ex).__mro__
    )


def _flush(code: int) -> int:
    """Flush standard output; a reader that left or a full disk changes the exit code."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return _BROKEN_PIPE
    except OSError as ex:
        print(f"iovkit: error: {_os_error_line(ex)}", file=sys.stderr)
        code = int(ExitCode.USAGE)
    return code


_BROKEN_PIPE = 128 + 13  # what a shell reports for a process ended by SIGPIPE


def _os_error_line(ex: OSError) -> str:
    """One line naming the file (or standard output, which has no name) and the system's reason."""
    if ex.filename is not None:
        where = str(ex.filename)
    elif ex.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EBADF):
        where = "standard output"  # named files are written through fileio, which names them
    else:
        where = "input/output"
    reason = ex.strerror or str(ex) or type(ex).__name__
    return f"{where}: {reason}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (tests capture it): nothing will flush into a closed pipe


def run() -> None:
    try:
        code = main()
    except KeyboardInterrupt:  # a Ctrl-C in the instant between the command's end and here
        print("iovkit: interrupted", file=sys.stderr)
        code = int(ExitCode.INTERRUPTED)
    # The run has ended and said how: a Ctrl-C from here on (interpreter shutdown, multiprocessing joining its
    # children) must not turn that into a traceback or a death by SIGINT (exit -2 instead of the code above).
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    run()
