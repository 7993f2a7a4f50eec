"""Linux (KVM/libvirt host, or a VM guest) snapshot source.

`collect(root)` reads `/` (live: commands such as virsh, netlink and ethtool ioctls are allowed) or a root
directory laid out like one (captures then come from <root>/.iovkit/commands/<name>). With `archive`, it also
writes a .tar.gz of exactly what it read, which `archive.snapshot_from_archive` replays elsewhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from iovkit import __version__ as _version
from iovkit.errors import InputError
from iovkit.snapshot import HostSnapshot, SourceInfo
from iovkit.sources.linux.collector import LinuxCollector
from iovkit.sources.linux.reader import FsReader

__all__ = ["collect"]


def collect(root: Path = Path("/"), archive: Path | None = None) -> HostSnapshot:
    """Snapshot the Linux host under `root`; optional sources that fail land in snapshot.errors."""
    if not root.is_dir():
        raise InputError("not a directory", path=str(root), field="--root")
    if not ((root / "proc").is_dir() or (root / "sys").is_dir()):  # a wrong folder would give an empty snapshot
        raise InputError(
            "no proc/ or sys/ under it: not a Linux host's root or a captured tree", path=str(root), field="--root"
        )
    reader = FsReader(root)
    source = SourceInfo(kind="linux-live", origin=str(root), collector_version=_version)
    snap = LinuxCollector(reader).snapshot(source)
    snap.collected_at = datetime.now(UTC).replace(microsecond=0)
    if archive is not None:
        from iovkit.sources.linux.archive import write_archive

        write_archive(archive, reader.record, snap.collected_at, str(root))
    return snap
