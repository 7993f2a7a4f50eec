"""vSphere connection helpers for collect, apply and rollback (the options live in iovkit.cli.options)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from iovkit.errors import InputError

if TYPE_CHECKING:
    from iovkit.sources.esxi.target import VsphereTarget


def vsphere_target(
    spec: str | None, user: str | None, insecure: bool, esxi_host: str | None = None
) -> VsphereTarget | None:
    if spec is None:
        return None
    if not user:
        raise InputError("the vSphere API needs a user (e.g. root or administrator@vsphere.local)", field="--user")
    from iovkit.sources.esxi.target import VsphereTarget

    return VsphereTarget.parse(spec, user, insecure, esxi_host)


def vsphere_password(user: str) -> str:
    """IOVKIT_PASSWORD, else a hidden prompt; never argv, never logged."""
    from iovkit.cli.password import winrm_password

    pw = winrm_password(user)
    if pw is None:  # pragma: no cover - winrm_password prompts or raises when a user is given
        raise InputError("no password: set IOVKIT_PASSWORD or run interactively", field="--user")
    return pw
