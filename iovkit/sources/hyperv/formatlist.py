"""Read PowerShell `Format-List` text: pasted into a ticket, or the .txt files of a Get-NetView capture.

What the text looks like (PowerShell's list formatter, 5.1 and 7; see reference netview.md "Blank lines"):
- one record = lines `Label<padding> : value`, the label column as wide as the record's longest label, records
  separated by blank lines; an empty value prints `Label : ` (or `Label :` once a ticket trimmed it);
- a long value wraps onto continuation lines indented to the value column;
- a collection prints `{a, b}`, cut after $FormatEnumerationLimit items with `...` (`{a, b, c, d...}`), and a
  value cut at the console width ends in `...`; the truncated text is kept and reported in snapshot.errors;
- values may themselves contain ` : ` (only the first separator on a line counts);
- a `PS C:\\> Get-VMSwitch | fl *iov*` prompt line (optional) names the cmdlet of the records below it;
  without prompts each record is recognised by its properties (`classify`).
Get-NetView adds `<user> @ <COMPUTER>:` lines and `[Failed]`/`[Unavailable]`/`[NotRun]` status lines.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from iovkit.errors import InputError
from iovkit.snapshot import HostSnapshot
from iovkit.sources.hyperv import pasted
from iovkit.sources.hyperv.normalize import SOURCES, RawHost, build_snapshot
from iovkit.sources.windows import read_text

_PROMPT = re.compile(r"^\s*(?:\[[^\]]+\]:\s*)?PS(?: [^>]*)?>\s?(?P<cmd>.*)$")  # also a remote `[hv01]: PS C:\>`
_WHO = re.compile(r"^(?P<user>\S+) @ (?P<host>[^\s:]+):\s*$")
_STATUS = re.compile(r"^\[(NotRun|Unavailable|Failed)\]\s*$")
# A label may itself hold colons (Get-NetAdapterRss: `BaseProcessor: [Group:Number] : 0:0`): the separator is the
# first " :" that is followed by a space or the end of the line.
_LABEL = re.compile(r"^(?P<label>[^\s:](?:(?! : ).)*?)\s+:(?: (?P<value>.*))?$")
_LABEL_SUFFIX = re.compile(r":\s*\[[^\]]*\]\s*$")  # "BaseProcessor: [Group:Number]" -> "BaseProcessor"
_CMDLET = re.compile(r"\b([A-Za-z]+-[A-Za-z][A-Za-z0-9]*)\b")
_WMI_CLASS = re.compile(r"\b(Win32_[A-Za-z]+)\b", re.IGNORECASE)
# Sentence-valued string[] properties: their items contain ", " themselves, so split only between sentences.
_SENTENCE_FIELDS = {"iovsupportreasons", "statusdescription"}
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s*,\s+(?=[A-Z])")
_CANON = {s.lower(): s for s in SOURCES}


@dataclass
class Chunk:
    """The output of one command (or of the whole text when there are no prompts)."""

    command: str | None = None
    status: str | None = None
    lines: list[str] = field(default_factory=list)


@dataclass
class ListRecord:
    values: dict[str, object]
    truncated: list[str] = field(default_factory=list)


def _clean(text: str) -> str:
    text = text.replace("\x00", "").replace("\ufffd", "").replace("\r\n", "\n").replace("\r", "\n")
    if "&gt;" in text or "&lt;" in text or "&amp;" in text:  # copied from a web page: `PS C:\&gt; Get-VMHost`
        text = html.unescape(text)
    return text


def looks_like_formatlist(text: str) -> bool:
    """Cheap test on a file's head: a `PS C:\\>` prompt, at least two `Name : value` lines, a table view of a
    cmdlet iovkit reads, or bare IovSupportReasons lines."""
    lines = _clean(text).splitlines()[:200]
    if any(_PROMPT.match(ln) for ln in lines):
        return True
    if sum(1 for ln in lines if _LABEL.match(ln.strip())) >= 2:
        return True
    if any(classify(dict.fromkeys(t.headers, "")) for t in pasted.find_tables(lines)):
        return True
    return bool(pasted.reason_lines(lines))


def split_commands(text: str) -> tuple[list[Chunk], str | None]:
    """Cut text at prompt lines; also return the computer name from Get-NetView's `user @ HOST:` lines."""
    chunks = [Chunk()]
    computer: str | None = None
    expect_status = False
    for line in _clean(text).split("\n"):
        who = _WHO.match(line)
        if who:
            computer = computer or who.group("host")
            continue
        prompt = _PROMPT.match(line)
        if prompt:
            chunks.append(Chunk(command=prompt.group("cmd").strip()))
            expect_status = True
            continue
        if expect_status and _STATUS.match(line.strip()):
            chunks[-1].status = line.strip()[1:-1]
            continue
        expect_status = expect_status and not line.strip()
        chunks[-1].lines.append(line.rstrip())
    return [c for c in chunks if c.command is not None or any(ln.strip() for ln in c.lines)], computer


