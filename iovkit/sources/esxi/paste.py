"""Pasted ESXi shell output -> sections by command -> an ESXi snapshot.

A paste is one or more files (a directory is read whole) holding the output of the commands that
`iovkit script collect --esxi` prints, with or without the `[root@host:~]` prompt lines, plus .vmx files.
With a prompt or a bare command line each section is named by its command; without one, a section is
recognised by its header (`Name  PCI Device  Driver  Admin Status`, `VF ID  Active`, `   Product:` ...).
Output that needs its command line to be understood (a VF list names no vmnic, a parameter list no module)
is recorded as a collection error that says exactly what to paste instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from iovkit.errors import InputError
from iovkit.snapshot import CollectionError, EsxiInfo, EsxiModule, EsxiPassthru, EsxiPciDevice, EsxiVf, HostSnapshot
from iovkit.sources.esxi import parsers as p
from iovkit.sources.esxi.build import NicRow, finish

_PROMPT = re.compile(r"^\s*\[(?P<user>[^\]@\s]+)@(?P<host>[^:\]\s]+)[^\]]*\]\s*[#$]?\s*(?P<cmd>.*)$")
_BARE = re.compile(r"^\s*(?:[#$>]\s+)?(?P<cmd>(?:esxcli|localcli|vim-cmd|lspci|esxcfg-module|cat|grep|zcat|tail)\b.*)$")
MAX_BYTES = 16 * 1024 * 1024


@dataclass
class Section:
    command: str | None  # None: recognised by its content
    kind: str
    arg: str | None
    text: str
    origin: str


@dataclass
class PasteFacts:
    host: str | None = None
    sections: list[Section] = field(default_factory=list)
    errors: list[CollectionError] = field(default_factory=list)


def classify_command(cmd: str) -> tuple[str, str | None]:
    """(kind, argument) for a command line; kind 'unknown' for commands iovkit does not read."""
    c = " ".join(cmd.replace("localcli", "esxcli").split())
    arg = None
    if m := re.search(r"(?:-n|--nic-name)[ =](\S+)", c):
        arg = m.group(1)
    if "sriovnic vf list" in c:
        return "vf-list", arg
    if "sriovnic list" in c:
        return "sriovnic-list", None
    if re.search(r"network nic list", c):
        return "nic-list", None
    if "system version get" in c:
        return "version", None
    if "system hostname get" in c:
        return "hostname", None
    if "module parameters list" in c:
        m = re.search(r"(?:-m|--module)[ =](\S+)", c)
        return "module-params", m.group(1) if m else None
    if c.startswith("esxcfg-module") and re.search(r"\s-g\b|--get-options", c):
        m = re.search(r"(\S+)\s*$", c)
        return "module-options", m.group(1) if m else None
    if "pcipassthru list" in c:
        return "pcipassthru", None
    if "hardware pci list" in c:
        return "pci-list", None
    if c.startswith("lspci"):
        return "lspci", None
    if "vm process list" in c:
        return "vm-process", None
    if ".vmx" in c:
        m = re.search(r"(\S+\.vmx)\b", c)
        return "vmx", m.group(1).strip("'\"") if m else None
    if c.startswith("vim-cmd hostsvc/host"):
        return "vmodl", None
    if "vmkernel" in c or "boot.gz" in c or "DMAR" in c:
        return "boot-log", None
    return "unknown", None


def _content_kind(line: str, nxt: str) -> str | None:
    """A section header recognised without a command line."""
    s = line.strip()
    if s.startswith("Name") and "PCI Device" in s and "Driver" in s:
        return "nic-list" if "Admin Status" in s else "sriovnic-list"
    if s.startswith("VF ID") and "Active" in s:
        return "vf-list"
    if re.match(r"^Name\s+Type\s+Value\s+Description", s):
        return "module-params"
    if re.match(r"^Device ID\s+Enabled", s):
        return "pcipassthru"
    if s.startswith("Product:") and "ESX" in s:
        return "version"
    if re.match(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$", s) and nxt.strip().startswith("Address:"):
        return "pci-list"
    if line and not line[0].isspace() and nxt.strip().startswith("World ID:"):
        return "vm-process"
    if re.match(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\s+(?!(?:true|false)\s*$)\S", s):
        return "lspci"  # (a pcipassthru row is an address and true/false)
    if p.BOOT_LOG.search(s):
        return "boot-log"
    if re.match(r"^(rebootRequired|inMaintenanceMode|cpuModel) = ", s):
        return "vmodl"
    if p.NO_SRIOV_NIC.search(s):
        return "vf-list"
    if re.match(r"^(enabled|options)\b", s) or p.parse_esxcfg_module_g(s):
        return "module-options"
    return None


def _vmx_start(line: str, prev: str) -> bool:
    """The first line of a .vmx file: `.encoding = ...`, or `config.version = ...` when no .encoding precedes it."""
    if re.match(r"^\.encoding\s*=", line):
        return True
    return bool(re.match(r"^config\.version\s*=", line)) and not re.match(r"^\.encoding\s*=", prev)


def split_sections(text: str, origin: str) -> PasteFacts:
    """Cut a paste into sections at prompt/command lines, or at recognised headers when there are none."""
    facts = PasteFacts()
    lines = text.splitlines()
    vmx_starts = [i for i, ln in enumerate(lines) if _vmx_start(ln, lines[i - 1] if i else "")]
    if (
        p.looks_like_vmx(text)
        and len(vmx_starts) <= 1
        and not any(_PROMPT.match(ln) or _BARE.match(ln) for ln in lines)
    ):
        facts.sections.append(Section(None, "vmx", origin, text, origin))
        return facts
    cur: Section | None = None
    buf: list[str] = []

    def close() -> None:
        if cur is not None:
            cur.text = "\n".join(buf)
            facts.sections.append(cur)

    for i, line in enumerate(lines):
        m = _PROMPT.match(line) or _BARE.match(line)
        if m:
            close()
            if "host" in m.groupdict() and m["host"]:
                facts.host = facts.host or m["host"]
            cmd = m["cmd"].strip()
            if not cmd:
                cur, buf = None, []
                continue
            kind, arg = classify_command(cmd)
            cur, buf = Section(cmd, kind, arg, "", origin), []
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        ck = None if (cur is not None and cur.command is not None) else _content_kind(line, nxt)
        if ck is None and i in vmx_starts and (cur is None or cur.command is None):
            close()  # .vmx files pasted one after another without their `cat` lines: one VM each
            cur, buf = Section(None, "vmx", origin, "", origin), []
        if ck is not None and (cur is None or cur.kind != ck or ck in ("nic-list", "vf-list", "version")):
            close()
            cur, buf = Section(None, ck, None, "", origin), []
        if cur is not None:
            buf.append(line)
    close()
    return facts


def read_paste(path: Path) -> PasteFacts:
    """Every section of a paste file, or of every file in a directory (sorted by name)."""
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    facts = PasteFacts()
    for f in files:
        try:
            if f.stat().st_size > MAX_BYTES:
                raise InputError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not a paste", path=str(f))
            text = f.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as err:
            raise InputError(f"cannot read: {err.strerror}", path=str(f)) from err
        one = split_sections(text, str(f))
        facts.host = facts.host or one.host
        facts.sections.extend(one.sections)
    if not any(s.kind not in ("unknown",) for s in facts.sections):
        raise InputError(
            "no ESXi command output recognised; paste what `iovkit script collect --esxi` lists", path=str(path)
        )
    return facts


def looks_like_esxi(text: str) -> bool:
    """Enough to route a file to this parser: an ESXi prompt, an esxcli/vim-cmd line, a .vmx or a known header."""
    if p.looks_like_vmx(text):
        return True
    if re.search(r"^\s*\[[^\]]+@[^\]]+\]\s*(esxcli|localcli|vim-cmd|lspci|esxcfg-module)", text, re.M):
        return True
    if re.search(r"^\s*(?:[#$]\s+)?(esxcli|localcli|vim-cmd|esxcfg-module)\s", text, re.M):
        return True
    lines = text.splitlines()
    return any(
        _content_kind(ln, lines[i + 1] if i + 1 < len(lines) else "")
        in ("nic-list", "sriovnic-list", "vf-list", "version", "pci-list", "vm-process", "pcipassthru")
        for i, ln in enumerate(lines[:200])
    )


# -- sections -> facts ----------------------------------------------------------------------------------------


def _missing_arg(sec: Section, what: str, cmd: str) -> CollectionError:
    return CollectionError(
        source=cmd,
        error=f"{sec.origin}: {what} output without its command line; paste it with the command, e.g. `{cmd}`",
    )


def snapshot_from_paste(path: Path) -> HostSnapshot:
    facts = read_paste(path)
    return snapshot_from_sections(facts, str(path))


def snapshot_from_sections(facts: PasteFacts, origin: str) -> HostSnapshot:
    info = EsxiInfo()
    nics: list[NicRow] = []
    errors = list(facts.errors)
    host = facts.host
    lspci: list[p.LspciLine] = []
    vmx_seen: set[str] = set()
    lspci_filtered = False
    for sec in facts.sections:
        t = sec.text
        match sec.kind:
            case "version":
                kv = p.parse_version_get(t)
                info.product = kv.get("Product") or info.product
                info.version = kv.get("Version") or info.version
                info.update = kv.get("Update") or info.update
                info.build = kv.get("Build") or info.build
            case "hostname":
                kv = p.parse_key_values(t)
                host = kv.get("Host Name") or host
            case "nic-list":
                for r in p.parse_nic_list(t):
                    nics.append(NicRow.from_esxcli(r))
            case "sriovnic-list":
                info.sriov_nics = [r["Name"] for r in p.parse_sriovnic_list(t) if r.get("Name")]
            case "vf-list":
                rows = p.parse_vf_list(t)
                nic = sec.arg
                if rows is None:
                    m = p.NO_SRIOV_NIC.search(t)
                    nic = nic or (m.group(1) if m else None)
                    if nic:
                        info.vf_lists.append(nic)
                    continue
                if nic is None:
                    errors.append(_missing_arg(sec, "a VF list", "esxcli network sriovnic vf list -n vmnic0"))
                    continue
                info.vf_lists.append(nic)
                for r in rows:
                    raw = r.get("PCI Address") or None
                    owner = r.get("Owner World ID", "").strip()
                    info.vfs.append(
                        EsxiVf(
                            pf=nic,
                            index=int(r.get("VF ID", "0") or 0),
                            active={"true": True, "false": False}.get(r.get("Active", "").lower()),
                            pci_address=p.vf_list_address(raw) if raw else None,
                            pci_address_raw=raw,
                            owner_world_id=int(owner) if owner.isdigit() else None,
                        )
                    )
            case "module-params":
                if sec.arg is None:
                    errors.append(
                        _missing_arg(sec, "a module parameter list", "esxcli system module parameters list -m i40en")
                    )
                    continue
                mod = _module(info, sec.arg)
                for r in p.parse_module_parameters(t):
                    name = r.get("Name", "")
                    if not name:
                        continue
                    mod.params[name] = r.get("Value") or None
                    if name == "max_vfs":
                        mod.max_vfs_range = p.max_vfs_range(r.get("Description"))
                mod.has_max_vfs = "max_vfs" in mod.params
            case "module-options":
                got = p.parse_esxcfg_module_g(t)
                if got:
                    _module(info, got[0]).options = got[1]
            case "pcipassthru":
                info.passthru = info.passthru or []
                for r in p.parse_pcipassthru_list(t):
                    bdf = p.normalize_bdf(r.get("Device ID"))
                    if bdf:
                        en = r.get("Enabled", "").lower()
                        info.passthru.append(
                            EsxiPassthru(id=bdf, passthru_enabled={"true": True, "false": False}.get(en))
                        )
            case "pci-list":
                info.pci_devices = info.pci_devices or []
                for r in p.parse_pci_list(t):
                    bdf = p.normalize_bdf(r.get("Address") or r.get("_title"))
                    if not bdf:
                        continue
                    info.pci_devices.append(
                        EsxiPciDevice(
                            id=bdf,
                            vendor_id=_hex(r.get("Vendor ID")),
                            device_id=_hex(r.get("Device ID")),
                            class_id=_hex(r.get("Device Class")),
                            vendor_name=r.get("Vendor Name"),
                            device_name=r.get("Device Name"),
                            vmkernel_name=r.get("VMkernel Name") or None,
                            module_name=r.get("Module Name") or None,
                            current_owner=r.get("Current Owner"),
                        )
                    )
            case "lspci":
                lspci.extend(p.parse_lspci(t))
                lspci_filtered = lspci_filtered or sec.command is None or "|" in sec.command
            case "vm-process":
                info.worlds = (info.worlds or []) + p.parse_vm_process_list(t)
            case "vmx":
                vm = p.vm_from_vmx(t, sec.arg)
                if vm.name not in vmx_seen:
                    vmx_seen.add(vm.name)
                    info.vms.append(vm)
            case "vmodl":
                kv = p.parse_vmodl_text(t)
                if "rebootRequired" in kv:
                    info.reboot_required = kv["rebootRequired"] == "true"
                if "inMaintenanceMode" in kv:
                    info.in_maintenance_mode = kv["inMaintenanceMode"] == "true"
                model = kv.get("cpuModel", "").lower()
                if "intel" in model or "amd" in model:
                    info.cpu_vendor = "intel" if "intel" in model else "amd"
            case "boot-log":
                info.boot_log = (info.boot_log or []) + p.parse_boot_log(t)
    if not nics and not info.vms and info.version is None:
        raise InputError(
            "the paste has neither `esxcli network nic list`, `esxcli system version get` nor a .vmx file; "
            "run the commands `iovkit script collect --esxi` prints",
            path=origin,
        )
    return finish(
        info,
        nics,
        host=host,
        kind="esxi-paste",
        origin=origin,
        errors=errors,
        lspci=lspci,
        lspci_filtered=lspci_filtered,
    )


def _module(info: EsxiInfo, name: str) -> EsxiModule:
    mod = info.module(name)
    if mod is None:
        mod = EsxiModule(name=name)
        info.modules.append(mod)
    return mod


def _hex(v: str | None) -> int | None:
    if not v:
        return None
    try:
        return int(v, 16)
    except ValueError:
        return None
