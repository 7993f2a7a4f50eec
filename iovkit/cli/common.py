"""Options shared by every command that works on a host snapshot, and the console objects."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from iovkit.errors import InputError
from iovkit.snapshot import HostSnapshot
from iovkit.sources import RemoteTarget, take_snapshot

# Results go to stdout; summaries, progress and errors to stderr, so `-o -`/pipes stay clean.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

SnapshotArg = Annotated[
    Path | None, typer.Argument(help="A snapshot JSON written by `iovkit collect`", show_default=False)
]
FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="Anything collect reads: bundle, Format-List text, Get-NetView folder/.zip, Linux archive",
        show_default=False,
    ),
]
ExampleOpt = Annotated[
    str | None,
    typer.Option("--example", help="A shipped example host (see `iovkit collect --list-examples`)", show_default=False),
]
HostOpt = Annotated[str | None, typer.Option("--host", help="Remote Hyper-V host over WinRM", show_default=False)]
UserOpt = Annotated[str | None, typer.Option("--user", help="WinRM user (password: IOVKIT_PASSWORD or prompt)")]
AuthOpt = Annotated[str, typer.Option("--auth", help="WinRM authentication: negotiate, kerberos, ntlm or credssp")]
PortOpt = Annotated[
    int | None, typer.Option("--port", help="WinRM port (default 5985, or 5986 with --ssl)", min=1, max=65535)
]
SslOpt = Annotated[bool, typer.Option("--ssl/--no-ssl", help="WinRM over HTTPS")]

AUTHS = ("negotiate", "kerberos", "ntlm", "credssp")


def winrm_password(user: str | None) -> str | None:
    """The WinRM password from IOVKIT_PASSWORD, else a hidden prompt; never from argv, never logged.

    No user means the current Kerberos ticket or negotiate identity is used, so no password is asked.
    """
    pw = os.environ.get("IOVKIT_PASSWORD")
    if pw is not None:
        return pw
    if user is None:
        return None
    if not sys.stdin.isatty():
        raise InputError("no password: set IOVKIT_PASSWORD or run interactively to be prompted", field="--user")
    return str(typer.prompt(f"Password for {user}", hide_input=True))


def remote_target(host: str | None, user: str | None, auth: str, port: int | None, ssl: bool) -> RemoteTarget | None:
    if host is None:
        return None
    if auth not in AUTHS:
        raise InputError(f"unknown authentication {auth!r}; choose one of {', '.join(AUTHS)}", field="--auth")
    kind: Literal["negotiate", "kerberos", "ntlm", "credssp"] = auth  # type: ignore[assignment]
    return RemoteTarget(host=host, user=user, auth=kind, port=port, ssl=ssl)


def resolve_snapshot(
    snapshot: Path | None,
    from_path: Path | None,
    example: str | None,
    host: str | None = None,
    user: str | None = None,
    auth: str = "negotiate",
    port: int | None = None,
    ssl: bool = False,
) -> HostSnapshot:
    remote = remote_target(host, user, auth, port, ssl)
    password = winrm_password(user) if remote is not None else None
    return take_snapshot(snapshot=snapshot, from_path=from_path, example=example, remote=remote, password=password)
