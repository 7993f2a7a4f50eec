"""`iovkit fleet` over real SSH: sshd in network namespaces, throw-away keys, the module run on the far side."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from iovkit.cli.main import main
from iovkit.fleet.model import FleetResult, load_fleet_result
from tests.fleet.conftest import write_inventory
from tests.fleet.sshhosts import available, ssh_hosts, ssh_vars
from tests.sources.linux_tree import build_cx5_host

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture(scope="module")
def ssh_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, FleetResult, Path]]:
    d = tmp_path_factory.mktemp("fleet-ssh")
    build_cx5_host(d / "tree")
    with ssh_hosts(2, d) as (hosts, key):
        remote = {"ansible_python_interpreter": sys.executable, "iovkit_environment": {"PYTHONPATH": str(REPO)}}
        inv = write_inventory(
            d / "inventory.yml",
            {
                "kvm": {
                    "ssh-tree": {**ssh_vars(key, hosts[0].address), **remote, "iovkit_root": str(d / "tree")},
                    "ssh-live": {**ssh_vars(key, hosts[1].address), **remote},
                }
            },
        )
        code = main(
            ["fleet", "check", "-i", str(inv), "-f", "json", "-o", str(d / "out.json"), "--results-dir", str(d / "r")]
        )
        yield code, load_fleet_result(d / "r" / "fleet.json"), d


def test_hosts_reached_over_ssh_are_collected_there(ssh_fleet: tuple[int, FleetResult, Path]) -> None:
    _code, result, _ = ssh_fleet
    rows = {h.name: h for h in result.hosts}
    tree, live = rows["ssh-tree"], rows["ssh-live"]
    assert (tree.status, tree.method, tree.host_name, tree.platform) == ("ok", "tree", "kvm-edge-01", "linux"), tree
    assert (tree.vfs_total, tree.vfs_used) == (30, 2)
    assert (live.status, live.method, live.platform) == ("ok", "module", "linux"), live.error


def test_the_ssh_run_judges_and_writes_like_a_local_one(ssh_fleet: tuple[int, FleetResult, Path]) -> None:
    code, result, d = ssh_fleet
    assert (d / "r" / "ssh-tree.check.json").exists() and (d / "r" / "ssh-live.snapshot.json").exists()
    assert code == result.exit_code and result.verdict in ("ready", "partial", "not-ready")
