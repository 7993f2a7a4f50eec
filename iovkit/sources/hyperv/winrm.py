"""Run the collector on a remote Hyper-V host over WinRM (pypsrp) and parse the bundle it prints.

The password reaches pypsrp only: it is never logged, never put in an error message, never in argv.
"""

from __future__ import annotations

import json

from iovkit.errors import InputError, UnreachableError
from iovkit.snapshot import HostSnapshot
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from iovkit.sources.hyperv.script import collector_script
from iovkit.sources.windows import RemoteTarget, describe_failure, scrub, winrm_client


def collect_remote(target: RemoteTarget, password: str | None) -> HostSnapshot:
    """Run collect.ps1 on target.host; connection or authentication failures -> UnreachableError naming it."""
    where = f"{target.host}:{target.winrm_port}"
    try:
        client = winrm_client(target, password)
        output, streams, had_errors = client.execute_ps(collector_script())
    except Exception as err:  # pypsrp/requests/spnego raise many types; all mean "could not run it there"
        raise UnreachableError(
            f"WinRM to {where} ({target.auth}{', ssl' if target.ssl else ''}) failed: {describe_failure(err, password)}"
        ) from None  # `from None`: the chained exception may carry request details
    start = output.find("{")
    if start < 0:
        errs = "; ".join(scrub(str(e), password) for e in getattr(streams, "error", [])[:3])
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
