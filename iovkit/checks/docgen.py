"""Generate docs/checks.md from the rule catalog, so the reference cannot drift from the code.

Run `python3 -m iovkit.checks.docgen > docs/checks.md`; tests/checks/test_docs_current.py fails when the file
and this output differ. ID, title, platform, severity and rationale come from the registry. "Reads" is found by
evaluating every rule on the shipped examples and on empty snapshots and collecting the snapshot fields its
findings cite as evidence or as missing facts, so it follows the code. "Fix" is the one thing kept here by hand
(a rule's fixes are computed per finding); a rule without an entry prints "not documented", which the test shows.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from iovkit.checks.catalog import Rule, all_rules
from iovkit.snapshot import HostSnapshot

PLATFORM_TEXT = {
    "hyperv": "Hyper-V host",
    "linux": "Linux/KVM host",
    "esxi": "VMware ESXi host",
    "guest": "inside a VM (Linux or Windows guest)",
    "any": "any",
}

# The kind of fix each rule gives. Kept short: the exact command is in each finding's `fix`.
FIX_KIND: dict[str, str] = {
    "HV-OS-EDITION": "Host OS: Windows Server 2012 or newer (Standard/Datacenter). No command fixes a client edition.",
    "HV-HOST-IOV": "Firmware or hardware, one per IovSupportReasons string (Intel VT-d / AMD IOMMU, SR-IOV in the "
    "BIOS, ACS on the root ports, a BIOS update for _OSC). Unknown reason strings are shown verbatim.",
    "HV-SLAT": "Hardware (a CPU with EPT or RVI/NPT). When the facts are missing: `Get-ComputerInfo -Property "
    "HyperV*` to read them.",
    "HV-NIC-SRIOV": "Per SriovSupport value: another slot (MissingAcs), the vendor's PF driver (MissingPfDriver), "
    "firmware settings or a BIOS update (NoBusResources, NoVfBarSpace, NoOscSupport, NoIoMmuSupport), or an SR-IOV "
    "NIC. Unknown values: `Get-NetAdapterSriov` to read more.",
    "HV-NIC-ENABLED": "PowerShell: `Enable-NetAdapterSriov -Name <nic>`, `Set-NetAdapterSriov -Name <nic> -NumVFs N`.",
    "HV-TEAM": "Rebuild the switch on SET or a single port: `iovkit plan`. SET needs Windows Server 2016 or newer.",
    "HV-SWITCH-IOV": "Recreate the switch with `-EnableIov $true`: `iovkit plan` (IOV cannot be turned on later). "
    "With no external switch at all: the `New-VMSwitch ... -EnableIov $true` command.",
    "HV-VNIC-WEIGHT": "PowerShell: `Set-VMNetworkAdapter -VMName <vm> -Name <adapter> -IovWeight 100`.",
    "HV-VF-CAPACITY": "`iovkit plan`: a second port and IOV switch for the rest, or VMQ/vRSS for them.",
    "HV-VF-ACTIVE": "The cause the facts point to: rebuild the switch (`iovkit plan`), free a VF, enable SR-IOV on "
    "the NIC, start the VM, or install the VF driver in the guest and check there (GUEST-VF).",
    "HV-MGMT-OS": "Procedure: run `iovkit apply plan.json --console --yes` at the server console (or iLO/iDRAC), "
    "not over the network through that switch.",
    "HV-VMQ": "PowerShell: `Enable-NetAdapterVmq -Name <nic>`, `Set-VMNetworkAdapter ... -VmqWeight 100`.",
    "LX-VIRT": "Firmware setting (Intel VT-x or AMD SVM), or `sudo modprobe kvm_intel` / `kvm_amd`.",
    "LX-GUEST": "None here: run iovkit on the hypervisor host (or `iovkit doctor --host` for a Hyper-V host).",
    "LX-IOMMU": "Firmware setting (Intel VT-d or AMD IOMMU) and the kernel command line (GRUB), then reboot.",
    "LX-IOMMU-CMDLINE": "Kernel command line through GRUB (`intel_iommu=on iommu=pt`, or `iommu=pt` on AMD), "
    "then reboot.",
    "LX-NIC-SRIOV": "Hardware or NIC firmware (`mstconfig ... set SRIOV_EN=1 NUM_OF_VFS=8` on Mellanox), and SR-IOV "
    "enabled in the BIOS.",
    "LX-VFS": "Shell: `echo N | sudo tee /sys/bus/pci/devices/<pf>/sriov_numvfs` (not persistent across reboots).",
    "LX-VF-BOUND": "Shell: bind the VF to vfio-pci through `driver_override` and `drivers_probe`.",
    "LX-BOND": "Design: bond inside the guests over VFs from two PFs, or take the PF out of the host bond.",
    "LX-VF-POLICY": "Shell: `ip link set dev <pf> vf N spoofchk on`, `trust off`, `mac <addr>`.",
    "ESX-VERSION": "Upgrade ESXi (`esxcli software profile update`); 5.1 on Intel only, 5.5+ for the SR-IOV adapter.",
    "ESX-IOMMU": "Firmware setting: Intel VT-d / AMD IOMMU and SR-IOV, then a full power cycle; the boot log "
    "(`grep -E 'DMAR|IOV' /var/log/vmkernel.log`) shows the result.",
    "ESX-NIC-DRIVER": "Hardware: an SR-IOV NIC with a certified PF driver that takes max_vfs (igbn takes none).",
    "ESX-VFS-ENABLED": '`esxcli system module parameters set -m <driver> -p "<other options> max_vfs=a,b"` '
    "(the whole option string, one entry per port in PCI order) or `iovkit plan` (vSphere API), then a reboot in "
    "maintenance mode.",
    "ESX-VFS-ACTIVE": "Maintenance mode and a reboot (`esxcli system shutdown reboot`); Mellanox NICs also need "
    "SRIOV_EN/NUM_OF_VFS in the NIC firmware (mlxconfig).",
    "ESX-VF-CAPACITY": "More VFs on the port (max_vfs / `iovkit plan`), or fewer VFs when interrupt vectors run out.",
    "ESX-VM-ADAPTER": "`iovkit plan` with a policy (adds an SR-IOV passthrough adapter); `vim-cmd vmsvc/upgrade` for "
    "the hardware version; re-pick the physical function when its PCI id moved.",
    "ESX-VM-MEMORY": "Reserve all guest memory (All locked): `iovkit plan`, or the .vmx "
    "`sched.mem.pin`/`sched.mem.min`.",
    "ESX-VM-FEATURES": "None: accept the loss of vMotion, snapshots, HA/DRS/FT and hot-add, or keep the VM on vmxnet3.",
    "ESX-REBOOT": "Maintenance mode and a reboot: `esxcli system maintenanceMode set --enable true`, then "
    "`esxcli system shutdown reboot`.",
    "GUEST-VF": "On the host: `iovkit doctor` there (HV-VF-ACTIVE says why). In the guest: the VF driver; then "
    "read the VF counters (`ethtool -S <synthetic nic> | grep vf_`, or `Get-NetAdapterStatistics` on Windows).",
    "GUEST-VF-DRIVER": "Shell: install the distribution's extra kernel modules and `sudo modprobe -a <missing>`.",
    "GUEST-QUEUES": "Shell: `sudo ethtool -L <if> combined <n>` (n = min(vCPUs or relay workers, the maximum)).",
    "GUEST-RSS": "Shell: `sudo ethtool -X <if> equal <n>`; Windows: `Enable-NetAdapterRss -Name <adapter>`.",
    "GUEST-IRQ": "Shell: `sudo systemctl enable --now irqbalance`, or stop it and write /proc/irq/N/smp_affinity_list.",
    "GUEST-RPS": "Shell: a CPU mask into /sys/class/net/<if>/queues/rx-*/rps_cpus; `net.core.rps_sock_flow_entries`.",
    "GUEST-NUMA": "Shell: `numactl --cpunodebind=<node> --membind=<node> iovkit relay ...`.",
    "GUEST-SOCKBUF": "Shell: `sudo sysctl -w net.core.rmem_max=<relay rcvbuf>` and a line in /etc/sysctl.d.",
    "GUEST-UDP-HASH": "Shell: `sudo ethtool -N <if> rx-flow-hash udp4 sdfn` (L3 `sd` on Azure when UDP is fragmented).",
    "GUEST-CONNTRACK": "Shell: `iptables -t raw -I PREROUTING 1 -p udp --dport <port> -j NOTRACK`, OUTPUT --sport too.",
    "GUEST-GRO": "Shell: `sudo ethtool -K <if> gro on gso on rx-gro-list off`.",
    "GUEST-STEAL": "Design: a non-burstable size or a dedicated host; re-run benchmarks when steal is low.",
}

# Evidence keys that name a looked-up object rather than a snapshot path.
_ALIASES = {"switch.": "switches[].", "vm.": "vms[]."}


def _probe_snapshots() -> list[HostSnapshot]:
    """The shipped examples and empty snapshots (every fact None), so skips name what a rule needs."""
    from iovkit.sources import EXAMPLES, load_example

    snaps = [load_example(name) for name in EXAMPLES]
    for host in (
        {"platform": "hyperv"},
        {"platform": "linux"},
        {"platform": "linux", "is_vm_guest": True},
        {"platform": "esxi"},
    ):
        snaps.append(HostSnapshot.model_validate({"source": {"kind": "example"}, "host": host}))
    # A Linux guest on Hyper-V with a netvsc adapter and its VF (counters not collected).
    guest_nics = [
        {"name": "eth0", "driver": "hv_netvsc", "paired_with": "enP1s1"},
        {"name": "enP1s1", "driver": "mlx5_core", "is_vf": True, "paired_with": "eth0"},
    ]
    snaps.append(
        HostSnapshot.model_validate(
            {
                "source": {"kind": "example"},
                "guest_nics": guest_nics,
                "host": {"platform": "linux", "is_vm_guest": True},
            }
        )
    )
    return snaps


def _field_path(key: str) -> str | None:
    """'nics[3].vfs_total' -> 'nics[].vfs_total'; None for keys that are not snapshot fields."""
    for short, full in _ALIASES.items():
        if key.startswith(short):
            key = full + key[len(short) :]
    key = re.sub(r"\[\d+\]", "[]", key)
    root = re.split(r"[.\[]", key, maxsplit=1)[0]
    return key if root in HostSnapshot.model_fields else None


def reads(rule: Rule, snaps: Iterable[HostSnapshot]) -> list[str]:
    """The snapshot fields a rule's findings cite, over the probe snapshots, in a stable order."""
    found: set[str] = set()
    for snap in snaps:
        for f in rule.evaluate(snap, None):
            for key in [*f.evidence, *f.missing]:
                path = _field_path(key)
                if path:
                    found.add(path)
    # Drop a bare list ('nics') when a field inside it is listed ('nics[].name').
    return sorted(p for p in found if not any(q.startswith(p + "[") for q in found))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The whole of docs/checks.md."""
    rules = all_rules()
    snaps = _probe_snapshots()
    lines = [
        "# Check reference",
        "",
        "<!-- Generated by `python3 -m iovkit.checks.docgen > docs/checks.md`. Do not edit by hand: "
        "tests/checks/test_docs_current.py fails when this file differs from the catalog. -->",
        "",
        "Every rule `iovkit check` and `iovkit doctor` run, in report order. Each finding has a status: "
        "`pass`, `warn`, `fail`, `info`, `not-applicable` (the rule does not apply here) or `unknown` (a fact it "
        "needs was not in the input: the finding names the fact and the exact command that collects it). A rule "
        "fails only on facts the input showed. A `critical` rule that is unknown makes the verdict `unknown`: "
        "iovkit never calls a host ready, nor not ready, on facts it did not see.",
        "",
        "Run a subset with `--only ID` or leave rules out with `--skip ID` (repeat or comma-separate). "
        '`iovkit check --list` prints the IDs. "Reads" lists the snapshot fields (see '
        "[snapshot.md](snapshot.md)) a rule cites as evidence; `[]` means every item of that list.",
        "",
        "| ID | platform | severity | title |",
        "|---|---|---|---|",
    ]
    for r in rules.values():
        anchor = r.id.lower()
        lines.append(f"| [{r.id}](#{anchor}) | {r.platform} | {r.severity} | {_cell(r.title)} |")
    for r in rules.values():
        fields = reads(r, snaps)
        lines += [
            "",
            f"## {r.id}",
            "",
            f"**{r.title}**",
            "",
            f"- Platform: {PLATFORM_TEXT.get(r.platform, r.platform)}",
            f"- Severity: {r.severity}",
            f"- Why: {r.rationale}",
            f"- Reads: {', '.join(f'`{p}`' for p in fields) if fields else '(no snapshot field cited)'}",
            f"- Fix: {FIX_KIND.get(r.id, 'not documented')}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
