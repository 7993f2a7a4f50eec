"""Small pure parsers of the text the Linux collector reads. Each names the file or command it parses.

No I/O here: every function takes text (as read from the root or an archive) and returns plain facts, so
odd kernels and distributions are tested by feeding text.
"""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

# -- /proc/cpuinfo ---------------------------------------------------------------------------------------


@dataclass
class CpuFacts:
    model: str | None = None
    vendor: str | None = None
    sockets: int | None = None
    cores: int | None = None
    logical: int | None = None
    flags: set[str] = field(default_factory=set)
    has_flags: bool = False  # a `flags` line was seen (x86); without it, flag-derived facts stay None


def parse_cpuinfo(text: str) -> CpuFacts:
    """/proc/cpuinfo: blocks per logical CPU; `flags` plus, since ~5.6, a separate `vmx flags` line (ept, vpid)."""
    facts = CpuFacts()
    logical = 0
    cores_by_socket: dict[str, int] = {}
    for block in re.split(r"\n\s*\n", text):
        kv: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                kv[key.strip()] = value.strip()
        if "processor" not in kv:
            continue
        logical += 1
        facts.model = facts.model or kv.get("model name") or kv.get("Model") or None
        facts.vendor = facts.vendor or kv.get("vendor_id") or None
        if "physical id" in kv and "cpu cores" in kv and kv["cpu cores"].isdigit():
            cores_by_socket[kv["physical id"]] = int(kv["cpu cores"])
        for key in ("flags", "vmx flags"):
            if key in kv:
                facts.has_flags = True
                facts.flags.update(kv[key].split())
    facts.logical = logical or None
    if cores_by_socket:
        facts.sockets = len(cores_by_socket)
        facts.cores = sum(cores_by_socket.values())
    return facts


# -- /etc/os-release, /proc/cmdline ----------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): KEY=value lines, values optionally shell-quoted."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip()] = parts[0] if parts else ""
    return out


IOMMU_OPTIONS = ("intel_iommu", "amd_iommu", "iommu")


def parse_cmdline_iommu(cmdline: str) -> dict[str, str]:
    """intel_iommu=, amd_iommu=, iommu= from the kernel command line (the last one wins, as in the kernel)."""
    out: dict[str, str] = {}
    for token in cmdline.split():
        if token == "--":  # what follows is for init, not the kernel
            break
        key, sep, value = token.partition("=")
        if sep and key in IOMMU_OPTIONS:
            out[key] = value
    return out


# -- which hypervisor a guest runs under -----------------------------------------------------------------

# (needle in "sys_vendor product_name", lower case) -> hypervisor name; first match wins.
GUEST_OF_DMI: tuple[tuple[str, str], ...] = (
    ("microsoft corporation virtual machine", "Hyper-V"),
    ("qemu", "KVM"),
    ("kvm", "KVM"),
    ("vmware", "VMware"),
    ("virtualbox", "VirtualBox"),
    ("innotek", "VirtualBox"),
    ("xen", "Xen"),
    ("amazon ec2", "Amazon EC2"),
    ("google compute engine", "Google Compute Engine"),
)


def guest_of(sys_vendor: str | None, product_name: str | None, hypervisor_type: str | None) -> str | None:
    """The hypervisor named by DMI (/sys/class/dmi/id) or /sys/hypervisor/type; None when nothing says."""
    dmi = f"{sys_vendor or ''} {product_name or ''}".strip().lower()
    if dmi:
        for needle, name in GUEST_OF_DMI:
            if needle in dmi:
                return name
    if hypervisor_type:
        return {"xen": "Xen"}.get(hypervisor_type.strip().lower(), hypervisor_type.strip())
    return None


# -- VF details: `ip -j link show` shape (also what the netlink dump is saved as) -------------------------


@dataclass
class VfFacts:
    index: int
    mac: str | None = None
    vlan: int | None = None
    qos: int | None = None
    spoof_check: bool | None = None
    trust: bool | None = None
    link_state: str | None = None


def parse_ip_vfinfo(text: str) -> dict[str, list[VfFacts]]:
    """`ip -j link show` JSON (linux.md §1.3): per link, `vfinfo_list` of {vf, address, vlan_list|vlan, qos,
    spoofchk, trust, link_state}. Returns ifname -> VFs. Raises ValueError on text that is not that JSON."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a JSON array of links")
    out: dict[str, list[VfFacts]] = {}
    for link in data:
        if not isinstance(link, dict) or "ifname" not in link:
            continue
        vfs: list[VfFacts] = []
        for vf in link.get("vfinfo_list") or []:
            if not isinstance(vf, dict) or not isinstance(vf.get("vf"), int):
                continue
            vlan, qos = vf.get("vlan"), vf.get("qos")
            vlans = vf.get("vlan_list")
            if isinstance(vlans, list) and vlans and isinstance(vlans[0], dict):
                vlan, qos = vlans[0].get("vlan", vlan), vlans[0].get("qos", qos)
            state = vf.get("link_state")
            vfs.append(
                VfFacts(
                    index=vf["vf"],
                    mac=(str(vf["address"]).lower() if vf.get("address") else None),
                    vlan=vlan if isinstance(vlan, int) else None,
                    qos=qos if isinstance(qos, int) else None,
                    spoof_check=vf["spoofchk"] if isinstance(vf.get("spoofchk"), bool) else None,
                    trust=vf["trust"] if isinstance(vf.get("trust"), bool) else None,
                    link_state=state if state in ("auto", "enable", "disable") else None,
                )
            )
        out[str(link["ifname"])] = vfs
    return out


# -- ethtool -S ------------------------------------------------------------------------------------------


def parse_ethtool_stats(text: str) -> dict[str, int]:
    """`ethtool -S <if>`: a 'NIC statistics:' header, then '     name: value' lines."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().rpartition(":")
        value = value.strip()
        if sep and key and value.lstrip("-").isdigit():
            out[key.strip()] = int(value)
    return out


