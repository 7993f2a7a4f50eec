"""Parsers for what an ESXi shell prints: each a small pure function of text, named for its command.

Shapes are the verbatim ones in reference esxi.md §3: esxcli tables (a dash rule, or only a header when the
output was grep'd), `Key: value` blocks, lspci lines and .vmx `key = "value"` lines. Column widths vary with
the data, so a table row is cut at runs of two or more spaces and, when a cell is empty, placed by the header's
column positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from iovkit.snapshot import EsxiVm, EsxiVmAdapter, EsxiWorld

_DASHES = re.compile(r"^\s*-{3,}(\s+-{2,})*\s*$")


def _tokens(line: str) -> list[tuple[int, int, str]]:
    """Cells separated by two or more spaces, with their (start, end) columns."""
    out: list[tuple[int, int, str]] = []
    for m in re.finditer(r"\S+(?: \S+)*", line):
        out.append((m.start(), m.end(), m.group(0)))
    return out


def parse_table(text: str) -> list[dict[str, str]]:
    """An esxcli table: header, optional dash rule(s), rows. Empty cells come back as ''."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0]
    body = lines[1:]
    cols = _tokens(header)
    if body and _DASHES.match(body[0]):
        rule = body[0]
        groups = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
        if len(groups) == len(cols):  # one dash run per column: its span is the column's span
            cols = [(a, b, name) for (a, b), (_, _, name) in zip(groups, cols, strict=True)]
        body = body[1:]
    names = [c[2] for c in cols]
    rows: list[dict[str, str]] = []
    for line in body:
        if _DASHES.match(line):
            continue
        toks = _tokens(line)
        if len(toks) == len(cols):
            rows.append({n: t[2] for n, t in zip(names, toks, strict=True)})
            continue
        if len(toks) > len(cols):  # the last column (a description) may hold double spaces
            head = toks[: len(cols) - 1]
            rest = line[toks[len(cols) - 1][0] :].strip()
            rows.append({**{n: t[2] for n, t in zip(names, head, strict=True)}, names[-1]: rest})
            continue
        row = dict.fromkeys(names, "")
        bounds = [c[0] for c in cols[1:]] + [10**6]
        for a, b, val in toks:
            # The column this cell overlaps most (values may be right-aligned under their header).
            best = max(range(len(cols)), key=lambda i: min(b, bounds[i]) - max(a, cols[i][0] if i else 0))
            row[names[best]] = (row[names[best]] + " " + val).strip()
        rows.append(row)
    return rows


