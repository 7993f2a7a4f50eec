"""The plan: VF allocation, what does not fit, warnings, and an ordered runbook of typed steps.

A step is data (kind + names + the values it changes and the values it restores). Rendering (PowerShell,
shell), executing (local, WinRM, shell, simulator) and undoing all read the same step, so the reviewed
script and what `apply` runs cannot drift apart. Every undo is idempotent: rollback may run twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iovkit.errors import InputError
from iovkit.fileio import read_json, validation_line
from iovkit.snapshot import HostSnapshot, Platform

PLAN_FORMAT = "iovkit-plan"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SwitchSpec(_Model):
    """The settings of a Hyper-V external switch that a rebuild must keep (or restore on undo)."""

    name: str
    nics: list[str] = Field(description="NetAdapterName of every bound NIC (SET members in order)")
    by_description: bool = Field(
        False, description="nics are interface descriptions (the input named no NIC): -NetAdapterInterfaceDescription"
    )
    iov: bool
    allow_management_os: bool = False
    embedded_teaming: bool = False


class _Step(_Model):
    id: int = 0
    precondition: str = ""
    verification: str = ""


class RecordStep(_Step):
    """Record every VM adapter's switch and IOV settings before anything changes."""

    kind: Literal["record"] = "record"


class EnableSriovStep(_Step):
    kind: Literal["enable-sriov"] = "enable-sriov"
    nic: str
    num_vfs: int | None = None
    was_enabled: bool = False
    old_num_vfs: int | None = None


class DisconnectStep(_Step):
    kind: Literal["disconnect"] = "disconnect"
    vm: str
    adapter: str
    switch: str = Field(description="The switch it was on (undo reconnects it there)")


class RemoveSwitchStep(_Step):
    kind: Literal["remove-switch"] = "remove-switch"
    switch: SwitchSpec = Field(description="The switch as it was (undo recreates it)")


class CreateSwitchStep(_Step):
    kind: Literal["create-switch"] = "create-switch"
    switch: SwitchSpec


class ConnectStep(_Step):
    kind: Literal["connect"] = "connect"
    vm: str
    adapter: str
    switch: str


class SetIovStep(_Step):
    kind: Literal["set-iov"] = "set-iov"
    vm: str
    adapter: str
    iov_weight: int
    queue_pairs: int
    old_iov_weight: int
    old_queue_pairs: int


class VerifyVfStep(_Step):
    kind: Literal["verify-vf"] = "verify-vf"
    vm: str
    adapter: str
    switch: str


class SetNumVfsStep(_Step):
    """Linux: sriov_numvfs goes through 0 whenever it changes (the kernel refuses N -> M)."""

    kind: Literal["set-numvfs"] = "set-numvfs"
    pf: str
    num_vfs: int
    old_num_vfs: int


class VfSettingsStep(_Step):
    kind: Literal["vf-settings"] = "vf-settings"
    pf: str
    vf: int
    mac: str | None = None
    vlan: int | None = None
    spoofchk: bool = True
    trust: bool = False
    state: Literal["auto", "enable", "disable"] = "auto"


class AttachHostdevStep(_Step):
    """Linux/libvirt: give a VF to a domain as <interface type='hostdev'> (live and persistent)."""

    kind: Literal["attach-hostdev"] = "attach-hostdev"
    domain: str
    pf: str
    vf: int
    mac: str


# -- VMware ESXi (runbook_esxi): host SR-IOV config, maintenance mode and reboot, VM reconfiguration --------


class EsxEnableVfsStep(_Step):
    """VFs on ESXi ports: the vSphere API (UpdatePassthruConfig with a SriovConfig, one port) or the driver's
    max_vfs (`esxcli system module parameters set`, the whole option string, every port of the driver)."""

    kind: Literal["esx-enable-vfs"] = "esx-enable-vfs"
    method: Literal["api", "module"]
    driver: str
    ports: list[str] = Field(description="vmnic names whose VF count changes")
    pcis: list[str] = Field(description="Their PCI ids (hex), same order")
    num_vfs: list[int]
    old_num_vfs: list[int]
    old_enabled: list[bool] = Field(default_factory=list)
    options: str | None = Field(None, description="module: the new whole option string")
    old_options: str | None = Field(None, description="module: the stored option string before ('' = none)")


class EsxMaintenanceStep(_Step):
    kind: Literal["esx-maintenance"] = "esx-maintenance"
    enter: bool
    was_in: bool = False


