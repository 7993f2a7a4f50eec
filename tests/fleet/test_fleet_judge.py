"""Judging collected hosts without Ansible: per-host files, the worst verdict and the exit code."""

from __future__ import annotations

from pathlib import Path

from iovkit.fleet.collect import Collected
from iovkit.fleet.inventory import InventoryHost
from iovkit.fleet.judge import judge_fleet
from iovkit.sources import load_example


def ok(name: str, example: str) -> Collected:
    return Collected(InventoryHost(name, ["edge"]), "ok", "capture", load_example(example))


def test_dotted_host_names_get_their_own_files(tmp_path: Path) -> None:
    result = judge_fleet(
        [ok("hv01.example", "hyperv-ready"), ok("hv01.other", "hyperv-ready")],
        "check",
        inventory=Path("fleet.yml"),
        limit=None,
        results_dir=tmp_path,
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "hv01.example.check.json" in names and "hv01.other.check.json" in names
    assert all(len(h.files) == 2 for h in result.hosts)


def test_the_exit_code_follows_the_worst_verdict() -> None:
    down = Collected(InventoryHost("down", ["edge"]), "unreachable", error="Connection refused")

    def code(*hosts: Collected, command: str = "check") -> tuple[str, int]:
        r = judge_fleet(list(hosts), command, inventory=Path("i.yml"), limit=None)  # type: ignore[arg-type]
        return r.verdict, r.exit_code

    assert code(ok("a", "hyperv-ready"), ok("b", "hyperv-ready")) == ("ready", 0)
    assert code(ok("a", "hyperv-ready"), ok("b", "hyperv-lbfo")) == ("not-ready", 1)
    assert code(ok("a", "hyperv-lbfo"), down) == ("unreachable", 3)
    assert code(ok("a", "hyperv-ready"), down, command="collect") == ("unreachable", 3)
    assert code(ok("a", "hyperv-ready"), ok("b", "hyperv-lbfo"), command="collect") == ("collected", 0)
    renamed = ok("c", "hyperv-ready")
    assert renamed.snapshot is not None
    for sw in renamed.snapshot.switches:
        sw.name = "SRIOV-2"
    # every host ready on its own, but the fleet rule sees two switch names: a finding
    assert code(ok("a", "hyperv-ready"), renamed) == ("partial", 1)
