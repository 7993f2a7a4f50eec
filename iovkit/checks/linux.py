"""Linux/KVM rules (reference: linux.md §1). Pure functions of the snapshot.

Inside a VM guest (LX-GUEST) the host-side rules do not apply: they report a skip that says so, and the
verdict comes from LX-GUEST and GUEST-VF.
"""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import Ev, Finding, Scope, current_rule, host_scope, not_applicable, rule, sh, skip
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot, PhysicalNic, VirtualFunction

IN_GUEST = "this machine is a VM guest (LX-GUEST): host-side SR-IOV is checked on the hypervisor host"
ZERO_MAC = "00:00:00:00:00:00"

# The exact commands that collect what a rule needs (unknown names the fact and how to get it); `iovkit collect`
# on the host reads all of them.
COLLECT_VIRT = "grep -cE 'vmx|svm' /proc/cpuinfo; ls -l /dev/kvm"
COLLECT_GUEST = "grep -c hypervisor /proc/cpuinfo; cat /sys/hypervisor/type"
COLLECT_IOMMU = "ls /sys/kernel/iommu_groups | wc -l; ls /sys/class/iommu"
COLLECT_CMDLINE = "cat /proc/cmdline"
COLLECT_VENDOR = "grep -m1 vendor_id /proc/cpuinfo"
COLLECT_TOTALVFS = "grep . /sys/class/net/*/device/sriov_totalvfs"


def _guest(snap: HostSnapshot) -> bool:
    return bool(snap.host.is_vm_guest)


def _vendor(snap: HostSnapshot) -> str | None:
    """'intel' | 'amd' | None, from the CPU vendor or the IOMMU kind."""
    v = (snap.cpu.vendor or snap.cpu.model or "").lower()
    kind = snap.iommu.kind if snap.iommu else None
    if "intel" in v or kind == "dmar":
        return "intel"
    if "amd" in v or kind == "amd-vi":
        return "amd"
    return None


def _grub(snap: HostSnapshot, args: str) -> str:
    """The command that adds kernel arguments on this distribution, then reboots."""
    os_name = (snap.host.os_caption or "").lower()
    if any(d in os_name for d in ("ubuntu", "debian", "mint", "pop!_os")):
        return (
            f"sudo sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT=\"/&{args} /' /etc/default/grub "
            "&& sudo update-grub && sudo reboot"
        )
    return f"sudo grubby --update-kernel=ALL --args={sh(args)} && sudo reboot"


def capable_nics(snap: HostSnapshot) -> list[tuple[int, PhysicalNic]]:
    return [(i, n) for i, n in enumerate(snap.nics) if (n.vfs_total or 0) > 0 or n.sriov_support == "Supported"]


def _vf_scope(v: VirtualFunction) -> Scope:
    return Scope("vf", f"{v.pf}/vf{v.index}")


def _sysfs_dev(n: PhysicalNic) -> str:
    return f"/sys/bus/pci/devices/{n.pci_address}" if n.pci_address else f"/sys/class/net/{n.name}/device"


