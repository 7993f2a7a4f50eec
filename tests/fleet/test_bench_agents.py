"""`iovkit bench --agents`: two load agents started through real Ansible (local connection), one reflector on
loopback; the merged step is exactly the sum of the agents' shares, and compare reads the result."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from iovkit.cli.main import main
from iovkit.traffic import histo
from iovkit.traffic.relay import RelaySettings, start_relay
from iovkit.traffic.results import SweepResult, load_result
from tests.fleet.conftest import LOCAL, closed_port, write_inventory


@pytest.fixture(scope="module")
def reflector() -> Iterator[str]:
    settings = RelaySettings(
        host="127.0.0.1", port=0, mode="echo", workers=1, key=secrets.token_bytes(32), rate_pps=1e9, rate_burst=1e9
    )
    with start_relay(settings) as handle:
        yield f"127.0.0.1:{handle.address[1]}"


def bench(inventory: Path, target: str, out: Path, *extra: str) -> int:
    return main(
        [
            "bench", "--agents", str(inventory), "--target", target, "--agent-listen", "127.0.0.1:0",
            "--rate", "2000", "--steps", "2", "--step-seconds", "0.3", "--warmup", "0.1",
            "--max-loss", "100", "--max-p99", "10000000", "-o", str(out), "--no-plots", "-q", *extra,
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_agents(tmp_path_factory: pytest.TempPathFactory, reflector: str) -> tuple[int, SweepResult, Path]:
    d = tmp_path_factory.mktemp("agents")
    inv = write_inventory(d / "agents.yml", {"load": {"agent-1": {}, "agent-2": {}, "agent-3": {}}}, **LOCAL)
    out = d / "dist.json"
    code = bench(inv, reflector, out, "--limit", "agent-1:agent-2")
    return code, load_result(out), out


def test_one_agent_per_selected_host_each_with_its_share(two_agents: tuple[int, SweepResult, Path]) -> None:
    code, result, _ = two_agents
    assert code == 0
    assert [a.name for a in result.agents] == ["agent-1", "agent-2"]  # the limit left agent-3 out
    assert all(a.clock_rtt_us > 0 for a in result.agents)
    for step in result.steps:
        assert [a.agent for a in step.agents] == ["agent-1", "agent-2"]
        assert [a.offered_pps for a in step.agents] == [step.offered_pps / 2] * 2


def test_merged_counts_and_histograms_equal_the_sum_of_the_agents(two_agents: tuple[int, SweepResult, Path]) -> None:
    _code, result, _ = two_agents
    assert result.steps
    for step in result.steps:
        for field in ("sent", "received", "expected", "lost", "reordered", "duplicates"):
            assert getattr(step, field) == sum(getattr(a, field) for a in step.agents), field
        merged = histo.decode(step.histogram)
        parts = [histo.decode(a.histogram) for a in step.agents]
        assert merged.count == sum(p.count for p in parts) > 0
        assert merged.equals(histo.merge_encoded(a.histogram for a in step.agents))


def test_compare_accepts_a_distributed_result(two_agents: tuple[int, SweepResult, Path]) -> None:
    _code, _result, out = two_agents
    assert main(["compare", str(out), str(out), "--no-plots"]) == 0


def test_an_agent_host_that_cannot_be_reached_stops_the_run_with_its_error(
    tmp_path: Path, reflector: str, capsys: pytest.CaptureFixture[str]
) -> None:
    down = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": closed_port()}
    inv = write_inventory(tmp_path / "agents.yml", {"load": {"agent-1": {}, "agent-down": down}}, **LOCAL)
    code = bench(inv, reflector, tmp_path / "out.json")
    assert code == 3
    assert "agent-down" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
