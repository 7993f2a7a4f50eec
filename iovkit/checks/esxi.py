"""VMware ESXi rules (reference esxi.md §1-§3). Pure functions of the snapshot.

Facts come from `snap.esxi` (EsxiInfo) and the shared NIC/VF/adapter fields the ESXi sources fill. A fact the
paste or the API did not contain gives a skip naming it and the exact command that collects it.
"""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import (
    Ev,
    Finding,
    Scope,
    adapter_key,
    current_rule,
    host_scope,
    not_applicable,
    plan_command,
    rule,
    unknown,
)
from iovkit.policy import Policy, adapters_in_scope
from iovkit.snapshot import (
    EsxiInfo,
    EsxiVm,
    EsxiVmAdapter,
    HostSnapshot,
    PhysicalNic,
    esxi_driver_ports,
    esxi_max_vfs_vector,
    esxi_options_with_max_vfs,
    esxi_port_max_vfs,
)

CMD_VERSION = "esxcli system version get"
CMD_VMS = "vim-cmd vmsvc/getallvms   # then cat each VM's .vmx (iovkit script collect --esxi does both)"
VMS_UNREAD = "not collected: the VMs (no .vmx file or vSphere API VM list in the input)"
CMD_NICS = "esxcli network nic list"
CMD_SRIOV_NICS = "esxcli network sriovnic list"
CMD_SUMMARY = "vim-cmd hostsvc/hostsummary | grep -E 'rebootRequired|inMaintenanceMode'"
CMD_BOOTLOG = "grep -E 'DMAR|IOV' /var/log/vmkernel.log"
REBOOT = (
    "esxcli system maintenanceMode set --enable true && "
    'esxcli system shutdown reboot --reason "iovkit: activate SR-IOV VFs"'
)
MIN_HW = 10  # "compatible with ESXi 5.5 and later" (esxi.md §1.1)
VECTOR_BUDGET = 3072  # 3X + 2Y < 3072 (X Intel VFs, Y Emulex VFs), esxi.md §1.3
LOST = (
    "vMotion, Storage vMotion, snapshots, suspend/resume, HA, DRS, Fault Tolerance, DPM, and hot-add of devices, "
    "memory and vCPUs"
)


def esx_info(snap: HostSnapshot) -> EsxiInfo:
    return snap.esxi or EsxiInfo()


def _vt(info: EsxiInfo) -> tuple[int, ...] | None:
    return info.version_tuple()


def vm_adapters(snap: HostSnapshot, policy: Policy | None) -> list[tuple[EsxiVm, EsxiVmAdapter]]:
    """In-scope adapters (policy scope) as the ESXi records that hold their type, PF and VM settings."""
    keys = {(a.vm_name, a.name) for a in adapters_in_scope(snap, policy)}
    return [(vm, a) for vm in esx_info(snap).vms for a in vm.adapters if (vm.name, a.name) in keys]


def vms_unread(snap: HostSnapshot) -> bool:
    """The VMs (their adapters, or ESXi's VM records holding type, PF and memory) were not in the input."""
    return not snap.has("vm_adapters") or not esx_info(snap).has("vms")


def ascope(vm: EsxiVm, a: EsxiVmAdapter) -> Scope:
    return Scope("vm-adapter", adapter_key(vm.name, a.name))


def vmi(snap: HostSnapshot, vm: EsxiVm) -> int:
    return esx_info(snap).vms.index(vm)


def plan_line(snap: HostSnapshot) -> str:
    """The `iovkit plan` line for this input; a live vSphere snapshot is saved first, then planned."""
    if snap.source.kind == "esxi-live":
        host = (snap.source.origin or "<host>").split("://")[-1].rsplit(":", 1)[0]
        name = snap.host.name or "esx"
        return f"iovkit collect --vsphere {host} --user <user> -o {name}.json && iovkit plan {name}.json -o plan.json"
    return plan_command(snap)


def vmx_cmd(vm: EsxiVm) -> str:
    """The ESXi shell line that prints a VM's .vmx (its datastore path when known)."""
    path = vm.vmx_path or ""
    if path.startswith("[") and "] " in path:
        ds, rest = path[1:].split("] ", 1)
        path = f"/vmfs/volumes/{ds}/{rest}"
    return f"cat '{path}'" if path.startswith("/") else f"cat /vmfs/volumes/<datastore>/{vm.name}/{vm.name}.vmx"


