"""Render typed steps as PowerShell (Hyper-V) or shell (Linux): per phase for executors, whole scripts for review.

Every name is quoted: PowerShell single quotes with the quote doubled inside (PowerShell also treats the
typographic quotes U+2018..U+201B as single quotes, so those are doubled too); shell via shlex.quote.
Each phase snippet throws (PowerShell) or exits non-zero (shell) when it fails, so an executor only has to
look at the exit status. Undo snippets are guarded so that running them twice is harmless.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Literal

from iovkit.errors import InputError
from iovkit.plan.model import (
    AttachHostdevStep,
    ConnectStep,
    CreateSwitchStep,
    DisconnectStep,
    EnableSriovStep,
    Plan,
    RecordStep,
    RemoveSwitchStep,
    SetIovStep,
    SetNumVfsStep,
    Step,
    SwitchSpec,
    VerifyVfStep,
    VfSettingsStep,
    load_plan,
    step_title,
)
from iovkit.quoting import ps_quote

Phase = Literal["action", "verify", "undo"]

psq = ps_quote


def psbool(value: bool) -> str:
    return "$true" if value else "$false"


def _adapter(vm: str, adapter: str) -> str:
    return f"-VMName {psq(vm)} -Name {psq(adapter)}"


def _new_switch(spec: SwitchSpec) -> str:
    nics = ", ".join(psq(n) for n in spec.nics)
    by = "-NetAdapterInterfaceDescription" if spec.by_description else "-NetAdapterName"
    cmd = (
        f"New-VMSwitch -Name {psq(spec.name)} {by} {nics} -EnableIov {psbool(spec.iov)} "
        f"-AllowManagementOS {psbool(spec.allow_management_os)}"
    )
    if spec.embedded_teaming:
        cmd += " -EnableEmbeddedTeaming $true"
    return cmd + " | Out-Null"


def _fail(msg: str) -> str:
    return f"throw {psq(msg)}"


def ps_phase(step: Step, phase: Phase) -> str:
    """The PowerShell for one phase of one step (no prelude)."""
    none = "# nothing to undo"
    match step:
        case RecordStep():
            if phase == "action":
                return (
                    "Get-VMNetworkAdapter -VMName * | Select-Object -Property @('VMName', 'Name', "
                    "'SwitchName', 'Connected', 'IovWeight', 'IovQueuePairsRequested') | ConvertTo-Json -Depth 2"
                )
            if phase == "verify":
                return "$null = Get-VMNetworkAdapter -VMName * -ErrorAction Stop"
            return none
        case EnableSriovStep(nic=nic, num_vfs=num, was_enabled=was, old_num_vfs=old):
            if phase == "action":
                lines = [f"Enable-NetAdapterSriov -Name {psq(nic)}"]
                if num:
                    lines.append(f"Set-NetAdapterSriov -Name {psq(nic)} -NumVFs {num}")
                return "\n".join(lines)
            if phase == "verify":
                cond = "-not $s.Enabled" + (f" -or $s.NumVFs -lt {num}" if num else "")
                return (
                    f"$s = Get-NetAdapterSriov -Name {psq(nic)}\n"
                    f"if ({cond}) {{ {_fail(f'SR-IOV is not enabled on {nic}')} }}"
                )
            lines = []
            if old is not None and num and old != num:
                lines.append(f"Set-NetAdapterSriov -Name {psq(nic)} -NumVFs {old}")
            if not was:
                lines.append(f"Disable-NetAdapterSriov -Name {psq(nic)}")
            return "\n".join(lines) or none
        case DisconnectStep(vm=vm, adapter=ad, switch=sw):
            get = f"$a = Get-VMNetworkAdapter {_adapter(vm, ad)}"
            if phase == "action":
                return f"Disconnect-VMNetworkAdapter {_adapter(vm, ad)}"
            if phase == "verify":
                return f"{get}\nif ($null -eq $a -or $a.SwitchName) {{ {_fail(f'{vm}/{ad} is still connected')} }}"
            return (
                f"{get}\nif ($a.SwitchName -ne {psq(sw)}) "
                f"{{ Connect-VMNetworkAdapter {_adapter(vm, ad)} -SwitchName {psq(sw)} }}"
            )
        case RemoveSwitchStep(switch=spec):
            exists = f"Get-VMSwitch -Name {psq(spec.name)} -ErrorAction SilentlyContinue"
            if phase == "action":
                return f"Remove-VMSwitch -Name {psq(spec.name)} -Force"
            if phase == "verify":
                return f"if ({exists}) {{ {_fail(f'switch {spec.name} still exists')} }}"
            return f"if (-not ({exists})) {{ {_new_switch(spec)} }}"
        case CreateSwitchStep(switch=spec):
            if phase == "action":
                return _new_switch(spec)
            if phase == "verify":
                cond = "$null -eq $s"
                if spec.iov:
                    cond += " -or -not $s.IovEnabled -or -not $s.IovSupport -or $s.IovVirtualFunctionCount -lt 1"
                msg = f"switch {spec.name} is not an IOV switch: "
                return (
                    f"$s = Get-VMSwitch -Name {psq(spec.name)} -ErrorAction SilentlyContinue\n"
                    f"if ({cond}) {{ throw ({psq(msg)} + ($s.IovSupportReasons -join '; ')) }}"
                )
            return (
                f"$s = Get-VMSwitch -Name {psq(spec.name)} -ErrorAction SilentlyContinue\n"
                f"if ($s -and $s.IovEnabled -eq {psbool(spec.iov)}) {{\n"
                f"    Get-VMNetworkAdapter -VMName * | Where-Object SwitchName -eq {psq(spec.name)} | "
                "Disconnect-VMNetworkAdapter\n"
                f"    Remove-VMSwitch -Name {psq(spec.name)} -Force\n}}"
            )
        case ConnectStep(vm=vm, adapter=ad, switch=sw):
            get = f"$a = Get-VMNetworkAdapter {_adapter(vm, ad)}"
            if phase == "action":
                return f"Connect-VMNetworkAdapter {_adapter(vm, ad)} -SwitchName {psq(sw)}"
            if phase == "verify":
                return f"{get}\nif ($a.SwitchName -ne {psq(sw)}) {{ {_fail(f'{vm}/{ad} is not on {sw}')} }}"
            return f"{get}\nif ($a.SwitchName -eq {psq(sw)}) {{ Disconnect-VMNetworkAdapter {_adapter(vm, ad)} }}"
        case SetIovStep(vm=vm, adapter=ad, iov_weight=w, queue_pairs=qp, old_iov_weight=ow, old_queue_pairs=oq):
            if phase == "action":
                return f"Set-VMNetworkAdapter {_adapter(vm, ad)} -IovWeight {w} -IovQueuePairsRequested {qp}"
            if phase == "verify":
                return (
                    f"$a = Get-VMNetworkAdapter {_adapter(vm, ad)}\n"
                    f"if ($a.IovWeight -ne {w} -or $a.IovQueuePairsRequested -ne {qp}) "
                    f"{{ {_fail(f'{vm}/{ad} IovWeight is not {w}')} }}"
                )
            return f"Set-VMNetworkAdapter {_adapter(vm, ad)} -IovWeight {ow} -IovQueuePairsRequested {oq}"
        case VerifyVfStep(vm=vm, adapter=ad, switch=sw):
            if phase == "action":
                return "# nothing to change: this step only verifies"
            if phase == "verify":
                return (
                    f"$a = Get-VMNetworkAdapter {_adapter(vm, ad)}\n"
                    f"if (-not $a.VFDataPathActive) {{ {_fail(f'{vm}/{ad}: VFDataPathActive is False')} }}\n"
                    f"$d = (Get-VMSwitch -Name {psq(sw)}).NetAdapterInterfaceDescriptions\n"
                    f"$vf = Get-NetAdapterSriovVf -InterfaceDescription $d | Where-Object VmFriendlyName -eq "
                    f"{psq(vm)}\n"
                    f"if (-not $vf) {{ {_fail(f'Get-NetAdapterSriovVf lists no VF for {vm}')} }}"
                )
            return none
    raise InputError(f"step {step.id} ({step.kind}) is not a Hyper-V step")


def _shmsg(text: str) -> str:
    return shlex.quote(text)


def _sysfs(root: str, pf: str, name: str) -> str:
    return shlex.quote(f"{root.rstrip('/')}/sys/class/net/{pf}/device/{name}")


def _numvfs(root: str, pf: str, n: int) -> str:
    f = _sysfs(root, pf, "sriov_numvfs")
    return (
        f"cur=$(cat {f})\n"
        f'if [ "$cur" != {n} ]; then\n'
        f'  if [ "$cur" != 0 ]; then echo 0 > {f}; fi\n'
        f"  echo {n} > {f}\n"
        f'  echo "sriov_numvfs "{shlex.quote(pf)}": $cur -> 0 -> {n}"\n'
        "fi"
    )


_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def _hostdev_xml(root: str, pf: str, vf: int, mac: str) -> str:
    if not _MAC.match(mac):
        raise InputError(f"MAC {mac!r} of the VF for {pf} vf {vf} is not aa:bb:cc:dd:ee:ff")
    link = _sysfs(root, pf, f"virtfn{vf}")
    return (
        f'pci=$(basename "$(readlink -f {link})")\n'
        "IFS=':.' read -r d b s f <<< \"$pci\"\n"
        "xml=$(mktemp)\n"
        'cat > "$xml" <<EOF\n'
        "<interface type='hostdev' managed='yes'>\n"
        "  <source><address type='pci' domain='0x$d' bus='0x$b' slot='0x$s' function='0x$f'/></source>\n"
        f"  <mac address='{mac}'/>\n"
        "</interface>\n"
        "EOF"
    )


def sh_phase(step: Step, phase: Phase, root: str = "") -> str:
    """The shell for one phase of one Linux step; `root` prefixes sysfs paths (a test tree)."""
    match step:
        case SetNumVfsStep(pf=pf, num_vfs=n, old_num_vfs=old):
            if phase == "action":
                return _numvfs(root, pf, n)
            if phase == "verify":
                f = _sysfs(root, pf, "sriov_numvfs")
                return f'[ "$(cat {f})" = {n} ] || {{ echo {_shmsg(f"sriov_numvfs of {pf} is not {n}")} >&2; exit 1; }}'
            return _numvfs(root, pf, old)
        case VfSettingsStep(pf=pf, vf=vf, mac=mac, vlan=vlan, spoofchk=sc, trust=tr, state=st):
            base = f"ip link set dev {shlex.quote(pf)} vf {vf}"
            if phase == "action":
                parts = [base]
                if mac:
                    parts.append(f"mac {shlex.quote(mac)}")
                if vlan is not None:
                    parts.append(f"vlan {vlan}")
                parts.append(f"spoofchk {'on' if sc else 'off'} trust {'on' if tr else 'off'} state {st}")
                return " ".join(parts)
            if phase == "verify":
                want = f"vf {vf} .*{mac}" if mac else f"vf {vf} "
                return (
                    f"ip link show dev {shlex.quote(pf)} | grep -qi -- {shlex.quote(want)} || "
                    f"{{ echo {_shmsg(f'vf {vf} of {pf} is not set')} >&2; exit 1; }}"
                )
            return f"{base} mac 00:00:00:00:00:00 vlan 0 spoofchk on trust off state auto || true"
        case AttachHostdevStep(domain=dom, pf=pf, vf=vf, mac=mac):
            has = f"virsh domiflist {shlex.quote(dom)} | grep -qi -- {shlex.quote(mac)}"
            if phase == "action":
                return (
                    _hostdev_xml(root, pf, vf, mac)
                    + f'\nvirsh attach-device {shlex.quote(dom)} "$xml" --config {_live(dom)}\nrm -f "$xml"'
                )
            if phase == "verify":
                return f"{has} || {{ echo {_shmsg(f'no hostdev interface with {mac} in {dom}')} >&2; exit 1; }}"
            return (
                f"if {has}; then virsh detach-interface {shlex.quote(dom)} hostdev --mac {shlex.quote(mac)} "
                f"--config {_live(dom)}; fi"
            )
    raise InputError(f"step {step.id} ({step.kind}) is not a Linux step")


def _live(dom: str) -> str:
    """`--live` only for a running domain: virsh refuses it on a shut-off one (--config alone then suffices)."""
    return f"$(virsh domstate {shlex.quote(dom)} 2>/dev/null | grep -qx running && echo --live)"


def _comment_lines(prefix: str, text: str) -> list[str]:
    return [f"{prefix} {line}" for line in text.splitlines()]


def render_powershell(plan: Plan) -> tuple[str, str]:
    """(apply.ps1, rollback.ps1) for change review; they do what `iovkit apply` would, step by step."""
    head = [
        f"# iovkit plan {plan.plan_id} for host {plan.host}: SR-IOV switch-over",
        "# Review every step. Run on the host console as Administrator; rollback.ps1 undoes it.",
        *[f"# WARNING: {w}" for w in plan.warnings],
        "#Requires -RunAsAdministrator",
        "$ErrorActionPreference = 'Stop'",
    ]
    host_check = (
        f"if ($env:COMPUTERNAME -ne {psq(plan.host or '')}) {{ throw {psq(f'this script is for host {plan.host}')} }}"
    )
    body = [
        *head,
        host_check,
        'trap { Write-Error "step failed: $_ ; run rollback.ps1 beside this script"; break }',
        "",
    ]
    for step in plan.steps:
        body.append(f"# --- Step {step.id}: {step_title(step)}")
        body.extend(_comment_lines("# Precondition:", step.precondition))
        body.append(f"Write-Host {psq(f'Step {step.id}: {step_title(step)}')}")
        body.append(ps_phase(step, "action"))
        body.append(f"# Verify: {step.verification}")
        body.append(ps_phase(step, "verify"))
        body.append("")
    rb = [
        f"# iovkit rollback for plan {plan.plan_id} on host {plan.host}: undoes every step, last first.",
        "# Each undo checks the current state first, so running this twice is harmless.",
        "#Requires -RunAsAdministrator",
        "$ErrorActionPreference = 'Stop'",
        host_check,
        "",
    ]
    for step in reversed(plan.steps):
        undo = ps_phase(step, "undo")
        if undo.startswith("# nothing"):
            continue
        rb.append(f"# --- Undo step {step.id}: {step_title(step)}")
        rb.append("try {")
        rb.extend(f"    {line}" for line in undo.splitlines())
        rb.append(f"}} catch {{ Write-Warning ({psq(f'undo of step {step.id} failed: ')} + $_) }}")
        rb.append("")
    return "\n".join(body) + "\n", "\n".join(rb) + "\n"


def render_shell(plan: Plan, root: str = "") -> tuple[str, str]:
    """(apply.sh, rollback.sh) for a Linux plan."""
    head = [
        "#!/bin/bash",
        f"# iovkit plan {plan.plan_id} for host {plan.host}: SR-IOV VFs for libvirt domains",
        *[f"# WARNING: {w}" for w in plan.warnings],
        "set -euo pipefail",
        "",
    ]
    body = list(head)
    for step in plan.steps:
        body.append(f"# --- Step {step.id}: {step_title(step)}")
        body.extend(_comment_lines("# Precondition:", step.precondition))
        body.append(f"echo {shlex.quote(f'Step {step.id}: {step_title(step)}')}")
        body.append(sh_phase(step, "action", root))
        body.append(sh_phase(step, "verify", root))
        body.append("")
    rb = ["#!/bin/bash", f"# iovkit rollback for plan {plan.plan_id} on host {plan.host}", "set -uo pipefail", ""]
    for step in reversed(plan.steps):
        if sh_phase(step, "undo", root).startswith("# nothing"):
            continue
        rb.append(f"# --- Undo step {step.id}: {step_title(step)}")
        rb.append("(")
        rb.extend(f"  {line}" for line in sh_phase(step, "undo", root).splitlines())
        rb.append(f") || echo {shlex.quote(f'undo of step {step.id} failed')} >&2")
        rb.append("")
    return "\n".join(body) + "\n", "\n".join(rb) + "\n"


SEPARATOR = "# ======================== rollback script ========================"


def render_plan_scripts(plan_path: Path, output_dir: Path | None) -> None:
    """`iovkit script plan`: print the script then its rollback, or write both into output_dir."""
    plan = load_plan(plan_path)
    if plan.platform == "hyperv":
        (apply_text, rollback_text), ext = render_powershell(plan), "ps1"
    elif plan.platform == "esxi":
        from iovkit.plan.render_esxi import render_esxi

        (apply_text, rollback_text), ext = render_esxi(plan), "txt"
    else:
        (apply_text, rollback_text), ext = render_shell(plan), "sh"
    if output_dir is None:
        print(apply_text, end="")
        print(SEPARATOR)
        print(rollback_text, end="")
        return
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / f"apply.{ext}").write_text(apply_text, encoding="utf-8")
        (output_dir / f"rollback.{ext}").write_text(rollback_text, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write: {err.strerror}", path=str(output_dir)) from err
