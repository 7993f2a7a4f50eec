"""Policy: scope of SR-IOV, validated with errors naming file, field and value."""

from __future__ import annotations

import pytest

from iovkit.errors import InputError
from iovkit.policy import adapters_in_scope, in_scope, load_policy
from iovkit.snapshot import HostInfo, HostSnapshot, SourceInfo, VmAdapter, VSwitch


def _snap() -> HostSnapshot:
    return HostSnapshot(
        source=SourceInfo(kind="snapshot"),
        host=HostInfo(platform="hyperv"),
        switches=[VSwitch(name="External", switch_type="External"), VSwitch(name="Lab", switch_type="Internal")],
        vm_adapters=[
            VmAdapter(vm_name="relay-02", name="Network Adapter", switch_name="External"),
            VmAdapter(vm_name="relay-01", name="Network Adapter", switch_name="External"),
            VmAdapter(vm_name="db-01", name="Network Adapter", switch_name="External"),
            VmAdapter(vm_name="lab-01", name="Network Adapter", switch_name="Lab"),
            VmAdapter(name="External", is_management_os=True, switch_name="External"),
        ],
    )


def test_without_policy_every_vm_adapter_on_an_external_switch(tmp_path):
    snap = _snap()
    names = [a.vm_name for a in adapters_in_scope(snap, None)]
    assert names == ["db-01", "relay-01", "relay-02"]  # internal switch and management OS are out


def test_policy_selects_by_glob_in_priority_order(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\nadapters:\n  - vm: relay-02\n  - vm: 'relay-*'\n    iov_weight: 50\n")
    pol = load_policy(p)
    snap = _snap()
    assert [a.vm_name for a in adapters_in_scope(snap, pol)] == ["relay-02", "relay-01"]
    db = next(a for a in snap.vm_adapters if a.vm_name == "db-01")
    assert not in_scope(snap, db, pol)
    r1 = next(a for a in snap.vm_adapters if a.vm_name == "relay-01")
    assert pol.selector_for(r1) is not None and pol.selector_for(r1).iov_weight == 50  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("adapters:\n  - vm: relay-*\n    iov_weight: 500\n", "adapters.0.iov_weight"),
        ("management_os: sometimes\n", "management_os"),
        ("adapters: [\n", "line"),
        ("- just a list\n", "mapping"),
        ("colour: blue\n", "colour"),
    ],
)
def test_malformed_policy_names_file_and_field(tmp_path, text, needle):
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    with pytest.raises(InputError) as ei:
        load_policy(p)
    assert str(p) in str(ei.value) and needle in str(ei.value)
    assert "\n" not in str(ei.value)
