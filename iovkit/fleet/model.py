"""The fleet result: one JSON-serialisable record of a fleet run, read back by `iovkit report`.

Why a versioned model: the table is one view of it; `iovkit report` renders the same file later, elsewhere.
A host that could not be reached or collected is a row with its error, never a missing row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iovkit.errors import ExitCode, InputError
from iovkit.fileio import validation_line

FLEET_SCHEMA = "iovkit.fleet/1"

Command = Literal["collect", "check", "doctor", "plan"]
HostStatus = Literal["ok", "unreachable", "failed"]
FleetStatus = Literal["pass", "warn", "fail", "unknown", "not-applicable"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopFinding(_Model):
    id: str
    status: str
    message: str
    fix: str | None = None


class FleetHost(_Model):
    """One inventory host: how collection went, and what was judged on its snapshot."""

    name: str
    groups: list[str] = Field(default_factory=list, description="Inventory groups (not all/ungrouped)")
    status: HostStatus = Field(
        description="ok: collected; unreachable: Ansible could not connect; failed: it "
        "connected but collection (or reading the capture) failed"
    )
    error: str | None = None
    method: str | None = Field(None, description="How it was collected: module, capture, tree or script (WinRM)")
    host_name: str | None = Field(None, description="The name the host reported")
    platform: str | None = None
    verdict: str | None = Field(
        None,
        description="check/doctor: ready, partial, not-ready (doctor: bottleneck too); plan: planned, "
        "nothing-to-do, blocked; collect: collected; unreachable/failed hosts: unreachable or failed",
    )
    headline: str | None = None
    top: TopFinding | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="Findings by status")
    vfs_total: int | None = Field(None, description="VFs the SR-IOV NICs offer (None: not collected)")
    vfs_used: int | None = Field(None, description="VFs allocated to VMs (None: not collected)")
    vfs_free: int | None = Field(None, description="vfs_total - vfs_used (None when either is unknown)")
    files: list[str] = Field(default_factory=list, description="Per-host result files written")


class FleetFinding(_Model):
    """One fleet rule's result for one inventory group."""

    id: str
    title: str
    status: FleetStatus
    group: str
    hosts: list[str] = Field(default_factory=list, description="The hosts this finding is about")
    message: str
    fix: str | None = None
    missing: list[str] = Field(default_factory=list, description="Facts not collected, with the command for them")
    evidence: dict[str, Any] = Field(default_factory=dict)
    doc: str | None = None


class FleetResult(_Model):
    schema_: str = Field(FLEET_SCHEMA, alias="schema")
    tool_version: str
    command: Command
    inventory: str
    limit: str | None = None
    started: datetime
    finished: datetime | None = None
    hosts: list[FleetHost] = Field(default_factory=list)
    findings: list[FleetFinding] = Field(default_factory=list, description="Fleet rules (check and doctor)")
    verdict: str = Field("ready", description="The worst host verdict (unreachable/failed count as worst)")
    exit_code: int = 0

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


VERDICT_RANK: dict[str, int] = {
    "ready": 0,
    "collected": 0,
    "nothing-to-do": 0,
    "planned": 0,
    "partial": 1,
    "unknown": 1,  # check/doctor: facts missing from the input (a finding, exit 1; not a failed host)
    "bottleneck": 2,
    "not-ready": 3,
    "blocked": 3,
    "failed": 4,
    "unreachable": 5,
}


def worst_verdict(result: FleetResult) -> str:
    """The worst verdict of any host (a fleet rule that fails makes a ready fleet `partial`)."""
    verdicts = [h.verdict or "failed" for h in result.hosts]
    worst = max(verdicts, key=lambda v: VERDICT_RANK.get(v, 4), default="ready")
    if VERDICT_RANK.get(worst, 4) == 0 and any(f.status == "fail" for f in result.findings):
        return "partial"
    return worst


def exit_code_for(verdict: str) -> int:
    """3 when a host could not be reached or collected, 1 for findings, 0 when every host is fine."""
    rank = VERDICT_RANK.get(verdict, 4)
    if rank >= 4:
        return int(ExitCode.UNREACHABLE)
    return int(ExitCode.FINDINGS if rank > 0 else ExitCode.OK)


def load_fleet_result(path: Path) -> FleetResult:
    """Read a fleet.json; a defect is one line naming the file and the field."""
    from iovkit.fileio import read_json

    data = read_json(path)
    if not isinstance(data, dict) or data.get("schema") != FLEET_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"not an iovkit fleet result (schema {found!r}, expected {FLEET_SCHEMA!r})", path=str(path))
    try:
        return FleetResult.model_validate(data)
    except ValidationError as err:
        loc, msg = validation_line(err)
        raise InputError(msg, path=str(path), field=loc) from err


def finding_text(message: str, missing: Sequence[str] | None) -> str:
    """A fleet finding and, when it could not see everything, each missing fact with the command that collects it
    (each entry says "not collected" itself)."""
    return message + (" — " + "; ".join(missing) if missing else "")