def _value(label: str, text: str) -> tuple[object, bool]:
    """One printed value -> (str | list[str] | None, truncated)."""
    text = text.strip()
    if text == "":
        return None, False
    if text.startswith("{"):
        inner = text[1:]
        closed = inner.endswith("}")
        inner = inner[:-1] if closed else inner
        truncated = inner.endswith("...") or not closed
        if inner.strip() == "":
            return [], truncated
        splitter = _SENTENCE_SPLIT if label.lower() in _SENTENCE_FIELDS else re.compile(r",\s+")
        return [p.strip() for p in splitter.split(inner) if p.strip()], truncated
    return text, text.endswith("...")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def parse_records(lines: list[str]) -> list[ListRecord]:
    """Blank-line separated groups of `Label : value` lines -> records; groups that are not a list (tables,
    raw strings, systeminfo) are skipped."""
    groups: list[list[str]] = [[]]
    for ln in lines:
        if ln.strip():
            groups[-1].append(ln.rstrip())
        elif groups[-1]:
            groups.append([])
    out: list[ListRecord] = []
    for group in groups:
        if not group:
            continue
        base = _indent(group[0])
        body = [ln[base:] if _indent(ln) >= base else ln.lstrip() for ln in group]
        pairs: list[list[str]] = []
        matched = 0
        # Values wrap at spaces; only a word longer than the column is cut, and then its line is filled to the
        # console's edge with no space in it: join those pieces without a space.
        edge = max(len(ln) for ln in body)
        prev_len, prev_piece = 0, ""
        for ln in body:
            if ln[:1] in (" ", "\t"):
                if pairs:
                    glue = "" if prev_len >= edge and " " not in prev_piece.strip() else " "
                    pairs[-1][1] = (pairs[-1][1] + glue + ln.strip()).strip()
                prev_len, prev_piece = len(ln), ln.strip()
                continue
            prev_len = len(ln)
            prev_piece = ln.split(" : ", 1)[1] if " : " in ln else ""
            m = _LABEL.match(ln)
            if m:
                matched += 1
                pairs.append([_LABEL_SUFFIX.sub("", m.group("label").strip()), m.group("value") or ""])
        non_cont = sum(1 for ln in body if ln[:1] not in (" ", "\t"))
        if not pairs or not _LABEL.match(body[0]) or matched * 2 < non_cont:
            continue
        rec = ListRecord(values={})
        for label, text in pairs:
            value, cut = _value(label, text)
            rec.values.setdefault(label, value)
            if cut:
                rec.truncated.append(label)
        out.append(rec)
    return out


def cmdlet_of(command: str | None) -> str | None:
    """`Get-VMSwitch | fl *iov*` -> Get-VMSwitch; `Get-CimInstance Win32_Processor | fl *` -> Win32_Processor;
    a command iovkit does not read -> "" (its records are skipped); no command -> None (classify records)."""
    if command is None:
        return None
    if "vmsmp" in command.lower():  # Get-ItemProperty HKLM:\...\Services\VMSMP\Parameters
        return "VMSMP-Parameters"
    wmi = _WMI_CLASS.search(command)
    first = _CMDLET.search(command)
    if wmi and (first is None or first.group(1).lower() in ("get-ciminstance", "get-wmiobject")):
        return _CANON.get(wmi.group(1).lower(), "")
    if first is None:
        return None
    return _CANON.get(first.group(1).lower(), "")


