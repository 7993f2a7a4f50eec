"""`iovkit fleet` and `iovkit bench --agents` over real SSH: sshd in network namespaces, throw-away keys, the
modules run on the far side. One set of hosts serves every test here (sshd and Ansible start slowly)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iovkit.cli.main import main
from iovkit.fleet.model import FleetResult, load_fleet_result
from iovkit.traffic import histo
from iovkit.traffic.relay import RelaySettings, start_relay
from iovkit.traffic.results import SweepResult, load_result
from tests.fixtures.linux_tree import build_cx5_host
from tests.fixtures.sshhosts import SshHost, available, ssh_hosts, ssh_vars
from tests.fleet.conftest import write_inventory

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture(scope="module")
def ssh_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[SshHost], Path, Path]]:
    d = tmp_path_factory.mktemp("fleet-ssh")
    with ssh_hosts(2, d) as (hosts, key):
        yield hosts, key, d


def remote(key: Path, h: SshHost, **extra: Any) -> dict[str, Any]:
    """A host reached over SSH whose Python has iovkit from this checkout."""
    return {
        **ssh_vars(key, h.address),
        "ansible_python_interpreter": sys.executable,
        "iovkit_environment": {"PYTHONPATH": str(REPO)},
        **extra,
    }


@pytest.fixture(scope="module")
def ssh_fleet(ssh_env: tuple[list[SshHost], Path, Path]) -> tuple[int, FleetResult, Path]:
    hosts, key, d = ssh_env
    build_cx5_host(d / "tree")
    inv = write_inventory(
        d / "inventory.yml",
        {"kvm": {"ssh-tree": remote(key, hosts[0], iovkit_root=str(d / "tree")), "ssh-live": remote(key, hosts[1])}},
    )
    out = d / "out.json"
    # a generous connection timeout: a loaded 2-CPU machine can be slow to finish an SSH handshake
    code = main(
        [
            "fleet",
            "check",
            "-i",
            str(inv),
            "-f",
            "json",
            "-o",
            str(out),
            "--results-dir",
            str(d / "r"),
            "--timeout",
            "60",
        ]
    )
    return code, load_fleet_result(d / "r" / "fleet.json"), d


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


@pytest.fixture(scope="module")
def ssh_bench(ssh_env: tuple[list[SshHost], Path, Path]) -> tuple[int, SweepResult]:
    """Two agents in their namespaces, started over SSH, find the controller by SSH_CLIENT and load a reflector
    on the root namespace's end of the first pair."""
    hosts, key, d = ssh_env
    inv = write_inventory(
        d / "agents.yml", {"load": {"agent-a": remote(key, hosts[0]), "agent-b": remote(key, hosts[1])}}
    )
    relay = RelaySettings(host=hosts[0].gateway, port=0, mode="echo", workers=1, key=secrets.token_bytes(32),
                          rate_pps=1e9, rate_burst=1e9)  # fmt: skip
    with start_relay(relay) as handle:
        code = main(
            [
                "bench", "--agents", str(inv), "--target", f"{hosts[0].gateway}:{handle.address[1]}",
                "--rate", "2000", "--steps", "1", "--step-seconds", "0.3", "--warmup", "0.1", "--max-loss", "100",
                "--max-p99", "10000000", "-o", str(d / "dist.json"), "--no-plots", "-q",
            ]
        )  # fmt: skip
    return code, load_result(d / "dist.json")


def test_agents_over_ssh_connect_back_and_their_counts_add_up(ssh_bench: tuple[int, SweepResult]) -> None:
    code, result = ssh_bench
    assert code == 0
    assert [a.name for a in result.agents] == ["agent-a", "agent-b"]
    assert all(a.clock_rtt_us > 0 for a in result.agents)
    step = result.steps[0]
    assert step.sent == sum(a.sent for a in step.agents) > 0
    assert step.received == sum(a.received for a in step.agents)
    assert histo.decode(step.histogram).count == sum(histo.decode(a.histogram).count for a in step.agents)
