"""Entry point: builds the command tree and maps every IovkitError to a one-line message and exit code."""

from __future__ import annotations

import os
import sys

import typer

from iovkit import __version__
from iovkit.cli import bench, check, collect, diagnose, plan, relay, script
from iovkit.errors import ExitCode, IovkitError

app = typer.Typer(
    name="iovkit",
    help="Find and remove the virtual-switch bottleneck for packet-heavy VMs (SR-IOV).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in (collect, check, diagnose, plan, relay, bench, script):
    _module.register(app)


def _version(value: bool) -> None:
    if value:
        print(f"iovkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks"),
) -> None:
    if debug:
        os.environ["IOVKIT_DEBUG"] = "1"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("IOVKIT_DEBUG") == "1"
    try:
        rv = app(args=args, prog_name="iovkit", standalone_mode=False)
        code = int(rv) if isinstance(rv, int) else 0
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
        msg = (fmt() if callable(fmt) else str(ex)).replace("\n", " ")
        print(f"iovkit: error: {msg}", file=sys.stderr)
        code = int(ExitCode.USAGE)
    except KeyboardInterrupt:
        print("iovkit: interrupted", file=sys.stderr)
        code = int(ExitCode.INTERRUPTED)
    sys.stdout.flush()
    return code


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
