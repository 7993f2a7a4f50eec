"""The one place the Linux collector does I/O, and the record of every read it made.

The collector asks a Reader for files, symlinks, directory listings, existence and "captures" (command
output or a netlink dump, under a predictable name). A FsReader answers from `/` or a root directory; a
ReplayReader answers from an archive's record. Both note every answer in a `Record`, so writing an archive is
just saving that record, and reading the archive back asks the same questions and gets the same answers.

Paths are always relative to the root ("proc/cpuinfo"), never a bare "/proc".
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from iovkit.errors import IovkitError

# Directory a root tree (a test tree, a copied host) may hold recorded captures in: <root>/.iovkit/commands/<name>
ROOT_CAPTURE_DIR = ".iovkit/commands"
MAX_FILE_BYTES = 4 * 1024 * 1024
READ_CHUNK = 16384  # a sysfs/procfs file is small; /proc/cpuinfo on 512 CPUs is ~1 MiB


class CaptureError(IovkitError):
    """A command or netlink dump failed; recorded in snapshot.errors, never fatal."""


@dataclass
class Record:
    """Every answer a Reader gave, keyed by relative path or capture name (None = absent)."""

    files: dict[str, str | None] = field(default_factory=dict)
    links: dict[str, str | None] = field(default_factory=dict)
    dirs: dict[str, list[str] | None] = field(default_factory=dict)
    exists: dict[str, bool] = field(default_factory=dict)
    captures: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # "file:<path>" / "capture:<name>" -> message


class Reader:
    """Answers the collector's questions and records them. Subclasses implement the `_raw_*` methods."""

    live: bool = False  # may run commands / open netlink on this machine

    def __init__(self) -> None:
        self.record = Record()
        self.problems: list[tuple[str, str]] = []  # (source, error) for snapshot.errors

    # -- raw access, overridden ----------------------------------------------------------------------
    def _raw_read(self, path: str) -> str | None:
        raise NotImplementedError

    def _raw_link(self, path: str) -> str | None:
        raise NotImplementedError

    def _raw_listdir(self, path: str) -> list[str] | None:
        raise NotImplementedError

    def _raw_exists(self, path: str) -> bool:
        raise NotImplementedError

    def _raw_capture(self, name: str, produce: Callable[[], str | None] | None) -> str | None:
        raise NotImplementedError

    # -- what the collector calls --------------------------------------------------------------------
    def read(self, path: str) -> str | None:
        """File text, or None when absent. An unreadable file is a problem, not an exception."""
        if path in self.record.files:
            return self.record.files[path]
        try:
            text = self._raw_read(path)
        except OSError as err:
            msg = err.strerror or str(err)
            self.record.errors[f"file:{path}"] = msg
            self.problems.append((f"/{path}", msg))
            text = None
        except _Replayed as rep:
            self.record.errors[f"file:{path}"] = rep.message
            self.problems.append((f"/{path}", rep.message))
            text = None
        self.record.files[path] = text
        return text

    def text(self, path: str) -> str | None:
        """File content stripped of surrounding whitespace; None when absent or empty."""
        raw = self.read(path)
        if raw is None:
            return None
        raw = raw.strip()
        return raw or None

    def link(self, path: str) -> str | None:
        """The symlink's target as stored (sysfs links are relative), or None."""
        if path not in self.record.links:
            self.record.links[path] = self._raw_link(path)
        return self.record.links[path]

    def link_name(self, path: str) -> str | None:
        """Basename of a symlink's target: a driver, an IOMMU group number, a PCI address."""
        target = self.link(path)
        return target.rstrip("/").rsplit("/", 1)[-1] if target else None

    def listdir(self, path: str) -> list[str]:
        if path not in self.record.dirs:
            entries = self._raw_listdir(path)
            self.record.dirs[path] = sorted(entries) if entries is not None else None
        return list(self.record.dirs[path] or [])

    def exists(self, path: str) -> bool:
        if path not in self.record.exists:
            self.record.exists[path] = self._raw_exists(path)
        return self.record.exists[path]

    def capture(self, name: str, source: str, produce: Callable[[], str | None] | None = None) -> str | None:
        """Output of a command or dump saved as `name`; None when not available here. Failures become problems."""
        if name in self.record.captures:
            return self.record.captures[name]
        try:
            out = self._raw_capture(name, produce)
        except CaptureError as err:
            self.record.errors[f"capture:{name}"] = str(err)
            self.problems.append((source, str(err)))
            out = None
        except _Replayed as rep:
            self.record.errors[f"capture:{name}"] = rep.message
            self.problems.append((source, rep.message))
            out = None
        self.record.captures[name] = out
        return out


