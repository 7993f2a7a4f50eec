"""ESXi steps as text: the exact call each phase makes (journaled by apply) and a review script.

Host steps have ESXi shell equivalents (esxcli, vim-cmd), printed as such; the VM reconfiguration is a vSphere API
call (ReconfigVM_Task) with no esxcli form, so the review script names the call and its spec, and what to click
in the Host Client when doing it by hand. Undo texts are guarded: they look before they change.
"""

from __future__ import annotations

from iovkit.errors import InputError
from iovkit.plan.model import (
    EsxAddSriovStep,
    EsxDisconnectStep,
    EsxEnableVfsStep,
    EsxMaintenanceStep,
    EsxMemoryStep,
    EsxPowerStep,
    EsxRebootStep,
    EsxVerifyVfStep,
    Plan,
    Step,
    step_title,
)

REBOOT_REASON = "iovkit: activate SR-IOV VFs"


def _q(text: str) -> str:
    """Always single-quoted (the option string is one word for esxcli even when it has no spaces)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _vmid(vm: str) -> str:
    """The vim-cmd VM id lookup, by exact display name."""
    return f"$(vim-cmd vmsvc/getallvms | awk -v n={_q(vm)} '$2 == n {{print $1}}')"


def _sriov_config(pci: str, enabled: bool, num: int) -> str:
    return (
        f"UpdatePassthruConfig([vim.host.SriovConfig(id={pci!r}, sriovEnabled={enabled}, "
        f"numVirtualFunction={num}, passthruEnabled=False)])"
    )


def esx_phase(step: Step, phase: str) -> str:
    """The text of one phase of one ESXi step."""
    none = "# nothing to undo"
    match step:
        case EsxEnableVfsStep(method="api", pcis=pcis, num_vfs=num, old_num_vfs=old, old_enabled=was):
            if phase == "action":
                return "; ".join(_sriov_config(p, True, n) for p, n in zip(pcis, num, strict=True))
            if phase == "verify":
                return "; ".join(
                    f"pciPassthruInfo[{p}].sriovEnabled and numVirtualFunctionRequested == {n}"
                    for p, n in zip(pcis, num, strict=True)
                )
            return (
                "; ".join(
                    _sriov_config(p, bool(w), o) for p, o, w in zip(pcis, old, was or [False] * len(pcis), strict=True)
                )
                + "; reboot in maintenance mode if the running VFs differ"
            )
        case EsxEnableVfsStep(method="module", driver=d, options=opts, old_options=old_opts):
            if phase == "action":
                return f"esxcli system module parameters set -m {d} -p {_q(opts or '')}"
            if phase == "verify":
                return f"esxcfg-module -g {d}   # options = {opts!r}"
            return (
                f"esxcli system module parameters set -m {d} -p {_q(old_opts or '')}"
                "   # then, in maintenance mode, reboot if the running VFs differ"
            )
        case EsxMaintenanceStep(enter=enter):
            on = f"esxcli system maintenanceMode set --enable {'true' if enter else 'false'}"
            back = f"esxcli system maintenanceMode set --enable {'false' if enter else 'true'}"
            if phase == "action":
                return on
            if phase == "verify":
                return f"esxcli system maintenanceMode get   # {'Enabled' if enter else 'Disabled'}"
            return back
        case EsxRebootStep(expect=exp):
            if phase == "action":
                return (
                    f"esxcli system shutdown reboot --reason {_q(REBOOT_REASON)}   # refused outside maintenance mode"
                )
            if phase == "verify":
                return "; ".join(f"esxcli network sriovnic vf list -n {n}   # {v}+ VFs" for n, v in exp.items()) or (
                    "esxcli system version get"
                )
            return none
        case EsxPowerStep(vm=vm, on=on):
            act = f"vim-cmd vmsvc/power.{'on' if on else 'shutdown'} {_vmid(vm)}"
            if phase == "action":
                return act
            if phase == "verify":
                return f"vim-cmd vmsvc/power.getstate {_vmid(vm)}   # Powered {'on' if on else 'off'}"
            return f"vim-cmd vmsvc/power.{'off' if on else 'on'} {_vmid(vm)}"
        case EsxMemoryStep(vm=vm, memory_mb=mb, old_reservation_mb=old, old_locked=lk):
            if phase == "action":
                return (
                    f"ReconfigVM_Task({vm!r}, spec=vim.vm.ConfigSpec(memoryReservationLockedToMax=True, "
                    f"memoryAllocation=vim.ResourceAllocationInfo(reservation={mb})))"
                )
            if phase == "verify":
                return f"config.memoryAllocation.reservation == {mb} and config.memoryReservationLockedToMax"
            return (
                f"ReconfigVM_Task({vm!r}, spec=vim.vm.ConfigSpec(memoryReservationLockedToMax={lk}, "
                f"memoryAllocation=vim.ResourceAllocationInfo(reservation={old})))"
            )
        case EsxDisconnectStep(vm=vm, adapter=a):
            if phase == "action":
                return f"ReconfigVM_Task({vm!r}, edit {a!r}: connectable.startConnected=False, connected=False)"
            if phase == "verify":
                return f"{vm}/{a} connectable.startConnected is False"
            return f"ReconfigVM_Task({vm!r}, edit {a!r}: connectable.startConnected=True)"
        case EsxAddSriovStep(vm=vm, pf=pf, network=net, existing=n):
            if phase == "action":
                return (
                    f"ReconfigVM_Task({vm!r}, add vim.vm.device.VirtualSriovEthernetCard(sriovBacking="
                    f"physicalFunctionBacking.id={pf!r}, backing=network {net!r}, allowGuestOSMtuChange=False))"
                )
            if phase == "verify":
                return f"{vm} has {n + 1} VirtualSriovEthernetCard(s) on {pf}"
            return f"ReconfigVM_Task({vm!r}, remove the VirtualSriovEthernetCard(s) on {pf} past the first {n})"
        case EsxVerifyVfStep(vm=vm, pf_nic=nic):
            if phase == "action":
                return "# nothing to change: this step only verifies"
            if phase == "verify":
                return f"esxcli network sriovnic vf list -n {nic}   # an active VF owned by {vm}"
            return none
    raise InputError(f"step {step.id} ({step.kind}) is not an ESXi step")


def render_esxi(plan: Plan) -> tuple[str, str]:
    """(apply.txt, rollback.txt) for change review: the ESXi shell lines, and the API calls where there are none."""
    head = [
        f"# iovkit plan {plan.plan_id} for ESXi host {plan.host}: SR-IOV VFs for VMs",
        "# Run with `iovkit apply PLAN --executor vsphere` (journaled, rolled back on failure). By hand: the esxcli/",
        "# vim-cmd lines run in the ESXi shell; ReconfigVM_Task lines are Host Client edits (Edit settings).",
        *[f"# WARNING: {w}" for w in plan.warnings],
        "",
    ]
    body = list(head)
    for s in plan.steps:
        body.append(f"# --- Step {s.id}: {step_title(s)}")
        if s.precondition:
            body.append(f"# Precondition: {s.precondition}")
        body.append(esx_phase(s, "action"))
        body.append(f"# Verify: {esx_phase(s, 'verify')}")
        body.append("")
    rb = [f"# iovkit rollback for plan {plan.plan_id} on {plan.host}: undo every step, last first.", ""]
    for s in reversed(plan.steps):
        undo = esx_phase(s, "undo")
        if undo.startswith("# nothing"):
            continue
        rb.append(f"# --- Undo step {s.id}: {step_title(s)}")
        rb.append(undo)
        rb.append("")
    return "\n".join(body) + "\n", "\n".join(rb) + "\n"
