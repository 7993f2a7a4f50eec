"""The console objects and the snapshot an input option names (imports the heavy parts only when called).

The option definitions live in iovkit.cli.options; they are re-exported here for older imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from iovkit.cli.options import (  # noqa: F401  (re-exported)
    AUTHS,
    AuthOpt,
    ExampleOpt,
    FromOpt,
    HostOpt,
    PortOpt,
    SnapshotArg,
    SslOpt,
    UserOpt,
)
from iovkit.cli.password import winrm_password
from iovkit.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from iovkit.snapshot import HostSnapshot
    from iovkit.sources import RemoteTarget


class _LazyConsole:
    """A rich Console made on first use: rich.console costs a noticeable part of `iovkit --version`."""

    def __init__(self, **kw: Any) -> None:
        self._kw = kw
        self._console: Console | None = None

    def _real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kw)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __enter__(self) -> Console:  # special methods bypass __getattr__
        return self._real().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._real().__exit__(*exc)


# Results go to stdout; summaries, progress and errors to stderr, so `-o -`/pipes stay clean.
out = cast("Console", _LazyConsole(highlight=False, soft_wrap=True))
err = cast("Console", _LazyConsole(stderr=True, highlight=False))


def remote_target(host: str | None, user: str | None, auth: str, port: int | None, ssl: bool) -> RemoteTarget | None:
    if host is None:
        return None
    if auth not in AUTHS:
        raise InputError(f"unknown authentication {auth!r}; choose one of {', '.join(AUTHS)}", field="--auth")
    from iovkit.sources import RemoteTarget

    return RemoteTarget(host=host, user=user, auth=auth, port=port, ssl=ssl)  # type: ignore[arg-type]


def resolve_snapshot(
    snapshot: Path | None,
    from_path: Path | None,
    example: str | None,
    host: str | None = None,
    user: str | None = None,
    auth: str = "negotiate",
    port: int | None = None,
    ssl: bool = False,
    vsphere: str | None = None,
    insecure: bool = False,
    esxi_host: str | None = None,
) -> HostSnapshot:
    from iovkit.sources import take_snapshot

    if vsphere is not None:  # an ESXi host over the vSphere API (pyVmomi is imported only here)
        if any(x is not None for x in (snapshot, from_path, example, host)):
            raise InputError("give only one of SNAPSHOT, --from, --example, --host or --vsphere")
        from iovkit.cli.esxi import vsphere_password, vsphere_target
        from iovkit.sources.esxi.live import collect_vsphere

        target = vsphere_target(vsphere, user, insecure, esxi_host)
        assert target is not None
        return collect_vsphere(target, vsphere_password(target.user))
    remote = remote_target(host, user, auth, port, ssl)
    password = winrm_password(user) if remote is not None else None
    return take_snapshot(snapshot=snapshot, from_path=from_path, example=example, remote=remote, password=password)