def _mi(snap: HostSnapshot, driver: str | None) -> int:
    mod = esx_info(snap).module(driver)
    return esx_info(snap).modules.index(mod) if mod else 0


def pf_nic(snap: HostSnapshot, a: EsxiVmAdapter) -> PhysicalNic | None:
    return next((n for n in snap.nics if a.pf and n.pci_address == a.pf), None)


def _nic_i(snap: HostSnapshot, n: PhysicalNic) -> int:
    return snap.nics.index(n)


def enable_vfs_command(snap: HostSnapshot, nic: PhysicalNic, count: int) -> str:
    """The exact esxcli line that gives `nic` `count` VFs, keeping the driver's other options and ports."""
    mod = esx_info(snap).module(nic.driver)
    ports = esxi_driver_ports(snap, nic.driver or "")
    if mod is None or nic not in ports:
        return (
            f"esxcli system module parameters list -m {nic.driver or '<driver>'}   # read max_vfs first, then: "
            f'esxcli system module parameters set -m {nic.driver or "<driver>"} -p "<other options> max_vfs=..."'
        )
    vec = list(esxi_max_vfs_vector(mod) or [])
    vec += [0] * (len(ports) - len(vec))
    vec[ports.index(nic)] = count
    return f'esxcli system module parameters set -m {nic.driver} -p "{esxi_options_with_max_vfs(mod, vec)}"'