class EsxRebootStep(_Step):
    """The explicit, guarded reboot (maintenance mode first): it makes the requested VFs active."""

    kind: Literal["esx-reboot"] = "esx-reboot"
    host: str
    expect: dict[str, int] = Field(default_factory=dict, description="vmnic -> VFs that must be present after")


class EsxPowerStep(_Step):
    kind: Literal["esx-power"] = "esx-power"
    vm: str
    on: bool


class EsxMemoryStep(_Step):
    kind: Literal["esx-memory"] = "esx-memory"
    vm: str
    memory_mb: int
    old_reservation_mb: int
    old_locked: bool


class EsxAddSriovStep(_Step):
    kind: Literal["esx-add-sriov"] = "esx-add-sriov"
    vm: str
    pf: str = Field(description="Physical function, hex 0000:bb:dd.f")
    pf_nic: str
    network: str | None = None
    existing: int = Field(0, description="SR-IOV adapters on this PF the VM had before (undo removes the rest)")


class EsxDisconnectStep(_Step):
    """Keep the old emulated adapter but disconnected (never deleted), so rollback can reconnect it."""

    kind: Literal["esx-disconnect"] = "esx-disconnect"
    vm: str
    adapter: str
    mac: str | None = Field(None, description="Its MAC: finds the device when the name is a .vmx key (a paste)")


class EsxVerifyVfStep(_Step):
    kind: Literal["esx-verify-vf"] = "esx-verify-vf"
    vm: str
    pf_nic: str


Step = Annotated[
    RecordStep
    | EnableSriovStep
    | DisconnectStep
    | RemoveSwitchStep
    | CreateSwitchStep
    | ConnectStep
    | SetIovStep
    | VerifyVfStep
    | SetNumVfsStep
    | VfSettingsStep
    | AttachHostdevStep
    | EsxEnableVfsStep
    | EsxMaintenanceStep
    | EsxRebootStep
    | EsxPowerStep
    | EsxMemoryStep
    | EsxAddSriovStep
    | EsxDisconnectStep
    | EsxVerifyVfStep,
    Field(discriminator="kind"),
]


def step_title(step: Step) -> str:
    """One line naming what the step does, with real names."""
    match step:
        case RecordStep():
            return "record every VM adapter's switch and IOV settings"
        case EnableSriovStep(nic=nic, num_vfs=n):
            return f"enable SR-IOV on NIC {nic!r}" + (f" with {n} VFs" if n else "")
        case DisconnectStep(vm=vm, adapter=a, switch=sw):
            return f"disconnect {vm}/{a} from {sw!r}"
        case RemoveSwitchStep(switch=sw):
            return f"remove switch {sw.name!r} (IOV {sw.iov}, NICs {', '.join(sw.nics)})"
        case CreateSwitchStep(switch=sw):
            return (
                f"create switch {sw.name!r} on {', '.join(sw.nics)} with IOV {sw.iov}, "
                f"management OS {sw.allow_management_os}" + (", SET" if sw.embedded_teaming else "")
            )
        case ConnectStep(vm=vm, adapter=a, switch=sw):
            return f"connect {vm}/{a} to {sw!r}"
        case SetIovStep(vm=vm, adapter=a, iov_weight=w, queue_pairs=qp):
            return f"set {vm}/{a} IovWeight {w}, IovQueuePairsRequested {qp}"
        case VerifyVfStep(vm=vm, adapter=a):
            return f"verify {vm}/{a} has an active VF"
        case SetNumVfsStep(pf=pf, num_vfs=n, old_num_vfs=old):
            return f"set {pf} sriov_numvfs {old} -> {n}" + (" (through 0)" if old and n != old else "")
        case VfSettingsStep(pf=pf, vf=vf, mac=mac):
            return f"set {pf} vf {vf}" + (f" mac {mac}" if mac else "") + " spoofchk/trust/state"
        case AttachHostdevStep(domain=d, pf=pf, vf=vf):
            return f"attach {pf} vf {vf} to domain {d!r} as a hostdev interface"
        case EsxEnableVfsStep(method=m, driver=d, ports=ports, num_vfs=n, old_num_vfs=o):
            via = "vSphere API UpdatePassthruConfig" if m == "api" else f"{d} max_vfs (module parameters)"
            return "VFs " + ", ".join(f"{p} {a} -> {b}" for p, a, b in zip(ports, o, n, strict=True)) + f" via {via}"
        case EsxMaintenanceStep(enter=e):
            return "enter maintenance mode" if e else "exit maintenance mode"
        case EsxRebootStep(host=h, expect=exp):
            return f"reboot {h} (in maintenance mode) so the VFs become active" + (
                f": {', '.join(f'{k} {v}' for k, v in exp.items())}" if exp else ""
            )
        case EsxPowerStep(vm=vm, on=on):
            return f"power {'on' if on else 'off'} VM {vm!r}"
        case EsxMemoryStep(vm=vm, memory_mb=mb):
            return f"reserve all guest memory of {vm!r} ({mb} MB, locked)"
        case EsxAddSriovStep(vm=vm, pf_nic=nic, pf=pf, network=net):
            return f"add an SR-IOV passthrough adapter to {vm!r} on {nic} ({pf})" + (
                f", port group {net!r}" if net else ""
            )
        case EsxDisconnectStep(vm=vm, adapter=a):
            return f"disconnect {vm}/{a} (kept, not removed)"
        case EsxVerifyVfStep(vm=vm, pf_nic=nic):
            return f"verify {vm!r} owns an active VF of {nic}"
    raise AssertionError(step)  # pragma: no cover


