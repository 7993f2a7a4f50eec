"""`iovkit collect --archive`: a .tar.gz of exactly what the Linux collector read, and reading it back.

Layout (sos-like, predictable, diffable between two hosts):
    manifest.json          format, version, collected_at, origin, and every answer that is not file content
                           (symlink targets, directory listings, existence, absent files, errors)
    root/<path>            each file read, as read (e.g. root/proc/cpuinfo)
    commands/<name>        each capture: command output (virsh_-r_list_--all) or dump (netlink_vfinfo.json)

Reading never extracts to disk: members are read in memory after checks (no absolute or `..` names, no
links escaping the archive, no devices, caps on member count and total size), so a hostile archive ends in one
InputError naming the archive and the member.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

from iovkit import __version__
from iovkit.errors import InputError
from iovkit.snapshot import HostSnapshot, SourceInfo
from iovkit.sources.linux.reader import Record, ReplayReader

FORMAT = "iovkit-linux-archive"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MEMBERS = 20_000
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 8 * 1024 * 1024


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_archive(path: Path, record: Record, collected_at: datetime | None, origin: str) -> None:
    """Save a Reader's record as the archive described above."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "collected_at": collected_at.isoformat() if collected_at else None,
        "origin": origin,
        "collector_version": __version__,
        "files": {p: (f"root/{p}" if t is not None else None) for p, t in sorted(record.files.items())},
        "links": dict(sorted(record.links.items())),
        "dirs": dict(sorted(record.dirs.items())),
        "exists": dict(sorted(record.exists.items())),
        "captures": {n: (f"commands/{n}" if t is not None else None) for n, t in sorted(record.captures.items())},
        "errors": dict(sorted(record.errors.items())),
    }
    mtime = collected_at.timestamp() if collected_at else 0.0
    try:
        # A fixed gzip/tar mtime: the same record gives the same bytes, so two archives can be diffed.
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=int(mtime), filename="") as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode(), mtime)
            for p, text in sorted(record.files.items()):
                if text is not None:
                    _add(tar, f"root/{p}", text.encode("utf-8"), mtime)
            for n, text in sorted(record.captures.items()):
                if text is not None:
                    _add(tar, f"commands/{n}", text.encode("utf-8"), mtime)
    except OSError as err:
        raise InputError(f"cannot write archive: {err.strerror or err}", path=str(path)) from err


def _check_member(archive: str, m: tarfile.TarInfo) -> None:
    name = m.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"unsafe member {name!r}: absolute path", path=archive)
    if ".." in parts:
        raise InputError(f"unsafe member {name!r}: '..' in path", path=archive)
    if m.issym() or m.islnk():
        target = m.linkname
        base = posixpath.dirname(name) if m.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise InputError(f"unsafe member {name!r}: link to {target!r} escapes the archive", path=archive)
    elif not (m.isfile() or m.isdir()):
        raise InputError(f"unsafe member {name!r}: device, fifo or other special file", path=archive)
    if m.size > MAX_MEMBER_BYTES:
        raise InputError(f"member {name!r} is {m.size} bytes (limit {MAX_MEMBER_BYTES})", path=archive)


def _read_members(path: Path) -> dict[str, bytes]:
    """All regular members, in memory, after the safety checks."""
    archive = str(path)
    out: dict[str, bytes] = {}
    total = 0
    count = 0
    try:
        with tarfile.open(path, "r:gz") as tar:
            for m in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise InputError(f"more than {MAX_MEMBERS} members", path=archive)
                _check_member(archive, m)
                total += m.size
                if total > MAX_TOTAL_BYTES:
                    raise InputError(
                        f"unpacks to more than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB (at member {m.name!r})",
                        path=archive,
                    )
                if m.isfile():
                    fh = tar.extractfile(m)
                    if fh is None:
                        raise InputError(f"member {m.name!r} cannot be read", path=archive)
                    data = fh.read()
                    if len(data) != m.size:
                        raise InputError(f"truncated at member {m.name!r}", path=archive)
                    out[posixpath.normpath(m.name)] = data
    except InputError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InputError(f"truncated or corrupt .tar.gz: {err}", path=archive) from err
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror or err}", path=archive) from err
    return out


def _text(members: dict[str, bytes], name: str | None, archive: str) -> str | None:
    if name is None:
        return None
    if name not in members:
        raise InputError(f"manifest names {name!r} but the archive has no such member", path=archive)
    return members[name].decode("utf-8", errors="replace")


def load_record(path: Path) -> tuple[Record, dict[str, Any]]:
    """The Record saved in an archive, and its manifest."""
    archive = str(path)
    members = _read_members(path)
    if MANIFEST not in members:
        raise InputError(f"not an iovkit Linux archive: no {MANIFEST}", path=archive)
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as err:
        raise InputError(f"{MANIFEST} is not valid JSON: {err}", path=archive) from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{MANIFEST} is not an {FORMAT} manifest", path=archive, field="format")
    if manifest.get("version") != VERSION:
        raise InputError(
            f"{MANIFEST} version {manifest.get('version')!r} is not supported (reads {VERSION})",
            path=archive,
            field="version",
        )
    try:
        rec = Record(
            files={str(p): _text(members, m, archive) for p, m in manifest.get("files", {}).items()},
            links={str(k): (str(v) if v is not None else None) for k, v in manifest.get("links", {}).items()},
            dirs={
                str(k): ([str(x) for x in v] if v is not None else None) for k, v in manifest.get("dirs", {}).items()
            },
            exists={str(k): bool(v) for k, v in manifest.get("exists", {}).items()},
            captures={str(n): _text(members, m, archive) for n, m in manifest.get("captures", {}).items()},
            errors={str(k): str(v) for k, v in manifest.get("errors", {}).items()},
        )
    except (AttributeError, TypeError) as err:
        raise InputError(f"{MANIFEST} has an unexpected shape: {err}", path=archive) from err
    return rec, manifest


def snapshot_from_archive(path: Path) -> HostSnapshot:
    """Replay an archive through the same collector a live host uses."""
    from iovkit.sources.linux.collector import LinuxCollector

    rec, manifest = load_record(path)
    collected_at = None
    if manifest.get("collected_at"):
        try:
            collected_at = datetime.fromisoformat(str(manifest["collected_at"]))
        except ValueError as err:
            raise InputError(
                f"bad collected_at {manifest['collected_at']!r}", path=str(path), field="collected_at"
            ) from err
    written_by = manifest.get("collector_version")  # absent in archives written before it was recorded
    source = SourceInfo(
        kind="linux-archive", origin=str(path), collector_version=str(written_by) if written_by is not None else None
    )
    snap = LinuxCollector(ReplayReader(rec)).snapshot(source)
    snap.collected_at = collected_at
    return snap
