"""Auto-detect and load a counter file: PDH CSV, Get-Counter JSON, an iovkit recording, or a Get-NetView output.

A Get-NetView folder or .zip is searched for `Counters/CounterDetail.csv` (the typeperf CSV it records).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from iovkit.diagnose import getcounter, pdhcsv
from iovkit.diagnose.model import RECORDING_MARK, Recording
from iovkit.errors import InputError

NETVIEW_COUNTERS = "CounterDetail.csv"


def _netview_member(names: list[str]) -> str | None:
    hits = [n for n in names if n.replace("\\", "/").lower().endswith("counters/counterdetail.csv")]
    hits = hits or [n for n in names if n.replace("\\", "/").lower().endswith("/counterdetail.csv")]
    return sorted(hits, key=len)[0] if hits else None


def read_bytes(path: Path) -> tuple[bytes, str]:
    """The bytes to parse and the name to show in errors (a member inside a folder or zip)."""
    if path.is_dir():
        found = _netview_member([str(p) for p in path.rglob("*") if p.is_file()])
        if found is None:
            raise InputError(f"no Counters/{NETVIEW_COUNTERS} in this folder", path=str(path))
        return Path(found).read_bytes(), found
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                member = _netview_member(z.namelist())
                if member is None:
                    raise InputError(f"no Counters/{NETVIEW_COUNTERS} in this archive", path=str(path))
                return z.read(member), f"{path}!{member}"
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except (OSError, zipfile.BadZipFile) as e:
        raise InputError(
            f"cannot read: {e.strerror or e}" if isinstance(e, OSError) else str(e), path=str(path)
        ) from None


def parse_text(text: str, name: str) -> Recording:
    """Pick the parser from the content, not the file name."""
    head = text.lstrip("\ufeff \t\r\n")
    if pdhcsv.looks_like(text):
        return pdhcsv.parse(text, name)
    if head.startswith(("{", "[")):
        if RECORDING_MARK in head[:200]:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"line {e.lineno}, column {e.colno}: invalid JSON: {e.msg}", path=name) from None
            return Recording.from_json(data, name)
        return getcounter.parse(text, name)
    if not head:
        raise InputError("the file is empty (expected a PDH-CSV, Get-Counter JSON or iovkit recording)", path=name)
    first = head.splitlines()[0][:60]
    raise InputError(f"not a PDH-CSV, Get-Counter JSON or iovkit recording (starts with {first!r})", path=name)


def load(path: Path) -> Recording:
    data, name = read_bytes(path)
    return parse_text(pdhcsv.decode(data), name)
