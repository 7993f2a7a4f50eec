"""What a Windows host's collector prints through an Ansible script task (or WinRM), read into a snapshot."""

from __future__ import annotations

import json

import pytest

from iovkit.errors import InputError
from iovkit.sources.hyperv.bundle import snapshot_from_output
from tests.fixtures.hyperv_bundles import ready_bundle, to_ps51


def test_a_banner_before_the_bundle_is_skipped() -> None:
    text = "Windows PowerShell\r\nCopyright (C) Microsoft Corporation.\r\n" + json.dumps(to_ps51(ready_bundle()))
    snap = snapshot_from_output(text, "ansible:hv01")
    assert (snap.host.name, snap.host.platform) == ("HV-FAST-01", "hyperv")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Access is denied.\r\n", "ansible:hv01: the collector printed no bundle"),
        ('{"format": "iovkit-hyperv-bundle", "sources": {', "ansible:hv01: the collector's output is not valid JSON"),
    ],
)
def test_output_without_a_whole_bundle_is_one_line_naming_the_host(text: str, says: str) -> None:
    with pytest.raises(InputError) as err:
        snapshot_from_output(text, "ansible:hv01")
    assert str(err.value).startswith(says) and "\n" not in str(err.value)
