"""Read the collector's raw JSON bundle (what `iovkit script collect` writes on a Hyper-V host).

Layout, format_version 1 (one JSON object, UTF-8 with or without BOM)::

    {
      "format": "iovkit-hyperv-bundle",       # how `detect()` recognises a bundle
      "format_version": 1,
      "collector_version": "1",
      "collected_at": "2026-11-20T09:00:00.0000000Z"   # or "/Date(1795251600000)/" (PowerShell 5.1)
      "computer_name": "HV-RELAY-01",
      "powershell": {"edition": "Desktop", "version": "5.1.17763.6189"},
      "sources": {                            # each source's output, exactly as ConvertTo-Json emits it:
        "Get-VMHost": {...},                  #   one object, or
        "Get-VMSwitch": [{...}, {...}],       #   an array, or
        "Get-NetLbfoTeam": null,              #   nothing (no objects), or PS 5.1's
        "Get-VM": {"value": [...], "Count": 8}  # wrapped array
      },
      "errors": {"Get-NetAdapterSriovVf": "message"}   # sources that failed, with their error text
    }

Source names are those of `normalize.SOURCES` (Get-VMNetworkAdapter is collected with -All; Get-ComputerInfo
only with HyperVisorPresent and HyperVRequirement*). Enum values may be numbers (5.1) or names (7 with
-EnumsAsStrings); the normaliser accepts both. A source name iovkit does not know is an error: it means the
bundle was not written by a collector this iovkit understands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iovkit.errors import InputError
from iovkit.snapshot import HostSnapshot
from iovkit.sources.guest.windows import GUEST_SOURCES
from iovkit.sources.hyperv.normalize import SOURCES, RawHost, build_snapshot
from iovkit.sources.windows import as_datetime

BUNDLE_FORMAT = "iovkit-hyperv-bundle"
FORMAT_VERSION = 1


def _records(value: Any, origin: str, cmdlet: str) -> list[dict[str, Any]]:
    """ConvertTo-Json's shapes of a pipeline's output: null, one object, an array, or 5.1's {value, Count}."""
    if value is None:
        return []
    if isinstance(value, dict) and set(value) == {"value", "Count"} and isinstance(value["value"], list):
        value = value["value"]
    items = value if isinstance(value, list) else [value]
    out: list[dict[str, Any]] = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise InputError(f"expected objects, got {json.dumps(item)[:40]}", path=origin, field=f"sources.{cmdlet}")
        out.append(item)
    return out


def raw_from_bundle(data: dict[str, Any], origin: str) -> RawHost:
    """Check the envelope and hand each known source's records to the normaliser."""
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise InputError(f"not a collector bundle (format is not {BUNDLE_FORMAT!r})", path=origin, field="format")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(
            f"format_version {version!r} is not supported (this iovkit reads {FORMAT_VERSION})",
            path=origin,
            field="format_version",
        )
    sources = data.get("sources")
    if not isinstance(sources, dict):
        raise InputError("missing or not an object", path=origin, field="sources")
    errors = data.get("errors") or {}
    if not isinstance(errors, dict):
        raise InputError("must be an object of source name -> error text", path=origin, field="errors")
    known = {s.lower(): s for s in (*SOURCES, *GUEST_SOURCES)}
    for name in list(sources) + list(errors):
        if name.lower() not in known:
            raise InputError(
                f"unknown cmdlet name {name!r} (known: {', '.join((*SOURCES, *GUEST_SOURCES))})",
                path=origin,
                field="sources",
            )
    ps = data.get("powershell") or {}
    ps_version = ps.get("version") if isinstance(ps, dict) else None
    raw = RawHost(
        kind="hyperv-bundle",
        origin=origin,
        computer_name=data.get("computer_name") or None,
        collected_at=as_datetime(data.get("collected_at")),
        powershell_version=str(ps_version) if ps_version else None,
        collector_version=str(data["collector_version"]) if data.get("collector_version") else None,
    )
    for name, value in sources.items():
        for rec in _records(value, origin, name):
            raw.add(known[name.lower()], rec)
    for name, message in errors.items():
        raw.errors.append((known[name.lower()], " ".join(str(message).split())))
    return raw


def snapshot_from_bundle(data: dict[str, Any], origin: str) -> HostSnapshot:
    """A decoded bundle -> snapshot."""
    return build_snapshot(raw_from_bundle(data, origin))


def snapshot_from_output(text: str, origin: str) -> HostSnapshot:
    """The snapshot from what the collector printed on a remote run (WinRM, an Ansible script task): a profile
    banner or warnings may come before the JSON bundle."""
    start = text.find("{")
    if start < 0:
        raise InputError("the collector printed no bundle", path=origin)
    try:
        data = json.loads(text[start:])
    except json.JSONDecodeError as err:
        raise InputError(
            f"the collector's output is not valid JSON: {err.msg} at line {err.lineno}", path=origin
        ) from err
    if not isinstance(data, dict):
        raise InputError("the collector's output is not a bundle (a JSON object)", path=origin)
    return snapshot_from_bundle(data, origin)


def snapshot_from_bundle_file(path: Path) -> HostSnapshot:
    """Read a bundle file (the collector writes UTF-8, 5.1 with a BOM; `>` in 5.1 writes UTF-16)."""
    from iovkit.sources.windows import read_json

    return snapshot_from_bundle(read_json(path), str(path))