class PortCapacity(_Model):
    nic: str
    switch: str | None = None
    vfs: int
    estimate: bool = Field(False, description="From the NIC catalog, not from the host (NumVFs unknown)")
    source: str = Field(description="NumVFs, IovVirtualFunctionCount, sriov_totalvfs or catalog:<model>")


class Allocation(_Model):
    vm: str
    adapter: str
    switch: str | None = Field(None, description="Hyper-V: the switch the adapter ends up on")
    nic: str = Field(description="Physical port whose VF it gets")
    vf: int | None = Field(None, description="Linux: the VF index")
    iov_weight: int
    queue_pairs: int
    priority: int
    vcpus: int | None = Field(None, description="The VM's vCPUs (Get-VM ProcessorCount), when known")
    queue_pairs_why: str = Field("", description="Where queue_pairs came from (policy, or min(vCPUs, NIC limit))")


class Unfit(_Model):
    vm: str
    adapter: str
    reason: str
    moved_to: str | None = Field(None, description="The second switch that takes it instead, when planned")


class Alternative(_Model):
    kind: Literal["second-switch", "vmq-vrss", "more-vfs"]
    text: str
    planned: bool = False


@dataclass
class PlanParts:
    """What each platform's planner hands to build_plan: the Plan's allocation fields, before the steps."""

    capacity: list[PortCapacity] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    unfit: list[Unfit] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)


class Plan(_Model):
    format: Literal["iovkit-plan"] = "iovkit-plan"
    version: Literal[1] = 1
    plan_id: str = ""
    created_at: datetime | None = None
    platform: Platform
    host: str | None
    fingerprint: str = Field(description="Hash of the snapshot facts the plan depends on (see iovkit.fingerprint)")
    snapshot_collected_at: datetime | None = None
    policy: dict[str, Any] = Field(default_factory=dict)
    capacity: list[PortCapacity] = Field(default_factory=list)
    allocations: list[Allocation] = Field(default_factory=list)
    unfit: list[Unfit] = Field(default_factory=list)
    alternatives: list[Alternative] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)
    requires_console: bool = Field(False, description="A rebuilt switch carries the management OS")
    reboots_host: bool = Field(False, description="ESXi: a step reboots the host (apply needs --reboot)")
    steps: list[Step] = Field(default_factory=list)
    snapshot: HostSnapshot

    def compute_id(self) -> str:
        body = json.dumps([self.fingerprint, [s.model_dump(mode="json") for s in self.steps]], sort_keys=True).encode()
        return hashlib.sha256(body).hexdigest()[:16]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def plan_from_dict(data: Any, origin: str) -> Plan:
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise InputError(f"not an iovkit plan (format: {PLAN_FORMAT})", path=origin)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as err:
        loc, msg = validation_line(err)
        raise InputError(msg, path=origin, field=loc) from err
    if plan.plan_id != plan.compute_id():
        raise InputError(
            "plan_id does not match its steps (the plan was edited after `iovkit plan`)", path=origin, field="plan_id"
        )
    return plan


def load_plan(path: Path) -> Plan:
    return plan_from_dict(read_json(path), str(path))
