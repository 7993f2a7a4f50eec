"""Fleet test inventories: local-connection hosts, each with its own capture or captured tree."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from iovkit.examples import example_path
from tests.fixtures.hyperv_bundles import ready_bundle
from tests.fixtures.linux_tree import build_cx5_host

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def closed_port() -> int:
    """A loopback TCP port nobody listens on (bound, then released): a connection there is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def renamed_ready_bundle(switch: str, host: str) -> dict[str, Any]:
    """The ready host's bundle with its SET/IOV switch (and team) called `switch`: a peer that differs."""
    text = json.dumps(ready_bundle()).replace("SETswitch", switch).replace("HV-FAST-01", host)
    data: dict[str, Any] = json.loads(text)
    return data


def write_inventory(path: Path, groups: dict[str, dict[str, dict[str, Any]]], **all_vars: Any) -> Path:
    inv = {"all": {"vars": dict(all_vars), "children": {g: {"hosts": hosts} for g, hosts in groups.items()}}}
    path.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inventory of seven hosts: Hyper-V captures that differ (switch name, LBFO), KVM by tree and by
    archive, a host that refuses the connection and one whose capture does not exist."""
    d = tmp_path_factory.mktemp("fleet")
    (d / "hv-b.json").write_text(json.dumps(renamed_ready_bundle("SRIOV-2", "HV-FAST-02")), encoding="utf-8")
    build_cx5_host(d / "kvm-a-root")
    write_inventory(
        d / "inventory.yml",
        {
            "hyperv": {
                "hv-a": {"iovkit_from": str(example_path("hyperv-ready"))},
                "hv-b": {"iovkit_from": "hv-b.json"},  # relative: to the inventory's folder
                "hv-c": {"iovkit_from": str(example_path("hyperv-lbfo"))},
            },
            "kvm": {
                "kvm-a": {"iovkit_root": str(d / "kvm-a-root")},
                "kvm-b": {"iovkit_from": str(example_path("linux-cx5"))},
                "kvm-gone": {"iovkit_from": str(d / "no-such-capture.tar.gz")},
            },
            "edge": {
                "down-1": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": closed_port()},
            },
        },
        **LOCAL,
    )
    return d
