"""Auto-detect and load a counter file: PDH CSV, Get-Counter JSON, an iovkit recording, or a Get-NetView output.

A Get-NetView folder or .zip is searched for `Counters/CounterDetail.csv` (the typeperf CSV it records).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from iovkit.diagnose import pdhcsv
from iovkit.diagnose.model import RECORDING_MARK, Recording
from iovkit.errors import InputError

NETVIEW_COUNTERS = "CounterDetail.csv"
SIDECAR = "iovkit-counters.names.tsv"  # written by `iovkit script counters`: local name <TAB> English name


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
        from iovkit.diagnose import getcounter

        return getcounter.parse(text, name)
    if not head:
        raise InputError("the file is empty (expected a PDH-CSV, Get-Counter JSON or iovkit recording)", path=name)
    first = head.splitlines()[0][:60]
    raise InputError(f"not a PDH-CSV, Get-Counter JSON or iovkit recording (starts with {first!r})", path=name)


def sidecar_for(path: Path) -> dict[str, str] | None:
    """The name mapping the counters script wrote beside the recording (logman adds `_000001` to the stem)."""
    if path.is_dir():
        return None
    stem = path.stem
    for cand in (
        path.with_name(f"{stem}.names.tsv"),
        path.with_name(f"{stem.rsplit('_', 1)[0]}.names.tsv"),
        path.parent / SIDECAR,
    ):
        if cand.is_file():
            return read_sidecar(cand)
    return None


def read_sidecar(path: Path) -> dict[str, str]:
    """`local<TAB>English` lines -> folded local name -> English; a malformed line is named."""
    from iovkit.diagnose.names import fold

    out: dict[str, str] = {}
    try:
        from iovkit.sources.windows import decode_text

        text = decode_text(path.read_bytes())
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path=str(path)) from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        local, sep, english = line.partition("\t")
        if not sep or not local.strip() or not english.strip():
            raise InputError(f"line {n}: expected 'local name<TAB>English name', got {line[:60]!r}", path=str(path))
        out[fold(local)] = english.strip()
    return out


def load(path: Path) -> Recording:
    """Read any supported input; a PDH-CSV on disk is streamed (sources.windows is imported only off that path)."""
    if path.is_file() and not zipfile.is_zipfile(path) and path.suffix.lower() != ".blg":
        with path.open("rb") as f:
            start = f.read(4096)
        if start.lstrip(b"\xef\xbb\xbf\r\n\t ").startswith((b'"(PDH-CSV', b"(PDH-CSV")):
            return pdhcsv.read_file(path, str(path), sidecar_for(path))  # streamed: a day of samples is 76 MB
    data, name = read_bytes(path)  # a missing or unreadable file is said before sources.windows is imported
    from iovkit.sources.windows import decode_text

    binary = b"\x00" in data[:64] and not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if path.suffix.lower() == ".blg" or binary:
        raise InputError(
            f"a binary performance log (.blg): convert it to CSV on Windows first: relog {path.name} -f csv -o "
            f"{path.with_suffix('.csv').name}",
            path=name,
        )
    head = data[:4096].lstrip(b"\xef\xbb\xbf\r\n\t ")
    if head.startswith((b'"(PDH-CSV', b"(PDH-CSV")) or (
        data.startswith((b"\xff\xfe", b"\xfe\xff")) and pdhcsv.looks_like(decode_text(data[:4096]))
    ):
        return pdhcsv.read(data, name, sidecar_for(path))
    return parse_text(decode_text(data), name)
