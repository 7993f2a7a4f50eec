"""One public face for every snapshot source; the platform backends sit side by side below it.

`take_snapshot()` is what every command calls: a snapshot file, anything `--from` accepts, a shipped
example, a remote Hyper-V host, or this host. Backends are imported lazily so that a Linux run never
loads WinRM code and start-up stays fast.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Literal

from iovkit.errors import InputError
from iovkit.examples import EXAMPLES, example_path
from iovkit.snapshot import HostSnapshot, snapshot_from_dict
from iovkit.sources.windows import RemoteTarget, decode_text, read_json

__all__ = ["EXAMPLES", "RemoteTarget", "collect_here", "collect_remote", "load_example", "load_input", "take_snapshot"]

InputKind = Literal["snapshot", "hyperv-bundle", "hyperv-formatlist", "hyperv-netview", "linux-archive", "esxi-paste"]

BUNDLE_FORMAT = "iovkit-hyperv-bundle"


def detect(path: Path) -> InputKind:
    """Tell which kind of input a path is, from its content rather than its name where possible."""
    if not path.exists():
        raise InputError("no such file or directory", path=str(path))
    if path.is_dir():
        return "esxi-paste" if _esxi_dir(path) else "hyperv-netview"
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", path=str(path)) from err
    if head[:2] == b"\x1f\x8b":
        return "linux-archive"
    if zipfile.is_zipfile(path):
        return "hyperv-netview"
    if head[:4] == b"PK\x03\x04":  # a zip whose end (the central directory) is missing: a cut-off copy
        raise InputError("truncated or corrupt .zip (no central directory); copy it again", path=str(path))
    if not head.strip():
        raise InputError("the file is empty", path=str(path))
    text = decode_text(head).lstrip()  # UTF-16 when 5.1's `>` wrote it
    if text.startswith("{"):
        data = read_json(path)
        if isinstance(data, dict) and data.get("format") == BUNDLE_FORMAT:
            return "hyperv-bundle"
        if isinstance(data, dict) and "schema_version" in data and "host" in data:
            return "snapshot"
        raise InputError(
            "JSON is neither an iovkit snapshot (schema_version, host) nor a collector bundle "
            f"(format: {BUNDLE_FORMAT})",
            path=str(path),
        )
    from iovkit.sources.esxi.paste import looks_like_esxi

    if looks_like_esxi(head.decode("utf-8-sig", errors="replace") + _more(path)):
        return "esxi-paste"
    if text.startswith("[") and _is_json(path):  # `[root@host:~]` or `[Failed]` is text, not JSON
        raise InputError(
            "a JSON array is not a snapshot or bundle; run `iovkit script collect` on the host", path=str(path)
        )
    from iovkit.sources.hyperv.formatlist import looks_like_formatlist

    if looks_like_formatlist(text + _more(path)):
        return "hyperv-formatlist"
    raise InputError(
        "not a format iovkit reads (snapshot JSON, collector bundle, Format-List text, Get-NetView "
        "folder/.zip, a Linux .tar.gz archive, or pasted ESXi esxcli output / .vmx)",
        path=str(path),
    )


def _is_json(path: Path) -> bool:
    import json

    try:
        json.loads(decode_text(path.read_bytes()))
    except ValueError:
        return False
    return True


def _more(path: Path) -> str:
    """The first 64 KiB after the head: a paste may start with a long table before its first ESXi marker."""
    with path.open("rb") as fh:
        fh.seek(4096)
        return fh.read(65536).decode("utf-8", errors="replace")


def _esxi_dir(path: Path) -> bool:
    """A folder of pasted ESXi output or .vmx files (not a Get-NetView capture)."""
    from iovkit.sources.esxi.paste import looks_like_esxi

    for f in sorted(path.iterdir())[:50]:
        if f.is_file() and f.suffix.lower() in (".vmx", ".txt", ".log", ""):
            try:
                with f.open("rb") as fh:
                    if looks_like_esxi(fh.read(65536).decode("utf-8", errors="replace")):
                        return True
            except OSError:
                continue
    return False


def load_input(path: Path) -> HostSnapshot:
    """Turn anything `collect --from` accepts into a snapshot."""
    kind = detect(path)
    if kind == "snapshot":
        return snapshot_from_dict(read_json(path), str(path))
    if kind == "hyperv-bundle":
        from iovkit.sources.hyperv.bundle import snapshot_from_bundle_file

        return snapshot_from_bundle_file(path)
    if kind == "hyperv-formatlist":
        from iovkit.sources.hyperv.formatlist import snapshot_from_formatlist_file

        return snapshot_from_formatlist_file(path)
    if kind == "esxi-paste":
        from iovkit.sources.esxi import snapshot_from_paste

        return snapshot_from_paste(path)
    if kind == "hyperv-netview":
        from iovkit.sources.hyperv.netview import snapshot_from_netview

        return snapshot_from_netview(path)
    from iovkit.sources.linux.archive import snapshot_from_archive

    return snapshot_from_archive(path)


def load_example(name: str) -> HostSnapshot:
    """A shipped example, read by the same parser a real host's capture goes through."""
    snap = load_input(example_path(name))
    snap.source.kind = "example"
    snap.source.origin = name
    return snap


def collect_here(root: Path | None = None) -> HostSnapshot:
    """Collect this host: the one platform switch."""
    if sys.platform.startswith("linux"):
        from iovkit.sources.linux import collect

        return collect(root or Path("/"))
    if sys.platform == "win32":
        from iovkit.sources.hyperv.local import collect_local

        return collect_local()
    raise InputError(f"collecting this host is not supported on {sys.platform}; use --from or --example")


def collect_remote(target: RemoteTarget, password: str | None) -> HostSnapshot:
    from iovkit.sources.hyperv.winrm import collect_remote as _remote

    return _remote(target, password)


def take_snapshot(
    snapshot: Path | None = None,
    from_path: Path | None = None,
    example: str | None = None,
    remote: RemoteTarget | None = None,
    password: str | None = None,
) -> HostSnapshot:
    """The snapshot a command works on, from whichever input the user named (at most one)."""
    given = [x for x in (snapshot, from_path, example, remote) if x is not None]
    if len(given) > 1:
        raise InputError("give only one of SNAPSHOT, --from, --example or --host")
    if example is not None:
        return load_example(example)
    if snapshot is not None or from_path is not None:
        return load_input(snapshot or from_path)  # type: ignore[arg-type]
    if remote is not None:
        return collect_remote(remote, password)
    return collect_here()
