"""On a host without SR-IOV hardware, doctor shows the shipped examples' verdicts beside its own."""

from __future__ import annotations

import json
import sys

import pytest

from iovkit.doctor import has_sriov_hardware
from iovkit.sources import collect_here

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="live Linux host")


def test_doctor_here_lists_every_example_with_its_verdict(cli):
    if has_sriov_hardware(collect_here()):
        pytest.skip("this host has SR-IOV hardware: examples are not shown")
    r = cli("doctor", "--format", "json")
    assert r.code == 1  # this machine cannot be ready: no SR-IOV hardware
    report = json.loads(r.out)
    verdicts = {e["example"]: e["verdict"] for e in report["examples"]}
    assert verdicts["hyperv-ready"] == "ready"
    assert verdicts["hyperv-firmware-blocked"] == "not-ready"
    assert verdicts["hyperv-lbfo"] == "not-ready"
    assert verdicts["esxi-x710"] == "partial"  # relay-03 has no memory reservation
    assert set(verdicts) == {
        "hyperv-firmware-blocked",
        "hyperv-i350-no-iov",
        "hyperv-ready",
        "hyperv-lbfo",
        "linux-cx5",
        "esxi-x710",
    }


def test_doctor_no_examples_flag_and_example_input_show_none(cli):
    r = cli("doctor", "--format", "json", "--no-examples")
    assert json.loads(r.out)["examples"] == []
    r = cli("doctor", "--format", "json", "--example", "hyperv-ready")
    assert r.code == 0
    assert json.loads(r.out)["examples"] == []