def parse_key_values(text: str) -> dict[str, str]:
    """`   Key: value` lines (esxcli system version get and similar single-record output)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z][\w ()/.-]*?):\s*(.*?)\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def parse_version_get(text: str) -> dict[str, str]:
    """`esxcli system version get`: Product, Version, Build, Update, Patch."""
    return parse_key_values(text)


def parse_blocks(text: str) -> list[tuple[str, dict[str, str]]]:
    """Records that start at column 0 with a title and continue with indented `Key: value` lines.

    `esxcli hardware pci list` (title = the address) and `esxcli vm process list` (title = display name).
    """
    blocks: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            blocks.append((line.strip(), {}))
            continue
        m = re.match(r"^\s+([^:]+?):\s?(.*?)\s*$", line)
        if m and blocks:
            blocks[-1][1][m.group(1)] = m.group(2)
    return blocks


def parse_nic_list(text: str) -> list[dict[str, str]]:
    """`esxcli network nic list` (also `network sriovnic list`, which has Link instead of Admin/Link Status)."""
    return parse_table(text)


def parse_sriovnic_list(text: str) -> list[dict[str, str]]:
    """`esxcli network sriovnic list`: the SR-IOV capable vmnics (empty when the IOMMU is missing)."""
    return parse_table(text)


NO_SRIOV_NIC = re.compile(r"There is no SRIOV Nic with name (\S+)")


def parse_vf_list(text: str) -> list[dict[str, str]] | None:
    """`esxcli network sriovnic vf list -n vmnicN`; None when ESXi says the vmnic has no SR-IOV."""
    if NO_SRIOV_NIC.search(text):
        return None
    return parse_table(text)


def parse_module_parameters(text: str) -> list[dict[str, str]]:
    """`esxcli system module parameters list -m MOD`: Name, Type, Value (often empty), Description."""
    return parse_table(text)


def parse_pci_list(text: str) -> list[dict[str, str]]:
    """`esxcli hardware pci list`: one block per PCI function, keyed by its address line."""
    return [{"_title": title, **kv} for title, kv in parse_blocks(text)]


def parse_pcipassthru_list(text: str) -> list[dict[str, str]]:
    """`esxcli hardware pci pcipassthru list` (ESXi 7.0+): Device ID, Enabled."""
    return parse_table(text)


def parse_vm_process_list(text: str) -> list[EsxiWorld]:
    """`esxcli vm process list`: display name, World ID, VMX Cartel ID, Config File."""
    out = []
    for title, kv in parse_blocks(text):
        out.append(
            EsxiWorld(
                display_name=kv.get("Display Name") or title,
                world_id=_int(kv.get("World ID")),
                vmx_cartel_id=_int(kv.get("VMX Cartel ID")),
                config_file=kv.get("Config File"),
            )
        )
    return out


_LSPCI = re.compile(r"^(?P<addr>[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(?P<rest>.*)$")
_LSPCI_P = re.compile(
    r"^(?P<addr>\S+)\s+(?P<vid>[0-9a-f]{4}):(?P<did>[0-9a-f]{4})\s+[0-9a-f]{4}:[0-9a-f]{4}\s+.*?"
    r"(?P<flag>[A@])\s+(?P<mode>[VP])\s+(?P<module>\S+)\s*$"
)
_VF_TAG = re.compile(r"\[PF_(\d+)\.(\d+)\.(\d+)_VF_(\d+)\]\s*$")
_NIC_TAG = re.compile(r"\[(vmnic\d+)\]\s*$")


@dataclass(frozen=True)
class LspciLine:
    address: str
    text: str
    vmnic: str | None = None
    vf_of: tuple[int, int, int] | None = None  # (segment, bus decimal, function) of the PF
    vf_index: int | None = None
    vendor_id: int | None = None
    device_id: int | None = None
    module: str | None = None


def parse_lspci(text: str) -> list[LspciLine]:
    """ESXi `lspci`, `lspci -vn` and `lspci -p`.

    Default lines end in `[vmnicN]` (a PF) or `[PF_<seg>.<bus decimal>.<func>_VF_<n>]` (a VF). `-p` lines carry
    vendor:device and the owning module; their flag columns are undocumented, so only the ids and module are kept.
    """
    out: list[LspciLine] = []
    for raw in text.splitlines():
        line = raw.strip()
        m = _LSPCI.match(line)
        if not m:
            continue
        addr, rest = m.group("addr").lower(), m.group("rest")
        p = _LSPCI_P.match(line)
        if p:
            out.append(
                LspciLine(addr, rest, vendor_id=int(p["vid"], 16), device_id=int(p["did"], 16), module=p["module"])
            )
            continue
        vf = _VF_TAG.search(rest)
        nic = _NIC_TAG.search(rest)
        ids = re.search(r"Class [0-9a-f]{4}: ([0-9a-f]{4}):([0-9a-f]{4})", rest)
        out.append(
            LspciLine(
                addr,
                rest,
                vmnic=nic.group(1) if nic else None,
                vf_of=(int(vf[1]), int(vf[2]), int(vf[3])) if vf else None,
                vf_index=int(vf[4]) if vf else None,
                vendor_id=int(ids[1], 16) if ids else None,
                device_id=int(ids[2], 16) if ids else None,
            )
        )
    return out


# -- PCI addresses: decimal (vmx, VF list before 8.0 U3) and hex (everything else) ----------------------------

_DEC5 = re.compile(r"^(\d{5}):(\d{3}):(\d{2})\.(\d)$")
_HEX = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
_DEC_LOOSE = re.compile(r"^(\d{1,5}):(\d{1,3}):(\d{1,2})\.(\d)$")


def hex_bdf(domain: int, bus: int, slot: int, func: int) -> str:
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{func:x}"


def vf_list_address(raw: str) -> str | None:
    """A VF list's PCI Address as hex: `00000:027:00.1` (decimal, before 8.0 U3) or `0000:4b:11.0` (hex, 8.0 U3+).

    The two forms differ in width (5-digit domain, 3-digit bus vs 4 and 2), so the shape decides, not the version.
    """
    raw = raw.strip()
    if m := _DEC5.match(raw):
        return hex_bdf(*(int(g) for g in m.groups()))
    if m := _HEX.match(raw):
        return hex_bdf(*(int(g, 16) for g in m.groups()))
    return None


def vmx_address(raw: str) -> str | None:
    """A .vmx PCI id (always decimal: `00000:026:00.1`, or unpadded `0:66:0.0`) as hex; None if not decimal.

    A hex id (`0000:1a:00.1`) is what ESXi rejects with `AH No device hints found`: it returns None.
    """
    raw = raw.strip()
    if raw.lower().startswith("automatic"):
        return None
    if m := _DEC_LOOSE.match(raw):
        return hex_bdf(*(int(g) for g in m.groups()))
    return None


def normalize_bdf(raw: str | None) -> str | None:
    """An API/esxcli hex PCI id (`0000:03:00.0`), lower-cased; None when it is not one."""
    if not raw:
        return None
    m = _HEX.match(raw.strip())
    return hex_bdf(*(int(g, 16) for g in m.groups())) if m else None


# -- .vmx ----------------------------------------------------------------------------------------------------

_VMX_LINE = re.compile(r'^\s*([A-Za-z0-9_.:\[\]-]+)\s*=\s*"(.*)"\s*$')


def parse_vmx(text: str) -> dict[str, str]:
    """A .vmx file: `key = "value"` lines; keys lower-cased (ESXi treats them case-insensitively)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _VMX_LINE.match(line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def looks_like_vmx(text: str) -> bool:
    keys = parse_vmx(text)
    return "virtualhw.version" in keys or ("config.version" in keys and "displayname" in keys)


def _truthy(v: str | None) -> bool | None:
    if v is None:
        return None
    return v.strip().lower() in ("true", "1", "yes")


def _int(v: str | None) -> int | None:
    if v is None:
        return None
    try:
        return int(v.strip(), 0)
    except ValueError:
        return None


def vm_from_vmx(text: str, path: str | None = None) -> EsxiVm:
    """The VM a .vmx describes: hardware version, memory and its reservation, SR-IOV and emulated adapters.

    SR-IOV cards are `pciPassthruN.*` entries with a `pfId` (esxi.md §3.9); plain DirectPath devices have none
    and are not network adapters here. `ethernetN.virtualDev` gives vmxnet3 / e1000 / e1000e.
    """
    kv = parse_vmx(text)
    adapters: list[EsxiVmAdapter] = []
    for n in sorted({k.split(".")[0] for k in kv if re.match(r"pcipassthru\d+\.", k)}, key=_natural):
        pf_raw = kv.get(f"{n}.pfid")
        if pf_raw is None:
            continue
        adapters.append(
            EsxiVmAdapter(
                name="pciPassthru" + n[len("pcipassthru") :],
                type="sriov",
                pf=vmx_address(pf_raw),
                pf_raw=pf_raw,
                network=kv.get(f"{n}.networkname") or kv.get(f"{n}.dvs.portgroupid"),
                mac=kv.get(f"{n}.macaddress") or kv.get(f"{n}.generatedaddress"),
                present=_truthy(kv.get(f"{n}.present")),
                allow_guest_mtu_change=_truthy(kv.get(f"{n}.allowmtuchange")),
            )
        )
    for n in sorted({k.split(".")[0] for k in kv if re.match(r"ethernet\d+\.", k)}, key=_natural):
        dev = (kv.get(f"{n}.virtualdev") or "").lower()
        kind = "vmxnet3" if dev == "vmxnet3" else "e1000" if dev.startswith("e1000") else "other"
        adapters.append(
            EsxiVmAdapter(
                name="ethernet" + n[len("ethernet") :],
                type=kind,
                network=kv.get(f"{n}.networkname") or kv.get(f"{n}.dvs.portgroupid"),
                mac=kv.get(f"{n}.address") or kv.get(f"{n}.generatedaddress"),
                present=_truthy(kv.get(f"{n}.present")),
            )
        )
    hw = kv.get("virtualhw.version")
    mem = _int(kv.get("memsize"))
    res = _int(kv.get("sched.mem.min"))
    pin = _truthy(kv.get("sched.mem.pin"))
    name = kv.get("displayname") or (path.rsplit("/", 1)[-1].removesuffix(".vmx") if path else "vm")
    # An absent sched.mem.* key means "no reservation" only in a whole file (every .vmx has virtualHW.version and
    # config.version); a `grep mem x.vmx` shows only what it matched.
    whole = mem is not None and ("virtualhw.version" in kv or "config.version" in kv)
    return EsxiVm(
        name=name,
        vmx_path=path,
        hw_version=_int(hw) if hw else None,
        memory_mb=mem,
        reservation_mb=res if res is not None else (0 if pin is not None or whole else None),
        reserve_all=pin if pin is not None else (False if whole else None),
        adapters=adapters,
    )


def _natural(key: str) -> tuple[str, int]:
    m = re.match(r"([a-z]+)(\d+)", key)
    return (m.group(1), int(m.group(2))) if m else (key, 0)


# -- module options and the boot log -------------------------------------------------------------------------

_CFG_MODULE = re.compile(r"^(\S+)\s+enabled\s*=\s*\d+\s+options\s*=\s*'(.*)'\s*$")


def parse_esxcfg_module_g(text: str) -> tuple[str, str] | None:
    """`esxcfg-module -g MOD`: `nmlx5_core enabled = 1 options = 'pfctx=0x08 max_vfs=4'` -> (module, options)."""
    for line in text.splitlines():
        m = _CFG_MODULE.match(line.strip())
        if m:
            return m.group(1), m.group(2)
    return None


def parse_option_string(options: str) -> dict[str, str]:
    """`pfctx=0x08 max_vfs=0,8` -> {'pfctx': '0x08', 'max_vfs': '0,8'} (order kept)."""
    out: dict[str, str] = {}
    for part in options.split():
        k, _, v = part.partition("=")
        if k:
            out[k] = v
    return out


BOOT_LOG = re.compile(r"(ACPI DMAR table not found|IOV initialization failed|VTD:|IOV:)", re.IGNORECASE)


def parse_boot_log(text: str) -> list[str]:
    """The DMAR/IOV lines of vmkernel.log (esxi.md §1.2): `WARNING: VTD: 733: ACPI DMAR table not found`."""
    return [ln.strip() for ln in text.splitlines() if BOOT_LOG.search(ln)]


def max_vfs_range(description: str | None) -> str | None:
    """'Maximum number of VFs to be enabled (0..128)' -> '0..128'; nmlx5 'range 0-128' -> '0..128'."""
    if not description:
        return None
    m = re.search(r"\((\d+)\.\.(\d+)\)", description) or re.search(r"range (\d+)-(\d+)", description)
    return f"{m.group(1)}..{m.group(2)}" if m else None


_VMODL = re.compile(r'^\s*(\w+) = (?:"(.*)"|(true|false|-?\d+)),?\s*$')


def parse_vmodl_text(text: str) -> dict[str, str]:
    """`name = value,` lines of vim-cmd's vmodl text (`vim-cmd hostsvc/hostsummary`, `hostsvc/hosthardware`).

    Nesting is dropped: the last value of a name wins, which is enough for rebootRequired, inMaintenanceMode and
    cpuModel (esxi.md §3.8: scripts grep these lines the same way).
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _VMODL.match(line)
        if m:
            out[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
    return out
