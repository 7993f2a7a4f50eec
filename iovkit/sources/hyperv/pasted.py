"""What people paste besides Format-List: default table views and bare IovSupportReasons lines.

Table views (field-notes: people paste what they ran, not what we asked for). PowerShell's table formatter
prints a header line, a line of dashes as wide as each column (one space between columns), then one row per
object; numbers are right-aligned, text left-aligned, so every cell lies inside its column's dashes. A view
that did not fit the console cuts cells with `...` (Windows PowerShell 5.1) or `…` (PowerShell 7): such a
table is not read, and the note names the exact `| Format-List *` command to run instead. A column iovkit
needs but the view does not show (IovEnabled is not in Get-VMSwitch's default view) is "not collected" and
noted the same way.

Bare reason lines: `(Get-VMHost).IovSupportReasons` prints each reason string on its own line, with no label.
A line that carries one of Microsoft's documented reason texts (hyperv.md §2) is such a reason; it means
IovSupport is False (the reasons are empty exactly when IovSupport is True).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Columns of each cmdlet's default table view that iovkit's rules read; a view without one gets a note.
NEEDED: dict[str, tuple[str, ...]] = {
    "Get-VMHost": ("IovSupport",),
    "Get-VMSwitch": ("SwitchType", "IovEnabled"),
    "Get-VMNetworkAdapter": ("SwitchName", "IovWeight", "VFDataPathActive"),
    "Get-NetAdapter": ("InterfaceDescription", "LinkSpeed"),
    "Get-NetAdapterSriov": ("SriovSupport", "Enabled", "NumVFs"),
    "Get-NetAdapterSriovVf": ("FunctionID", "VmFriendlyName"),
    "Get-NetAdapterVmq": ("Enabled",),
    "Get-NetAdapterVmqQueue": ("QueueID", "VmFriendlyName"),
    "Get-NetAdapterRss": ("Enabled",),
    "Get-NetLbfoTeam": ("Members",),
}

# The command that prints every property of a cmdlet's objects (what to run when a view was not enough).
FULL: dict[str, str] = {
    "Get-VMHost": "Get-VMHost | Format-List *",
    "Get-VMSwitch": "Get-VMSwitch | Format-List *",
    "Get-VMNetworkAdapter": "Get-VMNetworkAdapter -All | Format-List *",
    "Get-VM": "Get-VM | Format-List *",
    "Get-NetAdapter": "Get-NetAdapter | Format-List *",
    "Get-NetAdapterSriov": "Get-NetAdapterSriov | Format-List *",
    "Get-NetAdapterSriovVf": "Get-NetAdapterSriovVf | Format-List *",
    "Get-NetAdapterVmq": "Get-NetAdapterVmq | Format-List *",
    "Get-NetAdapterVmqQueue": "Get-NetAdapterVmqQueue | Format-List *",
    "Get-NetAdapterRss": "Get-NetAdapterRss | Format-List *",
    "Get-NetLbfoTeam": "Get-NetLbfoTeam | Format-List *",
    "Get-VMSwitchTeam": "Get-VMSwitchTeam | Format-List *",
}

# Distinctive pieces of the documented IovSupportReasons texts (KB 2762297, hyperv.md §2), lower case.
REASON_KEYS: tuple[str, ...] = (
    "second level address translation",
    "does not do interrupt remapping",
    "does not do dma remapping",
    "disable the use of i/o remapping hardware",
    "chipset support for sr-iov",
    "incorrect information describing the hardware",
    "there is no pci express bus",
    "allow windows to control pci express",
    "access control services (acs)",
)

_DASHES = re.compile(r"^[ \t]*-+(?:[ \t]+-+)*[ \t]*$")
_CUT = ("...", "\u2026")


@dataclass
class Table:
    """One table view: its headers, its rows as header -> cell text, whether a cell was cut."""

    headers: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False
    first_line: int = 0
    last_line: int = 0


def _spans(dashes: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]


def _regions(block: list[str], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each column's character range. The dashes are only as long as the header (netview.md), and a cell may be
    wider, so a column is found from the blank positions every line of the block shares: the stretches between
    them, each taken by the header it overlaps (a stretch under no header is the rest of a value with a space in
    it, such as `1 Gbps`, and belongs to the column on its left)."""
    width = max(len(ln) for ln in block)
    blank = [all(x >= len(ln) or ln[x] in " \t" for ln in block) for x in range(width)]
    runs: list[tuple[int, int]] = []
    x = 0
    while x < width:
        if blank[x]:
            x += 1
            continue
        start = x
        while x < width and not blank[x]:
            x += 1
        runs.append((start, x))
    owner: list[int | None] = []
    for rs, re_ in runs:
        owner.append(next((k for k, (s, e) in enumerate(spans) if s < re_ and rs < e), None))
    for i, o in enumerate(owner):
        if o is None:
            left = next((owner[j] for j in range(i - 1, -1, -1) if owner[j] is not None), None)
            right = next((owner[j] for j in range(i + 1, len(owner)) if owner[j] is not None), None)
            owner[i] = left if left is not None else right
    regions = []
    for k, (s, e) in enumerate(spans):
        mine = [r for r, o in zip(runs, owner, strict=True) if o == k]
        regions.append((min([s] + [r[0] for r in mine]), max([e] + [r[1] for r in mine])))
    return regions