def classify(values: dict[str, object]) -> str | None:
    """Recognise a record without a prompt by its properties."""
    k = {key.lower() for key in values}
    if "loadbalancingalgorithm" in k and "netadapterinterfacedescription" in k and "iovenabled" not in k:
        return "Get-VMSwitchTeam"
    if "teamnics" in k or ("members" in k and "teamingmode" in k):
        return "Get-NetLbfoTeam"
    if k & {"iovenabled", "embeddedteamingenabled", "netadapterinterfacedescriptions"} or (
        "switchtype" in k and "netadapterinterfacedescription" in k
    ):
        return "Get-VMSwitch"
    if "iovsupport" in k or k & {"virtualmachinepath", "macaddressminimum", "numaspanningenabled"}:
        return "Get-VMHost"
    if {"logicalprocessorcount", "virtualmachinemigrationenabled"} <= k:
        return "Get-VMHost"  # its default table view
    if "queueid" in k:
        return "Get-NetAdapterVmqQueue"
    if k & {"belowtengigvmqenabled", "tengigvmqenabled"}:
        return "VMSMP-Parameters"
    if "functionid" in k and k & {"vmfriendlyname", "currentmacaddress", "vmnicid", "vmid"}:
        return "Get-NetAdapterSriovVf"
    if k & {"sriovsupport", "numvfs", "numallocatedvfs"}:
        return "Get-NetAdapterSriov"
    if k & {"ismanagementos", "iovweight", "vmqweight", "vfdatapathactive"} or (
        {"vmname", "macaddress", "switchname"} <= k
    ):
        return "Get-VMNetworkAdapter"
    if "state" in k and k & {"generation", "processorcount", "uptime", "memorystartup"}:
        return "Get-VM"
    if "producttype" in k or {"buildnumber", "caption"} <= k:
        return "Win32_OperatingSystem"
    if "secondleveladdresstranslationextensions" in k or {"numberoflogicalprocessors", "processorid"} <= k:
        return "Win32_Processor"
    if any(x.startswith("hypervrequirement") for x in k) or k & {"csname", "osname", "windowsproductname"}:
        return "Get-ComputerInfo"
    if "hypervisorpresent" in k:
        return "Win32_ComputerSystem"
    if k & {"profile", "indirectiontable", "rssprocessorarray", "numberofinterruptmessages"}:
        return "Get-NetAdapterRss"
    if k & {"basevmqprocessor", "lookaheadsplit", "numberofreceivequeues"}:
        return "Get-NetAdapterVmq"
    if "interfacedescription" in k and k & {"linkspeed", "ifindex", "macaddress", "driverfilename"}:
        return "Get-NetAdapter"
    return None