def format_ethtool_stats(stats: dict[str, int]) -> str:
    """The inverse of parse_ethtool_stats, in `ethtool -S` layout (what a capture saves)."""
    return "NIC statistics:\n" + "".join(f"     {k}: {v}\n" for k, v in stats.items())


# -- libvirt ---------------------------------------------------------------------------------------------

VIRSH_STATES = ("running", "idle", "paused", "in shutdown", "shut off", "crashed", "pmsuspended", "blocked")


def parse_virsh_list(text: str) -> list[tuple[str, str | None]]:
    """`virsh list --all`: ' Id   Name   State' header, a dashed rule, then rows ('-' id when shut off)."""
    out: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        row = line.strip()
        if not row or set(row) == {"-"} or row.split()[:2] == ["Id", "Name"]:
            continue
        parts = row.split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1].rstrip()
        state = next((s for s in VIRSH_STATES if rest.endswith(" " + s)), None)
        name = rest[: -len(state)].rstrip() if state else rest.split()[0]
        if name:
            out.append((name, state))
    return out


@dataclass
class DomainInterface:
    kind: str  # hostdev, bridge, network, direct, other
    name: str | None = None
    mac: str | None = None
    source: str | None = None  # bridge / network / direct device
    pci_address: str | None = None
    link_up: bool | None = None


@dataclass
class DomainFacts:
    name: str
    uuid: str | None = None
    interfaces: list[DomainInterface] = field(default_factory=list)


def _pci_from_address(addr: ET.Element | None) -> str | None:
    """<address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x2'/> -> '0000:03:00.2'."""
    if addr is None:
        return None
    try:
        dom, bus, slot, fn = (int(addr.get(k, "0"), 0) for k in ("domain", "bus", "slot", "function"))
    except ValueError:
        return None
    return f"{dom:04x}:{bus:02x}:{slot:02x}.{fn:x}"


def parse_domain_xml(text: str) -> DomainFacts:
    """`virsh dumpxml <dom>`: <interface type=...> (hostdev carries the VF's PCI address) and PCI <hostdev>s.
    Raises ValueError on XML it will not parse (DTDs/entities are refused outright)."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("domain XML with a DOCTYPE/ENTITY is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ValueError(f"invalid domain XML: {err}") from err
    dom = DomainFacts(name=(root.findtext("name") or "").strip(), uuid=(root.findtext("uuid") or "").strip() or None)
    devices = root.find("devices")
    if devices is None:
        return dom
    for iface in devices.findall("interface"):
        kind = iface.get("type", "other")
        src = iface.find("source")
        link = iface.find("link")
        target = iface.find("target")
        alias = iface.find("alias")
        mac = iface.find("mac")
        di = DomainInterface(
            kind=kind if kind in ("hostdev", "bridge", "network", "direct") else "other",
            name=(target.get("dev") if target is not None else None)
            or (alias.get("name") if alias is not None else None),
            mac=mac.get("address", "").lower() or None if mac is not None else None,
            link_up=None if link is None else link.get("state") == "up",
        )
        if src is not None:
            if kind == "hostdev":
                di.pci_address = _pci_from_address(src.find("address"))
            else:
                di.source = src.get("bridge") or src.get("network") or src.get("dev")
        dom.interfaces.append(di)
    for hd in devices.findall("hostdev"):
        if hd.get("type") != "pci":
            continue
        src = hd.find("source")
        alias = hd.find("alias")
        dom.interfaces.append(
            DomainInterface(
                kind="hostdev",
                name=alias.get("name") if alias is not None else None,
                pci_address=_pci_from_address(src.find("address") if src is not None else None),
            )
        )
    return dom


# -- capture names ---------------------------------------------------------------------------------------


def capture_name(argv: list[str] | tuple[str, ...]) -> str:
    """A predictable file name for a command's output, sos-style: `virsh -r list --all` -> virsh_-r_list_--all."""
    name = "_".join(argv)
    return re.sub(r"[^A-Za-z0-9._+=:@-]", "_", name)[:200]
