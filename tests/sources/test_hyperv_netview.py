"""Get-NetView captures (folder and .zip, in the layout of reference netview.md) -> snapshot; unsafe zips -> exit 2."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from iovkit.errors import InputError
from iovkit.sources import detect
from iovkit.sources.hyperv import netview
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from iovkit.sources.hyperv.netview import snapshot_from_netview
from tests.fixtures import hyperv_bundles as B


def _zip(folder: Path, dest: Path, top: bool) -> Path:
    """Get-NetView's own zip has no top folder (CreateFromDirectory); a hand-made one has msdbg.<host>/."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder.parent if top else folder)
                zf.write(p, str(rel).replace("/", "\\") if not top else str(rel))
    return dest


@pytest.fixture
def i350_capture(tmp_path: Path) -> Path:
    return B.netview_folder(tmp_path, B.i350_bundle(), failed_vf="Ethernet 2")


def test_folder_field_by_field(i350_capture: Path) -> None:
    assert detect(i350_capture) == "hyperv-netview"
    snap = snapshot_from_netview(i350_capture)
    js = snapshot_from_bundle(B.i350_bundle(), "bundle.json")
    assert snap.source.kind == "hyperv-netview" and snap.source.origin == str(i350_capture)
    # The NICs Get-NetView reports twice (pNIC.* and NIC.*) appear once, with the same facts as the bundle's.
    for part in ("nics", "switches", "vms", "vm_adapters", "vfs", "teams"):
        assert getattr(snap, part) == getattr(js, part), part
    assert snap.host == js.host  # from `user @ HOST:`, Get-ComputerInfo (OsName, OsProductType, CsModel, ...)
    assert (snap.cpu.model, snap.cpu.cores, snap.cpu.slat) == (js.cpu.model, 8, None)
    # never in a capture: host IOV support is unknown, and the summary says why
    assert snap.iov.supported is None
    errors = {e.source: e.error for e in snap.errors}
    assert "Get-NetView never runs Get-VMHost" in errors["Get-VMHost"]
    assert "Access is denied" in errors["Get-NetAdapterSriovVf"]  # the [Failed] block
    assert "Get-NetAdapterUso" not in errors  # [Unavailable] is not a failure of a source iovkit reads


def test_ready_capture_has_set_team_and_vfs(tmp_path: Path) -> None:
    snap = snapshot_from_netview(B.netview_folder(tmp_path, B.ready_bundle()))
    js = snapshot_from_bundle(B.ready_bundle(), "b")
    assert snap.vfs == js.vfs and len(snap.vfs) == 3
    assert snap.switches == js.switches and snap.teams[0].members == ["SLOT 3 Port 1", "SLOT 3 Port 2"]


def test_lbfo_capture(tmp_path: Path) -> None:
    snap = snapshot_from_netview(B.netview_folder(tmp_path, B.lbfo_bundle()))
    assert [(t.name, t.kind, t.members) for t in snap.teams] == [("Team1", "lbfo", ["NIC1", "NIC2"])]
    assert [n.team for n in snap.nics] == ["Team1", "Team1"]


@pytest.mark.parametrize("top", [False, True], ids=["get-netview-zip", "hand-made-zip"])
def test_zip_reads_like_the_folder(i350_capture: Path, tmp_path: Path, top: bool, cli: Any) -> None:
    z = _zip(i350_capture, tmp_path / "msdbg.HV-RELAY-01-2026.11.20_09.00.00.zip", top)
    shutil.rmtree(i350_capture)  # nothing is extracted next to it either
    assert detect(z) == "hyperv-netview"
    snap = snapshot_from_netview(z)
    js = snapshot_from_bundle(B.i350_bundle(), "bundle.json")
    assert snap.nics == js.nics and snap.vm_adapters == js.vm_adapters and snap.host.name == "HV-RELAY-01"
    r = cli("collect", "--from", str(z), "-q")
    assert r.code == 0 and '"hyperv-netview"' in r.out
    assert sorted(p.name for p in tmp_path.iterdir()) == [z.name]


@pytest.mark.parametrize("member", ["../evil.txt", "msdbg.X/../../evil.txt", "/etc/evil.txt", "C:\\evil.txt"])
def test_zip_with_unsafe_member_is_refused(tmp_path: Path, member: str, cli: Any) -> None:
    z = tmp_path / "capture.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("Get-VMSwitch.txt", "admin @ X:\nPS C:\\> Get-VMSwitch | fl *\n\nName : a\nIovEnabled : True\n")
        zf.writestr(member, "x")
    with pytest.raises(InputError) as ei:
        snapshot_from_netview(z)
    assert str(z) in str(ei.value) and member in str(ei.value)
    r = cli("collect", "--from", str(z))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and member in r.err
    assert not (tmp_path.parent / "evil.txt").exists()


def _bomb(path: Path, mib: int) -> Path:
    """A highly compressible member: `mib` MiB of zeros, a few MiB on disk at most."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("Get-ComputerInfo.txt", "admin @ X:\n")
        with zf.open("Get-NetAdapter.txt", "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(mib):
                fh.write(block)
    return path


def test_zip_past_the_size_cap_is_refused(tmp_path: Path, cli: Any) -> None:
    z = _bomb(tmp_path / "bomb.zip", netview.MAX_TOTAL_BYTES // 2**20 + 8)
    assert z.stat().st_size < 8 * 2**20
    r = cli("collect", "--from", str(z))
    assert r.code == 2, r.err
    assert len(r.err.strip().splitlines()) == 1 and str(z) in r.err and "MiB" in r.err


def test_member_that_lies_about_its_size_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-read budget holds even when the declared sizes pass the first check."""
    z = _bomb(tmp_path / "small-bomb.zip", 3)
    monkeypatch.setattr(netview, "MAX_FILE_BYTES", 1 << 20)
    with pytest.raises(InputError, match=r"Get-NetAdapter\.txt"):
        snapshot_from_netview(z)


def test_empty_capture_is_an_input_error(tmp_path: Path) -> None:
    d = tmp_path / "msdbg.EMPTY"
    d.mkdir()
    (d / "Get-NetAdapterStatistics.txt").write_text("admin @ EMPTY:\n")
    with pytest.raises(InputError, match="no Get-NetView command output"):
        snapshot_from_netview(d)