def add_text(
    raw: RawHost,
    text: str,
    where: str,
    default_cmdlet: str | None = None,
    *,
    tables: bool = True,
    complete: bool = False,
) -> int:
    """Add every known record of a Format-List text (and, with `tables`, of table views and bare reason lines)
    to `raw`; return how many were recognised. `complete`: the text was written by a program (Get-NetView), so
    a command that lists everything and printed nothing means "none"; in a paste it may just have been cut."""
    chunks, computer = split_commands(text)
    raw.computer_name = raw.computer_name or computer
    found = 0
    reported: set[tuple[str, str]] = {(s, e.split(" ", 1)[0]) for s, e in raw.errors}
    for chunk in chunks:
        cmdlet = cmdlet_of(chunk.command)
        if chunk.command is None and default_cmdlet:
            cmdlet = default_cmdlet
        if cmdlet == "":
            continue
        if chunk.status == "Failed" and cmdlet:
            detail = " ".join(ln.strip() for ln in chunk.lines if ln.strip())[:300]
            raw.errors.append((cmdlet, f"failed in {where}: {detail}".rstrip(": ")))
            continue
        before = found
        mgmt_only = bool(chunk.command and re.search(r"-managementos\b", chunk.command, re.IGNORECASE))
        for rec in parse_records(chunk.lines):
            name = cmdlet or classify(rec.values)
            if name is None:
                continue
            if name == "Get-VMNetworkAdapter" and mgmt_only:  # `-ManagementOS | fl Name, ...` lacks the flag
                rec.values.setdefault("IsManagementOs", "True")
            raw.add(name, rec.values)
            found += 1
            for label in rec.truncated:
                if (name, label) not in reported:
                    reported.add((name, label))
                    raw.errors.append(
                        (
                            name,
                            f"{label} truncated by Format-List ('...') in {where}; read it with "
                            f"$FormatEnumerationLimit = -1 or the collector script",
                        )
                    )
        if tables:
            found += _add_tables(raw, chunk, cmdlet, where)
        if found == before and tables:
            found += _add_reasons(raw, chunk)
        empty = not any(ln.strip() for ln in chunk.lines)
        if complete and found == before and cmdlet and chunk.status is None and empty and _unfiltered(chunk.command):
            raw.seen.add(cmdlet)  # it ran over everything and printed nothing: none, not "not collected"
    return found


_UNFILTERED = re.compile(
    r"^\s*get-[a-z]+(?:\s+-(?:all|includehidden))*\s*(?:\|\s*(?:sort-object|sort|fl|format-list|ft|format-table)\b[^|]*)*$",
    re.IGNORECASE,
)


def _unfiltered(command: str | None) -> bool:
    """`Get-NetLbfoTeam` or `Get-VMSwitch | Format-List *`: a command that lists every object, so no output means
    none. A filtered one (`-VMName relay-01`, `Where-Object`) printing nothing says nothing about the rest."""
    return bool(command) and bool(_UNFILTERED.match(command or ""))


def _add_tables(raw: RawHost, chunk: Chunk, cmdlet: str | None, where: str) -> int:
    found = 0
    for table in pasted.find_tables(chunk.lines):
        name = cmdlet or classify(dict.fromkeys(table.headers, ""))
        if name is None:
            continue
        note = pasted.note_for(name, table, where)
        if note:
            raw.errors.append((name, note))
        if table.truncated:
            continue
        for rec in pasted.table_records(table):
            raw.add(name, rec)
            found += 1
    return found


def _add_reasons(raw: RawHost, chunk: Chunk) -> int:
    """`(Get-VMHost).IovSupportReasons` (or a switch's) pasted bare: reasons present mean IovSupport False."""
    reasons = pasted.reason_lines(chunk.lines)
    if not reasons:
        return 0
    name = "Get-VMSwitch" if chunk.command and "vmswitch" in chunk.command.lower() else "Get-VMHost"
    raw.add(name, {"IovSupport": "False", "IovSupportReasons": reasons})
    return 1


def snapshot_from_formatlist_text(text: str, origin: str) -> HostSnapshot:
    raw = RawHost(kind="hyperv-formatlist", origin=origin)
    if add_text(raw, text, "the pasted text") == 0:
        if raw.errors:  # a table view iovkit could not use: its one line says what to run instead
            raise InputError(raw.errors[0][1], path=origin)
        raise InputError(
            "no Format-List record, table view or IovSupportReasons line of a cmdlet iovkit reads "
            "(Get-VMHost, Get-VMSwitch, Get-VMNetworkAdapter, Get-NetAdapterSriov, ...)",
            path=origin,
        )
    return build_snapshot(raw)


def snapshot_from_formatlist_file(path: Path) -> HostSnapshot:
    """Pasted Format-List text of one or more cmdlets -> snapshot."""
    return snapshot_from_formatlist_text(read_text(path), str(path))
