"""The one password rule for every remote target (WinRM, vSphere): IOVKIT_PASSWORD, else a hidden prompt.

A module of its own so that common.py (which builds targets) and esxi.py (vSphere targets) both use it without
importing each other.
"""

from __future__ import annotations

import os
import sys

import typer

from iovkit.errors import InputError


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
