"""Read a Get-NetView capture: its `msdbg.<COMPUTER>` folder or the .zip made from it.

Only the Format-List text files iovkit needs are read (see reference netview.md): Get-VMSwitch.txt and
Get-VMSwitchTeam.txt under `VMSwitch.<i>.<type>.<name>\\`, Get-VMNetworkAdapter.txt under the host-vNIC and
`VM.<i>.<vm>\\VMNic.*\\` folders, the per-NIC `Get-NetAdapter*.txt` files, `LBFO.<team>\\Get-NetLbfoTeam.txt`,
and Get-ComputerInfo.txt / Environment.txt (Win32_Processor) at the top. Each file is a series of
`<user> @ <COMPUTER>:` / `PS ...> <command>` / `[status]` / output blocks; the command names the cmdlet.
Objects that Get-NetView reports twice are merged by the normaliser. Get-NetView never runs Get-VMHost, so
host IovSupport stays unknown and that is said in snapshot.errors.

A .zip is read in memory and never extracted: members with absolute paths or `..` are refused, as are
archives whose members would unpack past MAX_TOTAL_BYTES or that hold more than MAX_MEMBERS entries.
Get-NetView's own zip has no top folder; a zip made by hand has `msdbg.<COMPUTER>/`; both are accepted.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from iovkit.errors import InputError
from iovkit.snapshot import HostSnapshot
from iovkit.sources.hyperv.formatlist import add_text
from iovkit.sources.hyperv.normalize import RawHost, build_snapshot
from iovkit.sources.windows import decode_text

MAX_TOTAL_BYTES = 512 * 1024 * 1024  # uncompressed size of the whole zip
MAX_MEMBERS = 200_000
MAX_FILE_BYTES = 64 * 1024 * 1024  # one text file, folder or zip

# File name -> the cmdlet its Format-List records come from when a block has no readable prompt.
WANTED: dict[str, str | None] = {
    "get-vmswitch.txt": "Get-VMSwitch",
    "get-vmswitchteam.txt": "Get-VMSwitchTeam",
    "get-vmnetworkadapter.txt": "Get-VMNetworkAdapter",
    "get-vm.txt": "Get-VM",
    "get-vmhost.txt": "Get-VMHost",
    "get-netadapter.txt": "Get-NetAdapter",
    "get-netadaptersriov.txt": "Get-NetAdapterSriov",
    "get-netadaptersriovvf.txt": "Get-NetAdapterSriovVf",
    "get-netadaptervmq.txt": "Get-NetAdapterVmq",
    "get-netadapterrss.txt": "Get-NetAdapterRss",
    "get-netlbfoteam.txt": "Get-NetLbfoTeam",
    "get-computerinfo.txt": "Get-ComputerInfo",
    "environment.txt": None,
}
_MSDBG = re.compile(r"msdbg\.(?P<host>[^\\/]+?)(?:-\d{4}\.\d{2}\.\d{2}_\d{2}\.\d{2}\.\d{2})?(?:\.zip)?$", re.IGNORECASE)


def _host_from_name(name: str) -> str | None:
    m = _MSDBG.search(name)
    return m.group("host") if m else None


def _folder_files(root: Path) -> Iterator[tuple[str, bytes]]:
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.lower() in WANTED:
                p = Path(dirpath) / f
                rel = str(p.relative_to(root))
                try:
                    if p.stat().st_size > MAX_FILE_BYTES:
                        raise InputError(f"{rel} is larger than {MAX_FILE_BYTES // 2**20} MiB", path=str(root))
                    yield rel, p.read_bytes()
                except OSError as err:
                    raise InputError(f"cannot read {rel}: {err.strerror}", path=str(root)) from err


def _unsafe(name: str) -> bool:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return True
    return ".." in PurePosixPath(norm).parts


def _zip_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """Validate every member first, then read the wanted ones with a byte budget (headers can lie)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"not a readable zip: {err}", path=str(path)) from err
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InputError(f"zip holds {len(infos)} members, more than the {MAX_MEMBERS} allowed", path=str(path))
        total = 0
        for info in infos:
            if _unsafe(info.filename):
                raise InputError(f"refusing zip member '{info.filename}': absolute path or '..'", path=str(path))
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise InputError(
                    f"zip unpacks to more than {MAX_TOTAL_BYTES // 2**20} MiB (at member "
                    f"'{info.filename}'); refusing to read it",
                    path=str(path),
                )
        budget = MAX_TOTAL_BYTES
        for info in infos:
            base = PurePosixPath(info.filename.replace("\\", "/")).name.lower()
            if info.is_dir() or base not in WANTED:
                continue
            limit = min(budget, MAX_FILE_BYTES)
            try:
                with zf.open(info) as fh:
                    data = fh.read(limit + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as err:
                raise InputError(f"cannot read zip member '{info.filename}': {err}", path=str(path)) from err
            if len(data) > limit:
                raise InputError(f"zip member '{info.filename}' unpacks past the size cap", path=str(path))
            budget -= len(data)
            yield info.filename, data


def snapshot_from_netview(path: Path) -> HostSnapshot:
    """A Get-NetView folder or .zip -> snapshot."""
    if path.is_dir():
        files: Iterator[tuple[str, bytes]] = _folder_files(path)
    elif zipfile.is_zipfile(path):
        files = _zip_files(path)
    else:
        raise InputError("not a Get-NetView folder or .zip", path=str(path))
    raw = RawHost(kind="hyperv-netview", origin=str(path))
    found = 0
    top_host: str | None = _host_from_name(path.name)
    for rel, data in files:
        top_host = top_host or _host_from_name(rel.replace("\\", "/").split("/", 1)[0])
        base = PurePosixPath(rel.replace("\\", "/")).name.lower()
        found += add_text(raw, decode_text(data), rel, default_cmdlet=WANTED[base], tables=False, complete=True)
    if found == 0:
        raise InputError(
            "no Get-NetView command output found (expected files such as Get-VMSwitch.txt or "
            "pNIC.*\\Get-NetAdapterSriov.txt with Format-List output)",
            path=str(path),
        )
    raw.computer_name = raw.computer_name or top_host
    if "Get-VMHost" not in raw.records:
        raw.errors.append(
            (
                "Get-VMHost",
                "not in a Get-NetView capture (Get-NetView never runs Get-VMHost): host "
                "IovSupport and IovSupportReasons are unknown; run `iovkit script collect`",
            )
        )
    return build_snapshot(raw)
