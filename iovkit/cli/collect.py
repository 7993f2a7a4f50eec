"""`iovkit collect` and `iovkit schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from iovkit.cli.common import (
    AuthOpt,
    ExampleOpt,
    FromOpt,
    HostOpt,
    PortOpt,
    SslOpt,
    UserOpt,
    err,
    remote_target,
    winrm_password,
)
from iovkit.errors import InputError
from iovkit.fileio import write_text
from iovkit.snapshot import HostSnapshot, json_schema
from iovkit.summary import render_summary


def _write(text: str, output: Path | None) -> None:
    if output is None or str(output) == "-":
        typer.echo(text)
        return
    write_text(output, text + "\n")


def collect_cmd(
    from_path: FromOpt = None,
    example: ExampleOpt = None,
    host: HostOpt = None,
    user: UserOpt = None,
    auth: AuthOpt = "negotiate",
    port: PortOpt = None,
    ssl: SslOpt = False,
    root: Annotated[
        Path | None, typer.Option("--root", help="Read a Linux host's files under DIR instead of /")
    ] = None,
    archive: Annotated[
        Path | None, typer.Option("--archive", help="Also save exactly the files read to FILE.tar.gz (Linux)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the snapshot here (default stdout)")
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No summary on stderr")] = False,
    list_examples: Annotated[bool, typer.Option("--list-examples", help="List the shipped examples")] = False,
) -> None:
    """Collect a host snapshot (this host, --from a capture, --example, or --host over WinRM)."""
    if list_examples:
        from iovkit.examples import EXAMPLES

        for name, (_, desc) in EXAMPLES.items():
            typer.echo(f"{name:26} {desc}")
        return
    snap: HostSnapshot
    if root is not None or archive is not None:
        if any(x is not None for x in (from_path, example, host)):
            raise InputError("--root/--archive read this Linux host; they do not combine with --from/--example/--host")
        from iovkit.sources.linux import collect as linux_collect

        snap = linux_collect(root or Path("/"), archive=archive)
    else:
        from iovkit.sources import take_snapshot

        remote = remote_target(host, user, auth, port, ssl)
        snap = take_snapshot(
            from_path=from_path, example=example, remote=remote, password=winrm_password(user) if remote else None
        )
    _write(snap.to_json(), output)
    if not quiet:
        render_summary(snap, err)
        if archive is not None:
            err.print(f"  archive written: {archive}")


def schema_cmd(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the schema here")] = None,
) -> None:
    """Print the JSON Schema of the host snapshot."""
    _write(json.dumps(json_schema(), indent=2), output)


def register(app: typer.Typer) -> None:
    app.command("collect")(collect_cmd)
    app.command("schema")(schema_cmd)