def find_tables(lines: list[str]) -> list[Table]:
    """Every header + dashes + rows block in the lines of one command's output."""
    out: list[Table] = []
    i = 0
    while i + 1 < len(lines):
        head, dash = lines[i].rstrip(), lines[i + 1].rstrip()
        if not head.strip() or not _DASHES.match(dash) or " : " in head:
            i += 1
            continue
        spans = _spans(dash)
        headers = [head[s:e].strip() for s, e in spans]
        if not all(headers) or len(spans) < 2:
            i += 1
            continue
        j = i + 2
        while j < len(lines) and lines[j].strip():
            j += 1
        rows = [ln.rstrip() for ln in lines[i + 2 : j]]
        regions = _regions([head, dash, *rows], spans)
        table = Table(headers=headers, first_line=i, last_line=j)
        for row in rows:
            cells = {h: row[s:e].strip() for h, (s, e) in zip(headers, regions, strict=True)}
            table.truncated = table.truncated or any(c.endswith(_CUT) for c in cells.values())
            table.rows.append(cells)
        out.append(table)
        i = j
    return out


def table_records(table: Table) -> list[dict[str, object]]:
    """Rows as records keyed by the property names the headers are (view-only columns like
    `MemoryCapacity(M)` stay: the normaliser reads only properties it knows). Empty cells are not collected."""
    out: list[dict[str, object]] = []
    for row in table.rows:
        rec: dict[str, object] = {}
        for h, cell in row.items():
            if not cell:
                continue
            if cell.startswith("{") and cell.endswith("}"):
                inner = cell[1:-1].strip()
                rec[h] = [p.strip() for p in inner.split(",") if p.strip()] if inner else []
            else:
                rec[h] = cell
        out.append(rec)
    return out


def note_for(cmdlet: str, table: Table, where: str) -> str | None:
    """The one line a table view gets when it is not enough: cut cells, or a needed column missing."""
    full = FULL.get(cmdlet, f"{cmdlet} | Format-List *")
    if table.truncated:
        return f"the {cmdlet} table in {where} is cut ('...'), so it was not read; run `{full}` and paste that"
    have = {h.lower() for h in table.headers}
    lacking = [c for c in NEEDED.get(cmdlet, ()) if c.lower() not in have]
    if lacking:
        return (
            f"the {cmdlet} table in {where} has no {', '.join(lacking)} column (not collected); "
            f"run `{full}` and paste that"
        )
    return None


def reason_lines(lines: list[str]) -> list[str]:
    """Bare IovSupportReasons strings: lines (a string wrapped by the console is joined) that carry a
    documented reason text. Returns [] unless every non-blank line belongs to one."""
    items: list[str] = []
    for ln in lines:
        text = ln.strip()
        if not text:
            continue
        if items and not items[-1].endswith((".", "!")):
            items[-1] = f"{items[-1]} {text}"
        else:
            items.append(text)
    if not items or not all(any(k in it.lower() for k in REASON_KEYS) for it in items):
        return []
    return items


def looks_like_reasons(text: str) -> bool:
    lower = text.lower()
    return any(k in lower for k in REASON_KEYS)


def looks_like_table(lines: list[str]) -> bool:
    """A header line over a line of dashes with at least two columns."""
    return any(
        _DASHES.match(lines[i + 1] or "") and len(_spans(lines[i + 1])) >= 2 and lines[i].strip()
        for i in range(len(lines) - 1)
    )
