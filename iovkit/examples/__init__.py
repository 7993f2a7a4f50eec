"""Example inputs shipped with iovkit: real-shaped host captures for machines without SR-IOV hardware.

Each example is stored in the raw form its source produces (a collector bundle in PowerShell's JSON, or a
Linux archive), so loading one (`iovkit.sources.load_example`) exercises the same parser a real host does.
This package holds data only: it imports nothing above errors.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from iovkit.errors import InputError

# name -> (file in this package, one-line description)
EXAMPLES: dict[str, tuple[str, str]] = {
    "hyperv-firmware-blocked": (
        "hyperv-firmware-blocked.json",
        "Hyper-V host whose firmware blocks SR-IOV (_OSC and ACS reasons)",
    ),
    "hyperv-i350-no-iov": (
        "hyperv-i350-no-iov.json",
        "Intel I350 (2 ports) behind an external switch created without IOV, 8 relay VMs, management OS on it",
    ),
    "hyperv-ready": ("hyperv-ready.json", "Ready host: IOV switch, VFs active in the VMs"),
    "hyperv-lbfo": ("hyperv-lbfo.json", "Switch bound to an LBFO team (SR-IOV not supported there)"),
    "linux-cx5": ("linux-cx5.tar.gz", "Linux KVM host with a ConnectX-5 and VFs given to libvirt domains"),
    "esxi-x710": (
        "esxi-x710.txt",
        "ESXi 7.0.3 pasted esxcli: X710 with 8 VFs on vmnic0; relay-01 on a VF, relay-02 on vmxnet3, relay-03 "
        "off for lack of a memory reservation",
    ),
}


def example_path(name: str) -> Path:
    if name not in EXAMPLES:
        raise InputError(f"unknown example {name!r}; choose one of: {', '.join(EXAMPLES)}", field="--example")
    return Path(str(resources.files("iovkit.examples").joinpath(EXAMPLES[name][0])))
