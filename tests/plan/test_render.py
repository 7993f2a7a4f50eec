"""Rendered scripts: PowerShell parsed by a real PowerShell grammar (tree-sitter), shell checked by `bash -n`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from iovkit.plan import make_plan
from iovkit.plan.model import SwitchSpec
from iovkit.plan.render import SEPARATOR, psq, render_plan_scripts, render_powershell, render_shell
from iovkit.policy import Policy
from tests.fixtures.hosts import i350_host, linux_host

ODD = 'O\'Brien\u2019s "VM" $(Remove-Item C:\\) `n'


def _ps_parser() -> Any:
    """tree-sitter's PowerShell grammar: the standalone wheel, else tree-sitter-language-pack (may download)."""
    try:
        import tree_sitter
        import tree_sitter_powershell

        return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    except ImportError:
        from tree_sitter_language_pack import get_parser

        return get_parser("powershell")


def _errors(source: str) -> list[str]:
    tree = _ps_parser().parse(source.encode())
    bad: list[str] = []

    def walk(node: Any) -> None:
        if node.type == "ERROR" or node.is_missing:
            bad.append(f"{node.type} at {node.start_point}: {source.encode()[node.start_byte : node.end_byte][:80]!r}")
            return
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return bad


def _odd_host():  # type: ignore[no-untyped-def]
    snap = i350_host(vms=2)
    snap.vm_adapters[1].vm_name = ODD
    snap.vms[0].name = ODD
    snap.switches[0].name = "Ext 'Q'"
    for a in snap.vm_adapters:
        a.switch_name = "Ext 'Q'"
    return snap


def _sriov_off_host():  # type: ignore[no-untyped-def]
    snap = i350_host()
    snap.nics[0].sriov_enabled = False
    snap.nics[1].sriov_enabled = False
    return snap


@pytest.mark.parametrize("snap", [i350_host(), _odd_host(), _sriov_off_host()], ids=["i350", "odd-names", "sriov-off"])
def test_powershell_scripts_parse_without_error_nodes(snap) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(snap, Policy(allow_second_switch=True))
    apply_ps, rollback_ps = render_powershell(plan)
    assert _errors(apply_ps) == []
    assert _errors(rollback_ps) == []
    assert "New-VMSwitch -Name" in apply_ps and "-EnableIov $true" in apply_ps
    kinds = {s.kind for s in plan.steps}
    assert kinds >= {"record", "disconnect", "remove-switch", "create-switch", "connect", "set-iov", "verify-vf"}
    assert "Remove-VMNetworkAdapter" not in apply_ps + rollback_ps


def test_the_grammar_check_does_catch_a_broken_script() -> None:
    assert _errors("if ((Get-VMSwitch -Name 'x'.IovEnabled) { throw 'x' \n") != []


def test_names_are_single_quoted_with_quotes_doubled() -> None:
    assert psq("O'Brien") == "'O''Brien'"
    assert psq("a\u2019b") == "'a\u2019\u2019b'"
    plan = make_plan(_odd_host(), None)
    apply_ps, _ = render_powershell(plan)
    assert "-VMName 'O''Brien\u2019\u2019s \"VM\" $(Remove-Item C:\\) `n'" in apply_ps


def test_rollback_script_restores_the_old_switch_guarded() -> None:
    _, rollback_ps = render_powershell(make_plan(i350_host(), None))
    assert (
        "if (-not (Get-VMSwitch -Name 'External' -ErrorAction SilentlyContinue)) { New-VMSwitch -Name "
        "'External' -NetAdapterName 'Ethernet' -EnableIov $false -AllowManagementOS $true | Out-Null }"
    ) in rollback_ps
    first = rollback_ps.index("Undo step")
    assert "set relay-06" in rollback_ps[first : first + 200]  # last step first


def test_set_switch_keeps_its_members() -> None:
    from iovkit.plan.model import CreateSwitchStep
    from iovkit.plan.render import ps_phase

    step = CreateSwitchStep(switch=SwitchSpec(name="SET", nics=["NIC 1", "NIC 2"], iov=True, embedded_teaming=True))
    text = ps_phase(step, "action")
    assert "-NetAdapterName 'NIC 1', 'NIC 2' -EnableIov $true" in text and "-EnableEmbeddedTeaming $true" in text
    assert _errors(text) == []


def test_shell_scripts_pass_bash_n(tmp_path: Path) -> None:
    snap = linux_host()
    snap.nics[0].name = "enp3s0f0 x'y"
    plan = make_plan(snap, None)
    apply_sh, rollback_sh = render_shell(plan)
    for name, text in (("apply.sh", apply_sh), ("rollback.sh", rollback_sh)):
        path = tmp_path / name
        path.write_text(text)
        proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
    assert "'/sys/class/net/enp3s0f0 x'\"'\"'y/device/sriov_numvfs'" in apply_sh
    assert "virsh attach-device" in apply_sh and "<interface type='hostdev' managed='yes'>" in apply_sh
    assert "virsh detach-interface" in rollback_sh


def test_render_plan_scripts_stdout_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(make_plan(i350_host(), None).to_json())
    render_plan_scripts(plan_path, None)
    text = capsys.readouterr().out
    head, _, tail = text.partition(SEPARATOR)
    assert "Disconnect-VMNetworkAdapter" in head and "Undo step" in tail
    render_plan_scripts(plan_path, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["apply.ps1", "rollback.ps1"]
    lin = tmp_path / "linux.json"
    lin.write_text(make_plan(linux_host(), None).to_json())
    render_plan_scripts(lin, tmp_path / "lout")
    assert sorted(p.name for p in (tmp_path / "lout").iterdir()) == ["apply.sh", "rollback.sh"]