class _Replayed(Exception):
    """Internal signal: an error recorded in the archive is replayed as the same snapshot error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FsReader(Reader):
    """Reads a live filesystem: `/` (live: commands and netlink allowed) or a root directory."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.real_root = root.resolve()
        self.live = self.real_root == Path("/")

    def _p(self, path: str) -> Path:
        return self.root / path

    def _inside(self, p: Path) -> bool:
        """Under a root tree, a symlink must not lead out of it (an absolute link would read this host)."""
        return self.live or p.resolve().is_relative_to(self.real_root)

    def _raw_read(self, path: str) -> str | None:
        p = self._p(path)
        if not self._inside(p):
            raise OSError(errno.EXDEV, f"resolves outside the root {self.root}")
        try:
            with open(p, "rb", buffering=0) as fh:
                chunks: list[bytes] = []
                size = 0
                # Small reads: procfs sysctl files allocate the whole requested size (4 MiB -> ENOMEM).
                while size < MAX_FILE_BYTES and (chunk := fh.read(READ_CHUNK)):
                    chunks.append(chunk)
                    size += len(chunk)
                data = b"".join(chunks)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            # sysfs answers EINVAL/ENODEV for attributes with no value (speed of a down link): that is "absent".
            if err.errno in (errno.EINVAL, errno.ENODEV, errno.ENXIO, errno.EOPNOTSUPP, errno.EAGAIN):
                return None
            raise
        return data.decode("utf-8", errors="replace")

    def _raw_link(self, path: str) -> str | None:
        try:
            return os.readlink(self._p(path))
        except OSError:
            return None

    def _raw_listdir(self, path: str) -> list[str] | None:
        try:
            return os.listdir(self._p(path))
        except OSError:
            return None

    def _raw_exists(self, path: str) -> bool:
        return os.path.lexists(self._p(path))

    def _raw_capture(self, name: str, produce: Callable[[], str | None] | None) -> str | None:
        if self.live:
            return produce() if produce is not None else None
        saved = self.root / ROOT_CAPTURE_DIR / name
        try:
            return saved.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CaptureError(f"cannot read {saved}: {err.strerror}") from err


class ReplayReader(Reader):
    """Answers from a Record loaded from an archive: the same questions get the same answers."""

    def __init__(self, recorded: Record) -> None:
        super().__init__()
        self.recorded = recorded

    def _raw_read(self, path: str) -> str | None:
        if f"file:{path}" in self.recorded.errors:
            raise _Replayed(self.recorded.errors[f"file:{path}"])
        return self.recorded.files.get(path)

    def _raw_link(self, path: str) -> str | None:
        return self.recorded.links.get(path)

    def _raw_listdir(self, path: str) -> list[str] | None:
        return self.recorded.dirs.get(path)

    def _raw_exists(self, path: str) -> bool:
        return self.recorded.exists.get(path, False)

    def _raw_capture(self, name: str, produce: Callable[[], str | None] | None) -> str | None:
        if f"capture:{name}" in self.recorded.errors:
            raise _Replayed(self.recorded.errors[f"capture:{name}"])
        return self.recorded.captures.get(name)