@rule(
    "LX-VIRT",
    "Hardware virtualization (vmx/svm) and /dev/kvm",
    platform="linux",
    severity="critical",
    rationale="KVM needs VT-x/AMD-V enabled in firmware and the kvm module loaded (/dev/kvm).",
    remediation="Firmware setting (Intel VT-x or AMD SVM), or `sudo modprobe kvm_intel` / `kvm_amd`.",
    impact="Without hardware virtualization KVM does not run: there are no VMs to give VFs to.",
)
def virt(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope = current_rule(), host_scope(snap)
    if _guest(snap):
        yield not_applicable(rid, scope, IN_GUEST)
        return
    vx = snap.cpu.virtualization_extensions
    kvm = snap.iommu.kvm_device if snap.iommu else None
    ev: Ev = {"cpu.virtualization_extensions": vx, "iommu.kvm_device": kvm}
    if vx is False:
        yield Finding(
            rid,
            "fail",
            scope,
            "the CPU shows no vmx/svm flag",
            ev,
            fix="Firmware setting: enable "
            + ("Intel Virtualization Technology (VT-x)" if _vendor(snap) != "amd" else "SVM Mode (AMD-V)"),
        )
    elif kvm is False:
        mod = "kvm_amd" if _vendor(snap) == "amd" else "kvm_intel"
        yield Finding(
            rid, "fail", scope, "/dev/kvm does not exist (kvm module not loaded)", ev, fix=f"sudo modprobe {mod}"
        )
    elif kvm:
        yield Finding(rid, "pass", scope, "hardware virtualization and /dev/kvm present", ev)
    elif vx:
        yield Finding(rid, "warn", scope, "vmx/svm present; /dev/kvm not collected", ev, missing=["iommu.kvm_device"])
    else:
        yield skip(rid, scope, ["cpu.virtualization_extensions", "iommu.kvm_device"], collect=COLLECT_VIRT)


def guest_vf_active(snap: HostSnapshot) -> bool:
    """A VF is present in this guest and counted traffic (the GUEST-VF pass condition)."""
    if snap.guest is not None and snap.guest.interfaces:  # the data-path verdict, when the guest was read
        return snap.guest.on_vf()
    return any(g.is_vf and ((g.vf_rx_packets or 0) + (g.vf_tx_packets or 0)) > 0 for g in snap.guest_nics) or any(
        not g.is_vf and ((g.vf_rx_packets or 0) + (g.vf_tx_packets or 0)) > 0 and g.paired_with for g in snap.guest_nics
    )


@rule(
    "LX-GUEST",
    "Not a VM guest (host-side SR-IOV is set up on the hypervisor host)",
    platform="linux",
    severity="critical",
    rationale="SR-IOV VFs are created and assigned on the hypervisor host; inside a VM "
    "only the guest side (GUEST-VF) can be checked.",
    remediation="None here: run iovkit on the hypervisor host (or `iovkit doctor --host` for a Hyper-V host).",
    impact=("Host-side SR-IOV cannot be set up from inside a VM: the checks here say nothing about the hypervisor."),
)
def guest_host(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope, h = current_rule(), host_scope(snap), snap.host
    ev: Ev = {"host.is_vm_guest": h.is_vm_guest, "host.guest_of": h.guest_of}
    if h.is_vm_guest is None:
        yield skip(rid, scope, ["host.is_vm_guest"], collect=COLLECT_GUEST)
    elif not h.is_vm_guest:
        yield Finding(rid, "pass", scope, "bare-metal host", ev)
    elif guest_vf_active(snap):
        yield Finding(
            rid,
            "warn",
            scope,
            f"a VM guest{' on ' + h.guest_of if h.guest_of else ''}; host-side "
            "SR-IOV is set up on the host, and this guest already carries traffic on a VF (GUEST-VF)",
            ev,
        )
    else:
        on = f" on {h.guest_of}" if h.guest_of else ""
        yield Finding(
            rid,
            "fail",
            scope,
            f"this machine is itself a VM guest{on}: host-side SR-IOV cannot be set "
            "up here, and no VF carries this guest's traffic",
            ev,
            fix="iovkit doctor   # run on the hypervisor host (or from here: iovkit doctor --host <hyper-v host>)",
        )


@rule(
    "LX-IOMMU",
    "IOMMU active (groups present, DMAR/AMD-Vi)",
    platform="linux",
    severity="critical",
    rationale="VFs can be given to VMs (vfio) only through an active IOMMU.",
    remediation="Firmware setting (Intel VT-d or AMD IOMMU) and the kernel command line (GRUB), then reboot.",
    impact="Without an active IOMMU a VF cannot be assigned to a VM (vfio refuses it).",
)
def iommu(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope = current_rule(), host_scope(snap)
    if _guest(snap):
        yield not_applicable(rid, scope, IN_GUEST)
        return
    io = snap.iommu
    if io is None or io.active is None:
        yield skip(rid, scope, ["iommu.active"], collect=COLLECT_IOMMU)
        return
    ev: Ev = {"iommu.active": io.active, "iommu.kind": io.kind, "iommu.groups": io.groups}
    if io.active:
        yield Finding(rid, "pass", scope, f"IOMMU active ({io.kind or 'kind unknown'}, {io.groups} groups)", ev)
        return
    vendor = _vendor(snap)
    opts = io.cmdline_options
    if vendor == "intel" and opts.get("intel_iommu", "").split(",")[0] != "on":
        fix = _grub(snap, "intel_iommu=on iommu=pt")
    elif vendor == "amd" and opts.get("amd_iommu") == "off":
        fix = _grub(snap, "amd_iommu=on iommu=pt")
    else:
        fix = (
            "Firmware setting: enable "
            + ("Intel VT-d" if vendor != "amd" else "AMD IOMMU (AMD-Vi)")
            + " (may be labelled IOMMU / I/O Virtualization); power off fully after the change"
        )
    yield Finding(rid, "fail", scope, "IOMMU not active: no IOMMU groups", ev, fix=fix)


@rule(
    "LX-IOMMU-CMDLINE",
    "Kernel command line enables the IOMMU (intel_iommu=on; iommu=pt advised)",
    platform="linux",
    severity="medium",
    rationale="Intel IOMMU is off unless intel_iommu=on (or a kernel "
    "default); AMD-Vi is on by default. iommu=pt keeps host devices on an identity map (least overhead).",
    remediation="Kernel command line through GRUB (`intel_iommu=on iommu=pt`, or `iommu=pt` on AMD), then reboot.",
    impact=(
        "Without the kernel option the IOMMU may stay off after the next boot; without iommu=pt host devices "
        "pay for translation."
    ),
)
def iommu_cmdline(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope = current_rule(), host_scope(snap)
    if _guest(snap):
        yield not_applicable(rid, scope, IN_GUEST)
        return
    io = snap.iommu
    if io is None or io.kernel_cmdline is None:
        yield skip(rid, scope, ["iommu.kernel_cmdline"], collect=COLLECT_CMDLINE)
        return
    vendor = _vendor(snap)
    if vendor is None:
        yield skip(rid, scope, ["cpu.vendor"], collect=COLLECT_VENDOR)
        return
    opts = io.cmdline_options
    ev: Ev = {"iommu.kernel_cmdline": io.kernel_cmdline, "iommu.cmdline_options": opts, "iommu.active": io.active}
    if vendor == "intel":
        val = opts.get("intel_iommu")
        on = val is not None and val.split(",")[0] == "on"
        if val is not None and val.split(",")[0] == "off":
            yield Finding(
                rid,
                "fail",
                scope,
                "intel_iommu=off on the kernel command line",
                ev,
                fix=_grub(snap, "intel_iommu=on iommu=pt"),
            )
            return
        if not on and not io.active:
            yield Finding(
                rid,
                "fail",
                scope,
                "intel_iommu=on missing and the IOMMU is not active",
                ev,
                fix=_grub(snap, "intel_iommu=on iommu=pt"),
            )
            return
    elif opts.get("amd_iommu") == "off":
        yield Finding(
            rid, "fail", scope, "amd_iommu=off on the kernel command line", ev, fix=_grub(snap, "amd_iommu=on iommu=pt")
        )
        return
    if opts.get("iommu") != "pt":
        yield Finding(
            rid,
            "warn",
            scope,
            "IOMMU enabled; iommu=pt not set (identity map for host devices lowers host overhead)",
            ev,
            fix=_grub(snap, "iommu=pt"),
        )
        return
    yield Finding(rid, "pass", scope, "IOMMU enabled with iommu=pt", ev)


@rule(
    "LX-NIC-SRIOV",
    "A NIC with SR-IOV (sriov_totalvfs > 0)",
    platform="linux",
    severity="critical",
    rationale="VFs come from a physical function whose device offers SR-IOV.",
    remediation=(
        "Hardware or NIC firmware (`mstconfig ... set SRIOV_EN=1 NUM_OF_VFS=8` on Mellanox), and SR-IOV "
        "enabled in the BIOS."
    ),
    impact="No NIC offers VFs: every VM stays on virtio/vhost, whose work lands on host CPUs.",
)
def nic_sriov(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope = current_rule(), host_scope(snap)
    if _guest(snap):
        yield not_applicable(rid, scope, IN_GUEST)
        return
    capable = capable_nics(snap)
    for i, n in capable:
        yield Finding(
            rid,
            "pass",
            Scope("nic", n.name),
            f"{n.driver or '?'} PF with {n.vfs_total} VFs possible",
            {f"nics[{i}].vfs_total": n.vfs_total, f"nics[{i}].sriov_support": n.sriov_support},
        )
    if capable:
        return
    unknown = [
        f"nics[{i}].vfs_total" for i, n in enumerate(snap.nics) if n.vfs_total is None and n.sriov_support is None
    ]
    if unknown:
        yield skip(rid, scope, unknown, collect=COLLECT_TOTALVFS)
        return
    if not snap.nics and (snap.errors or not snap.has("nics")):
        yield skip(
            rid,
            scope,
            ["nics"],
            "no NIC listed and the collection had errors" if snap.errors else None,
            collect=COLLECT_TOTALVFS,
        )
        return
    mlx = next((n for n in snap.nics if (n.driver or "").startswith("mlx5") and n.pci_address), None)
    fix = (
        f"sudo mstconfig -d {mlx.pci_address} set SRIOV_EN=1 NUM_OF_VFS=8 && sudo reboot"
        if mlx
        else "Hardware: install an SR-IOV NIC (e.g. Intel X710/E810, I350, Mellanox ConnectX-4+) and enable SR-IOV "
        "in its firmware and the BIOS"
    )
    yield Finding(
        rid,
        "fail",
        scope,
        "no NIC with SR-IOV" + ("" if snap.nics else " (no physical PCI NIC at all)"),
        {"nics": {n.name: n.sriov_support for n in snap.nics}},
        fix=fix,
    )


@rule(
    "LX-VFS",
    "VFs created on the SR-IOV NIC",
    platform="linux",
    severity="high",
    rationale="A PF offers VFs only after N is written to sriov_numvfs (not persistent across reboots).",
    remediation="Shell: `echo N | sudo tee /sys/bus/pci/devices/<pf>/sriov_numvfs` (not persistent across reboots).",
    impact="No VFs exist on the port: nothing can be given to a VM until they are created.",
)
def vfs_created(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if _guest(snap):
        yield not_applicable(rid, host_scope(snap), IN_GUEST)
        return
    capable = capable_nics(snap)
    if not capable:
        yield not_applicable(rid, host_scope(snap), "no SR-IOV capable NIC (see LX-NIC-SRIOV)")
        return
    # Another PF with VFs makes a PF without them a warning; a PF whose count was not read might be that PF.
    any_vfs = any((n.vfs_configured or 0) > 0 or n.vfs_configured is None for _, n in capable)
    for i, n in capable:
        ev: Ev = {f"nics[{i}].vfs_configured": n.vfs_configured, f"nics[{i}].vfs_total": n.vfs_total}
        if n.vfs_configured is None:
            yield skip(
                rid,
                Scope("nic", n.name),
                [f"nics[{i}].vfs_configured"],
                collect=f"cat /sys/class/net/{sh(n.name)}/device/sriov_numvfs",
            )
        elif n.vfs_configured > 0:
            yield Finding(rid, "pass", Scope("nic", n.name), f"{n.vfs_configured} of {n.vfs_total} VFs created", ev)
        else:
            count = min(n.vfs_total or 4, 8)
            yield Finding(
                rid,
                "warn" if any_vfs else "fail",
                Scope("nic", n.name),
                "no VFs created (sriov_numvfs 0)" + ("; another PF has VFs" if any_vfs else ""),
                ev,
                fix=f"echo {count} | sudo tee {_sysfs_dev(n)}/sriov_numvfs",
            )


@rule(
    "LX-VF-BOUND",
    "VFs bound to a driver (host netdev driver or vfio-pci)",
    platform="linux",
    severity="medium",
    rationale="An unbound VF can be neither used on the host nor passed to a VM by vfio.",
    remediation="Shell: bind the VF to vfio-pci through `driver_override` and `drivers_probe`.",
    impact="A VF without a driver can be neither used on the host nor passed to a VM until it is bound.",
)
def vf_bound(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if _guest(snap):
        yield not_applicable(rid, host_scope(snap), IN_GUEST)
        return
    if not snap.vfs:
        yield not_applicable(rid, host_scope(snap), "no VFs (see LX-VFS)")
        return
    for i, v in enumerate(snap.vfs):
        ev: Ev = {f"vfs[{i}].driver": v.driver, f"vfs[{i}].pci_address": v.pci_address, f"vfs[{i}].vm": v.vm}
        if v.driver:
            what = "vfio-pci (ready for passthrough)" if v.driver == "vfio-pci" else f"host driver {v.driver}"
            yield Finding(rid, "pass", _vf_scope(v), f"bound to {what}", ev)
        elif v.pci_address is None:
            yield skip(
                rid,
                _vf_scope(v),
                [f"vfs[{i}].driver", f"vfs[{i}].pci_address"],
                collect=f"ls -l /sys/class/net/{sh(v.pf)}/device/virtfn{v.index}/",
            )
        else:
            dev = f"/sys/bus/pci/devices/{v.pci_address}"
            yield Finding(
                rid,
                "fail",
                _vf_scope(v),
                "VF is bound to no driver",
                ev,
                fix=f"sudo modprobe vfio-pci && echo vfio-pci | sudo tee {dev}/driver_override "
                f"&& echo {v.pci_address} | sudo tee /sys/bus/pci/drivers_probe",
            )


@rule(
    "LX-BOND",
    "SR-IOV PF not in a bond",
    platform="linux",
    severity="medium",
    rationale="VF traffic bypasses a host bond: it uses only its own PF's port, with no failover; on ice "
    "(E810) LAG is switched off while VFs exist.",
    remediation="Design: bond inside the guests over VFs from two PFs, or take the PF out of the host bond.",
    impact="VFs of a bonded PF bypass the bond: a VM on one of them loses the failover the bond gives the host.",
)
def bond(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if _guest(snap):
        yield not_applicable(rid, host_scope(snap), IN_GUEST)
        return
    capable = capable_nics(snap)
    if not capable:
        yield not_applicable(rid, host_scope(snap), "no SR-IOV capable NIC (see LX-NIC-SRIOV)")
        return
    for i, n in capable:
        ev: Ev = {f"nics[{i}].team": n.team, f"nics[{i}].driver": n.driver}
        n_team: str | None = n.team or next((t.name for t in snap.teams if n.name in t.members), None)
        if n_team is None:
            if n.driver is None and any("bond" in e.source for e in snap.errors):
                yield skip(rid, Scope("nic", n.name), [f"nics[{i}].team"], collect=f"ip -d link show {sh(n.name)}")
            else:
                yield Finding(rid, "pass", Scope("nic", n.name), "not in a bond", ev)
            continue
        fix = (
            f"Bond inside the guests over VFs from two PFs (spoofchk off, trust on for those VFs), or: "
            f"sudo ip link set dev {sh(n.name)} nomaster"
        )
        if n.driver == "ice":
            yield Finding(
                rid,
                "fail",
                Scope("nic", n.name),
                f"PF is in bond {n_team!r}; the ice driver turns LAG off while VFs exist",
                ev,
                fix=fix,
            )
        else:
            yield Finding(
                rid,
                "warn",
                Scope("nic", n.name),
                f"PF is in bond {n_team!r}: VF traffic uses only this port and bypasses the bond (no failover)",
                ev,
                fix=fix,
            )


@rule(
    "LX-VF-POLICY",
    "VFs given to VMs: spoof check on, trust off, admin MAC set",
    platform="linux",
    severity="low",
    rationale="A VF with spoof checking off or trust on lets its VM forge source MACs or enter "
    "promiscuous modes; an all-zero admin MAC means no MAC filtering on some NICs (mlx5).",
    remediation="Shell: `ip link set dev <pf> vf N spoofchk on`, `trust off`, `mac <addr>`.",
    impact="A VM on a VF with spoof check off or trust on can send as any MAC address on the wire.",
)
def vf_policy(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if _guest(snap):
        yield not_applicable(rid, host_scope(snap), IN_GUEST)
        return
    given = [(i, v) for i, v in enumerate(snap.vfs) if v.vm]
    if not given:
        yield not_applicable(rid, host_scope(snap), "no VF is given to a VM")
        return
    for i, v in given:
        ev: Ev = {
            f"vfs[{i}].spoof_check": v.spoof_check,
            f"vfs[{i}].trust": v.trust,
            f"vfs[{i}].mac": v.mac,
            f"vfs[{i}].vlan": v.vlan,
            f"vfs[{i}].vm": v.vm,
        }
        if v.spoof_check is None and v.trust is None and v.mac is None:
            yield skip(
                rid,
                _vf_scope(v),
                [f"vfs[{i}].spoof_check", f"vfs[{i}].trust", f"vfs[{i}].mac"],
                collect=f"ip -d link show {sh(v.pf)}",
            )
            continue
        base = f"sudo ip link set dev {sh(v.pf)} vf {v.index}"
        problems: list[tuple[str, str]] = []
        if v.spoof_check is False:
            problems.append(("spoof checking off", f"{base} spoofchk on"))
        if v.trust is True:
            problems.append(("trust on", f"{base} trust off"))
        if v.mac is None or v.mac == ZERO_MAC:
            mac = next(
                (a.mac for a in snap.vm_adapters if a.vf_pci_address and a.vf_pci_address == v.pci_address and a.mac),
                None,
            )
            problems.append(("no admin MAC", f"{base} mac {mac}" if mac else f"{base} mac <the VM's MAC>"))
        vlan = f"VLAN {v.vlan}" if v.vlan else "no VLAN"
        if problems:
            yield Finding(
                rid,
                "warn",
                _vf_scope(v),
                f"VF given to {v.vm!r}: "
                + ", ".join(p for p, _ in problems)
                + f" ({vlan}; fine only if the guest bonds over VFs)",
                ev,
                fix=" && ".join(c for _, c in problems),
            )
        elif v.spoof_check is None or v.trust is None:
            missing = [f"vfs[{i}].{k}" for k in ("spoof_check", "trust") if getattr(v, k) is None]
            yield Finding(
                rid,
                "warn",
                _vf_scope(v),
                f"VF given to {v.vm!r}: not collected: {', '.join(missing)}",
                ev,
                missing=missing,
            )
        else:
            yield Finding(
                rid, "pass", _vf_scope(v), f"VF given to {v.vm!r}: spoof check on, trust off, MAC {v.mac}, {vlan}", ev
            )
