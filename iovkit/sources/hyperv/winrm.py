"""Run the collector on a remote Hyper-V host over WinRM (pypsrp) and parse the bundle it prints.

The password reaches pypsrp only: it is never logged, never put in an error message, never in argv.
"""

from __future__ import annotations

import json
import re
from typing import Any

from iovkit.errors import InputError, UnreachableError
from iovkit.snapshot import HostSnapshot
from iovkit.sources import RemoteTarget
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from iovkit.sources.hyperv.script import collector_script

CONNECT_TIMEOUT_S = 10
OPERATION_TIMEOUT_S = 300


def client_kwargs(target: RemoteTarget, password: str | None) -> dict[str, Any]:
    """Arguments for pypsrp.client.Client: HTTP 5985 or HTTPS 5986 unless --port says otherwise."""
    port = target.port or (5986 if target.ssl else 5985)
    return {
        "username": target.user,
        "password": password,
        "auth": target.auth,
        "port": port,
        "ssl": target.ssl,
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": OPERATION_TIMEOUT_S + 30,
        "operation_timeout": OPERATION_TIMEOUT_S,
        "reconnection_retries": 0,
    }


_ROOT_CAUSE = re.compile(r"\[Errno -?\d+\] ([^'\")(]+)|(timed out|Failed to resolve '[^']+')")


def _scrub(text: str, password: str | None) -> str:
    """One short line: the root cause out of requests/urllib3's nested repr, never any part of the password.

    Masking the password inside the text would show which letters it replaced (a one-letter password turns
    `Max retries` into `Ma*** retries`), so a text that contains it is withheld whole.
    """
    text = " ".join(str(text).split())
    found = _ROOT_CAUSE.findall(text)
    if found and "Pool(" in text:  # urllib3's `HTTPConnectionPool(host=..., port=...): Max retries ...`
        text = "; ".join(dict.fromkeys(a or b for a, b in found))
    text = text[:200]
    if password and password in text:
        return "(details withheld: they contain the password)"
    return text


def describe_failure(err: BaseException, password: str | None) -> str:
    """`Type: cause` of a pypsrp/requests/spnego failure, for UnreachableError messages."""
    return f"{type(err).__name__}: {_scrub(str(err), password)}"


def collect_remote(target: RemoteTarget, password: str | None) -> HostSnapshot:
    """Run collect.ps1 on target.host; connection or authentication failures -> UnreachableError naming it."""
    from pypsrp.client import Client

    kwargs = client_kwargs(target, password)
    where = f"{target.host}:{kwargs['port']}"
    try:
        client = Client(target.host, **kwargs)
        output, streams, had_errors = client.execute_ps(collector_script())
    except Exception as err:  # pypsrp/requests/spnego raise many types; all mean "could not run it there"
        raise UnreachableError(
            f"WinRM to {where} ({target.auth}{', ssl' if target.ssl else ''}) failed: {describe_failure(err, password)}"
        ) from None  # `from None`: the chained exception may carry request details
    start = output.find("{")
    if start < 0:
        errs = "; ".join(_scrub(str(e), password) for e in getattr(streams, "error", [])[:3])
        raise UnreachableError(
            f"WinRM to {where}: the collector printed no bundle" + (f" ({errs})" if had_errors and errs else "")
        )
    try:
        data = json.loads(output[start:])
    except json.JSONDecodeError as err:
        raise InputError(
            f"the collector's output is not valid JSON: {err.msg} at line {err.lineno}", path=f"winrm:{target.host}"
        ) from err
    return snapshot_from_bundle(data, f"winrm:{target.host}")