@rule(
    "ESX-VERSION",
    "ESXi version supports SR-IOV (5.1+ on Intel, 5.5+ on AMD; 5.5+ for the SR-IOV adapter type)",
    platform="esxi",
    severity="critical",
    rationale="SR-IOV arrived in vSphere 5.1 for Intel hosts and 5.5 for AMD; the SR-IOV passthrough adapter type "
    "exists from 5.5.",
    remediation="Upgrade ESXi (`esxcli software profile update`); 5.1 on Intel only, 5.5+ for the SR-IOV adapter.",
    impact="This ESXi release cannot give a VM an SR-IOV adapter: its traffic stays on the vSwitch.",
)
def version(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope, info = current_rule(), host_scope(snap), esx_info(snap)
    v = _vt(info)
    ev: Ev = {"esxi.version": info.version, "esxi.build": info.build, "esxi.cpu_vendor": info.cpu_vendor}
    if v is None:
        yield unknown(rid, scope, ["esxi.version"], "not collected: esxi.version", collect=CMD_VERSION)
        return
    upgrade = "Upgrade ESXi (esxcli software profile update -d <depot.zip> -p <profile>) to 7.0 U3 or 8.0"
    if v < (5, 1):
        yield Finding(rid, "fail", scope, f"ESXi {info.version} predates SR-IOV (5.1)", ev, fix=upgrade)
    elif v < (5, 5) and info.cpu_vendor == "amd":
        yield Finding(rid, "fail", scope, f"ESXi {info.version} on AMD: SR-IOV needs 5.5 or later", ev, fix=upgrade)
    elif v < (5, 5) and info.cpu_vendor is None:
        yield unknown(
            rid,
            scope,
            ["esxi.cpu_vendor"],
            "ESXi 5.1 supports SR-IOV on Intel only; CPU vendor not collected",
            collect="esxcli hardware pci list",
        )
    elif v < (5, 5):
        yield Finding(
            rid,
            "warn",
            scope,
            f"ESXi {info.version}: VFs only as plain PCI devices (no SR-IOV adapter type)",
            ev,
            fix=upgrade,
        )
    else:
        yield Finding(rid, "pass", scope, f"ESXi {info.version} supports SR-IOV passthrough adapters", ev)


@rule(
    "ESX-IOMMU",
    "IOMMU (VT-d/AMD-Vi) and SR-IOV enabled in firmware",
    platform="esxi",
    severity="critical",
    rationale="ESXi needs the ACPI DMAR table (IOMMU on in the BIOS) to create VFs; without it vmkernel.log says "
    "`ACPI DMAR table not found` and `IOV initialization failed`.",
    remediation=(
        "Firmware setting: Intel VT-d / AMD IOMMU and SR-IOV, then a full power cycle; the boot log (`grep -E"
        " 'DMAR|IOV' /var/log/vmkernel.log`) shows the result."
    ),
    impact="Without IOMMU and SR-IOV in firmware no VF is created, whatever the driver asks for.",
)
def iommu(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope, info = current_rule(), host_scope(snap), esx_info(snap)
    bad = [ln for ln in info.boot_log or [] if "DMAR table not found" in ln or "IOV initialization failed" in ln]
    active = bool(info.vfs) or any((n.vfs_configured or 0) > 0 for n in snap.nics)
    ev: Ev = {"esxi.boot_log": info.boot_log, "esxi.sriov_nics": info.sriov_nics}
    vendor = "AMD IOMMU (AMD-Vi)" if info.cpu_vendor == "amd" else "Intel VT-d"
    fix = (
        f"Firmware setting: enable {vendor} and SR-IOV (Dell: SR-IOV Global Enable), power the server off fully, "
        "boot and check `grep -E 'DMAR|IOV' /var/log/vmkernel.log` again"
    )
    if bad:
        yield Finding(rid, "fail", scope, f"vmkernel.log: {bad[0]}", ev, fix=fix)
    elif active:
        yield Finding(rid, "pass", scope, "VFs exist on this host, so the IOMMU and SR-IOV are on", ev)
    elif info.boot_log is not None:
        yield Finding(rid, "pass", scope, "the boot log has no DMAR/IOV failure", ev)
    else:
        yield unknown(rid, scope, ["esxi.boot_log"], "not collected: esxi.boot_log", collect=CMD_BOOTLOG)


@rule(
    "ESX-NIC-DRIVER",
    "A NIC whose ESXi driver can create VFs (max_vfs parameter or HostSriovInfo.sriovCapable)",
    platform="esxi",
    severity="critical",
    rationale="VFs come from a certified PF driver: i40en, icen, ixgben, nmlx5_core take max_vfs; igbn (I350) "
    "shows no max_vfs parameter.",
    remediation="Hardware: an SR-IOV NIC with a certified PF driver that takes max_vfs (igbn takes none).",
    impact="The port's driver cannot create VFs: VMs on it stay on vmxnet3 through the vSwitch.",
)
def nic_driver(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope, info = current_rule(), host_scope(snap), esx_info(snap)
    if not snap.nics:
        yield unknown(rid, scope, ["nics"], "not collected: nics", collect=CMD_NICS)
        return
    ev: Ev = {}
    capable, unread, without = [], [], []
    for i, n in enumerate(snap.nics):
        mod = info.module(n.driver)
        ev[f"nics[{i}].sriov_support"] = n.sriov_support
        if mod is not None:
            ev[f"esxi.modules[{info.modules.index(mod)}].has_max_vfs"] = mod.has_max_vfs
        if n.sriov_support == "Supported":
            capable.append(n.name)
        elif n.sriov_support == "NotSupported" or (mod is not None and mod.has_max_vfs is False):
            without.append(f"{n.name} ({n.driver}: no max_vfs)" if mod and mod.has_max_vfs is False else n.name)
        else:
            unread.append(n)
    if capable:
        note = f"; not SR-IOV: {', '.join(without)}" if without else ""
        yield Finding(rid, "pass", scope, f"SR-IOV capable: {', '.join(capable)}{note}", ev)
    elif unread:
        cmds = sorted({f"esxcli system module parameters list -m {n.driver}" for n in unread if n.driver})
        missing = [f"nics[{snap.nics.index(n)}].driver" for n in unread] + ["esxi.modules"]
        yield unknown(rid, scope, missing, "not collected: the drivers' parameters", collect=" ; ".join(cmds))
    else:
        yield Finding(
            rid,
            "fail",
            scope,
            f"no NIC can create VFs: {', '.join(without)}",
            ev,
            fix="Hardware: an SR-IOV NIC on the VMware Compatibility Guide with a certified PF driver "
            "(Intel X710/E810 on i40en/icen, Mellanox ConnectX-4+ on nmlx5_core)",
        )


def _cannot_carry_vfs(snap: HostSnapshot, n: PhysicalNic) -> bool:
    """Seen unable: not SR-IOV capable, or its driver has no max_vfs parameter (igbn)."""
    mod = esx_info(snap).module(n.driver)
    return n.sriov_support == "NotSupported" or (mod is not None and mod.has_max_vfs is False)


def _wanted(snap: HostSnapshot, policy: Policy | None) -> dict[str, list[tuple[EsxiVm, EsxiVmAdapter]]]:
    """vmnic -> the in-scope adapters whose PF it is."""
    out: dict[str, list[tuple[EsxiVm, EsxiVmAdapter]]] = {}
    for vm, a in vm_adapters(snap, policy):
        nic = pf_nic(snap, a)
        if nic is not None:
            out.setdefault(nic.name, []).append((vm, a))
    return out


@rule(
    "ESX-VFS-ENABLED",
    "VFs enabled on the ports the VMs use (max_vfs or the API's SR-IOV config)",
    platform="esxi",
    severity="high",
    rationale="A port offers VFs only after max_vfs (per driver, one entry per port in PCI order) or "
    "UpdatePassthruConfig asks for them, and a reboot creates them.",
    remediation=(
        '`esxcli system module parameters set -m <driver> -p "<other options> max_vfs=a,b"` (the whole option'
        " string, one entry per port in PCI order) or `iovkit plan` (vSphere API), then a reboot in "
        "maintenance mode."
    ),
    impact="No VFs are configured on the port the VMs use: an SR-IOV adapter there cannot power on.",
)
def vfs_enabled(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    wanted = _wanted(snap, policy)
    capable = [n for n in snap.nics if n.sriov_support == "Supported"]
    if not capable:
        unread = [i for i, n in enumerate(snap.nics) if n.sriov_support is None]
        if unread or not snap.nics:
            yield unknown(
                rid,
                host_scope(snap),
                [f"nics[{i}].sriov_support" for i in unread] or ["nics"],
                "not collected: which ports can carry VFs (see ESX-NIC-DRIVER)",
                collect=CMD_SRIOV_NICS if snap.nics else CMD_NICS,
            )
        else:
            yield not_applicable(rid, host_scope(snap), "no SR-IOV capable NIC (see ESX-NIC-DRIVER)")
        return
    # "No port has VFs" is a claim about every port: each must be observed off (or unable to carry VFs).
    none_on = all(m.sriov_enabled is False or _cannot_carry_vfs(snap, m) for m in snap.nics)
    for n in capable:
        i = _nic_i(snap, n)
        users = wanted.get(n.name, [])
        ev: Ev = {f"nics[{i}].sriov_enabled": n.sriov_enabled, f"nics[{i}].driver": n.driver}
        want = esxi_port_max_vfs(snap, n)
        if want is not None:
            ev[f"esxi.modules[{_mi(snap, n.driver)}].options"] = want
        count = max(len(users), 8)
        if n.sriov_enabled:
            yield Finding(
                rid, "pass", Scope("nic", n.name), "SR-IOV enabled" + (f" (max_vfs {want})" if want else ""), ev
            )
        elif n.sriov_enabled is None:
            yield unknown(
                rid,
                Scope("nic", n.name),
                [f"nics[{i}].sriov_enabled"],
                "not collected: whether VFs are enabled",
                collect=f"esxcli system module parameters list -m {n.driver or '<driver>'}",
            )
        elif users or none_on:
            who = f" ({len(users)} VM adapter(s) use it)" if users else " (and on no other port)"
            yield Finding(
                rid,
                "fail",
                Scope("nic", n.name),
                f"no VFs enabled on {n.name}{who}",
                ev,
                fix=enable_vfs_command(snap, n, count) + " ; then reboot in maintenance mode: " + REBOOT,
            )
        elif not vms_unread(snap):
            yield not_applicable(rid, Scope("nic", n.name), "VFs not enabled, and no in-scope VM uses this port")
        else:
            yield unknown(
                rid,
                Scope("nic", n.name),
                ["vm_adapters"],
                f"VFs not enabled on {n.name}; whether a VM needs them is not known ({VMS_UNREAD})",
                collect=CMD_VMS,
            )


@rule(
    "ESX-VFS-ACTIVE",
    "Enabled VFs are active (no reboot pending)",
    platform="esxi",
    severity="high",
    rationale="`sriovActive` means enabled + rebooted: max_vfs and UpdatePassthruConfig take effect at the next "
    "boot unless the device rebinds live; Mellanox NICs also need SRIOV_EN in the NIC firmware.",
    remediation=(
        "Maintenance mode and a reboot (`esxcli system shutdown reboot`); Mellanox NICs also need "
        "SRIOV_EN/NUM_OF_VFS in the NIC firmware (mlxconfig)."
    ),
    impact="The configured VFs do not exist until the host reboots: the VMs cannot use them yet.",
)
def vfs_active(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, info = current_rule(), esx_info(snap)
    enabled = [n for n in snap.nics if n.sriov_enabled]
    if not enabled:
        unread = [i for i, n in enumerate(snap.nics) if n.sriov_enabled is None and not _cannot_carry_vfs(snap, n)]
        if not snap.has("nics") or unread:  # "no port has VFs enabled" is a claim about every port
            yield unknown(
                rid,
                host_scope(snap),
                [f"nics[{i}].sriov_enabled" for i in unread] or ["nics"],
                "not collected: which ports have VFs enabled (see ESX-VFS-ENABLED)",
                collect=CMD_SRIOV_NICS if snap.nics else CMD_NICS,
            )
        else:
            yield not_applicable(rid, host_scope(snap), "no port has VFs enabled (see ESX-VFS-ENABLED)")
        return
    for n in enabled:
        i = _nic_i(snap, n)
        pt = info.passthru_for(n.pci_address)
        want = pt.vfs_requested if pt and pt.vfs_requested is not None else esxi_port_max_vfs(snap, n)
        ev: Ev = {
            f"nics[{i}].vfs_configured": n.vfs_configured,
            "esxi.reboot_required": info.reboot_required,
            f"esxi.passthru[{(info.passthru or []).index(pt) if pt else 0}].sriov_active": pt.sriov_active
            if pt
            else None,
            "requested": want,
        }
        scope = Scope("nic", n.name)
        if n.vfs_configured is None:
            yield unknown(
                rid,
                scope,
                [f"nics[{i}].vfs_configured"],
                "not collected: the VFs present",
                collect=f"esxcli network sriovnic vf list -n {n.name}",
            )
        elif (
            n.vfs_configured == 0
            or (pt is not None and pt.sriov_active is False)
            or (want is not None and n.vfs_configured < want)
        ):
            pending = info.reboot_required is True or (pt is not None and pt.sriov_active is False)
            msg = f"{n.vfs_configured} VF(s) present" + (f", {want} requested" if want is not None else "")
            fix = REBOOT
            if (n.driver or "").startswith("nmlx"):
                fix += (
                    f" ; if none appear after the reboot: /opt/mellanox/bin/mlxconfig -d <{n.name} device> set "
                    f"SRIOV_EN=1 NUM_OF_VFS={want or 8} (NIC firmware), and reboot again"
                )
            yield Finding(
                rid,
                "fail",
                scope,
                msg + ("; reboot pending" if pending else "; not active (not rebooted?)"),
                ev,
                fix=fix,
            )
        else:
            yield Finding(rid, "pass", scope, f"{n.vfs_configured} VF(s) active", ev)


def _vendor_of(snap: HostSnapshot, n: PhysicalNic) -> str:
    dev = next((d for d in esx_info(snap).pci_devices or [] if d.id == n.pci_address), None)
    vid = dev.vendor_id if dev else None
    text = f"{n.description or ''} {dev.vendor_name if dev else ''}".lower()
    if vid == 0x8086 or "intel" in text:
        return "intel"
    if vid in (0x10DF, 0x19A2) or "emulex" in text:
        return "emulex"
    return "other"


@rule(
    "ESX-VF-CAPACITY",
    "Enough VFs for the VMs that want one (and interrupt vectors for them)",
    platform="esxi",
    severity="high",
    rationale="Each SR-IOV adapter takes a free VF of its PF at power-on; VFs also cost interrupt vectors: "
    "3 per Intel VF and 2 per Emulex VF out of about 3072 (3X + 2Y < 3072).",
    remediation="More VFs on the port (max_vfs / `iovkit plan`), or fewer VFs when interrupt vectors run out.",
    impact="VMs beyond the port's VFs (or interrupt vectors) fail to power on with their SR-IOV adapter.",
)
def capacity(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    if vms_unread(snap):
        yield unknown(rid, host_scope(snap), ["vm_adapters"], VMS_UNREAD, collect=CMD_VMS)
        return
    wanted = _wanted(snap, policy)
    named = [(vm, a) for vm, a in vm_adapters(snap, policy) if a.pf is not None]
    if not wanted and named and not snap.has("nics"):  # which vmnic each PF is: not observed
        yield unknown(
            rid,
            host_scope(snap),
            ["nics"],
            f"not collected: the host's NICs, so the PFs {', '.join(sorted({str(a.pf) for _, a in named}))} "
            "the VMs name",
            collect=CMD_NICS,
        )
    elif not wanted:
        yield not_applicable(rid, host_scope(snap), "no in-scope VM adapter names a PF on this host")
    for name, users in wanted.items():
        n = snap.nic(name)
        assert n is not None
        i = _nic_i(snap, n)
        have = n.vfs_configured
        ev: Ev = {f"nics[{i}].vfs_configured": have, "wanted": [adapter_key(v.name, a.name) for v, a in users]}
        if have is None:
            yield unknown(
                rid,
                Scope("nic", name),
                [f"nics[{i}].vfs_configured"],
                "not collected: the VFs present",
                collect=f"esxcli network sriovnic vf list -n {name}",
            )
        elif len(users) > have:
            over = users[have:]
            yield Finding(
                rid,
                "fail",
                Scope("nic", name),
                f"{len(users)} adapters want a VF of {name}, {have} exist",
                ev,
                fix=enable_vfs_command(snap, n, len(users)) + " ; then reboot in maintenance mode: " + REBOOT,
                affects=[adapter_key(v.name, a.name) for v, a in over],
            )
        else:
            yield Finding(rid, "pass", Scope("nic", name), f"{have} VFs for {len(users)} adapter(s)", ev)
    x = sum(n.vfs_configured or 0 for n in snap.nics if _vendor_of(snap, n) != "emulex")
    y = sum(n.vfs_configured or 0 for n in snap.nics if _vendor_of(snap, n) == "emulex")
    if 3 * x + 2 * y >= VECTOR_BUDGET:
        yield Finding(
            rid,
            "warn",
            host_scope(snap),
            f"interrupt vectors: 3 x {x} + 2 x {y} = {3 * x + 2 * y} >= {VECTOR_BUDGET}: VMs may fail with "
            "`Out of interrupt vectors`",
            {"vfs_intel_or_other": x, "vfs_emulex": y},
            fix="Enable fewer VFs per port (max_vfs) so that 3 x Intel VFs + 2 x Emulex VFs stays under 3072",
        )


@rule(
    "ESX-REBOOT",
    "No host reboot pending",
    platform="esxi",
    severity="medium",
    rationale="summary.rebootRequired: a changed SR-IOV or module setting waits for a reboot.",
    remediation=(
        "Maintenance mode and a reboot: `esxcli system maintenanceMode set --enable true`, then `esxcli "
        "system shutdown reboot`."
    ),
    impact="Changes to VFs take effect only after the reboot: the host runs the old configuration until then.",
)
def reboot(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid, scope, info = current_rule(), host_scope(snap), esx_info(snap)
    ev: Ev = {"esxi.reboot_required": info.reboot_required, "esxi.in_maintenance_mode": info.in_maintenance_mode}
    if info.reboot_required is None:
        yield unknown(rid, scope, ["esxi.reboot_required"], "not collected: esxi.reboot_required", collect=CMD_SUMMARY)
    elif info.reboot_required:
        yield Finding(rid, "warn", scope, "the host waits for a reboot", ev, fix=REBOOT)
    else:
        yield Finding(rid, "pass", scope, "no reboot pending", ev)
