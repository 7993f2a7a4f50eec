"""`iovkit collect` and `iovkit schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from iovkit.cli.common import err, remote_target, winrm_password
from iovkit.cli.options import (
    ASSESS,
    INPUT_PANEL,
    OUTPUT_PANEL,
    REFERENCE,
    AuthOpt,
    EsxiHostOpt,
    ExampleOpt,
    FromOpt,
    HostOpt,
    InsecureOpt,
    PortOpt,
    QuietOpt,
    SslOpt,
    UserOpt,
    VsphereOpt,
    exit_codes,
    output_opt,
)
from iovkit.errors import InputError

if TYPE_CHECKING:
    from iovkit.snapshot import HostSnapshot


def _write(text: str, output: Path | None) -> None:
    if output is None or str(output) == "-":
        typer.echo(text)
        return
    from iovkit.fileio import write_text

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
        Path | None,
        typer.Option(
            "--root",
            help="Read a Linux host's files under DIR instead of /",
            metavar="<dir>",
            show_default=False,
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            help="Also save exactly the files read to FILE.tar.gz (Linux)",
            metavar="<file>",
            show_default=False,
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    output: Annotated[Path | None, output_opt("Write the snapshot here (default: standard output)")] = None,
    quiet: QuietOpt = False,
    list_examples: Annotated[bool, typer.Option("--list-examples", help="List the shipped examples")] = False,
    vsphere: VsphereOpt = None,
    insecure: InsecureOpt = False,
    esxi_host: EsxiHostOpt = None,
) -> None:
    """Collect a host snapshot (this host, --from a capture or an ESXi paste, --example, --host over WinRM, or
    --vsphere for an ESXi host through the vSphere API)."""
    if list_examples:
        from iovkit.examples import EXAMPLES

        for name, (_, desc) in EXAMPLES.items():
            typer.echo(f"{name:26} {desc}")
        return
    from iovkit.summary import render_summary

    snap: HostSnapshot
    if vsphere is not None:
        if any(x is not None for x in (from_path, example, host, root, archive)):
            raise InputError("--vsphere reads an ESXi host over the vSphere API; it does not combine with other inputs")
        from iovkit.cli.esxi import vsphere_password, vsphere_target
        from iovkit.sources.esxi.live import collect_vsphere

        target = vsphere_target(vsphere, user, insecure, esxi_host)
        assert target is not None
        snap = collect_vsphere(target, vsphere_password(target.user))
    elif root is not None or archive is not None:
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
    output: Annotated[Path | None, output_opt("Write the schema here (default: standard output)")] = None,
) -> None:
    """Print the JSON Schema of the host snapshot."""
    from iovkit.snapshot import json_schema

    _write(json.dumps(json_schema(), indent=2), output)


def register(app: typer.Typer) -> None:
    app.command("collect", rich_help_panel=ASSESS, epilog=exit_codes(extra={3: "host unreachable"}))(collect_cmd)
    app.command("schema", rich_help_panel=REFERENCE, epilog=exit_codes())(schema_cmd)
