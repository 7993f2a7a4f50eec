"""`iovkit script collect --esxi` runs in a POSIX shell and its output reads back as the same host.

The ESXi tools are stand-ins that print the example host's recorded output (esxcli, vim-cmd, lspci,
esxcfg-module, and the .vmx files); the script, the shell, awk, sed, sort and grep are the real ones.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from iovkit.examples import example_path
from iovkit.fingerprint import fingerprint
from iovkit.sources import load_example
from iovkit.sources.esxi.paste import snapshot_from_paste, split_sections
from iovkit.sources.esxi.script import esxi_collect_script

STUB = """#!{python}
import json, os, sys
table = json.load(open({table!r}))
name = os.path.basename(sys.argv[0])
key = " ".join([name, *sys.argv[1:]])
if name == "cat":
    key = "cat " + os.path.basename(sys.argv[-1])
if name == "grep" and sys.argv[-1].startswith("/var/log/"):
    sys.exit(1)  # no DMAR/IOV line in this host's log
if key in table:
    sys.stdout.write(table[key])
    sys.exit(0)
real = {{"cat": "/bin/cat", "grep": "/bin/grep", "hostname": None}}.get(name)
if real:
    os.execv(real, [real, *sys.argv[1:]])
sys.stderr.write("no recording for: " + key + "\\n")
sys.exit(1)
"""

GETALLVMS = """Vmid    Name                 File                          Guest OS       Version   Annotation
1      relay-01   [datastore1] relay-01/relay-01.vmx   ubuntu64Guest   vmx-19
2      relay-02   [datastore1] relay-02/relay-02.vmx   ubuntu64Guest   vmx-14
3      relay-03   [datastore1] relay-03/relay-03.vmx   ubuntu64Guest   vmx-19
"""


def _recordings() -> dict[str, str]:
    facts = split_sections(example_path("esxi-x710").read_text(), "example")
    table: dict[str, str] = {"hostname -s": "esx01\n", "vim-cmd vmsvc/getallvms": GETALLVMS}
    for sec in facts.sections:
        if sec.command is None:
            continue
        text = sec.text + "\n"
        cmd = sec.command.split(" | ")[0]
        if cmd.startswith("cat "):
            cmd = "cat " + os.path.basename(cmd.split()[-1])
        table[cmd] = text
    return table


def test_the_script_output_reads_back_as_the_example_host(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "table.json"
    table.write_text(json.dumps(_recordings()))
    body = STUB.format(python=sys.executable, table=str(table))
    for name in ("esxcli", "vim-cmd", "lspci", "esxcfg-module", "hostname", "cat", "grep"):
        f = bin_dir / name
        f.write_text(body)
        f.chmod(f.stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "iovkit-esxi.sh"
    script.write_text(esxi_collect_script())
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    r = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert r.stderr == "", r.stderr
    out = tmp_path / "iovkit-esxi.txt"
    out.write_text(r.stdout)
    snap = snapshot_from_paste(out)
    want = load_example("esxi-x710")
    assert fingerprint(snap) == fingerprint(want)
    assert [v.vm for v in snap.vfs if v.vm] == ["relay-01"] and snap.esxi is not None
    assert snap.esxi.boot_log == [] and snap.esxi.reboot_required is False


def test_the_cli_prints_the_script() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "iovkit", "script", "collect", "--esxi"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout == esxi_collect_script()
    assert "esxcli network sriovnic vf list" in r.stdout and "set" not in r.stdout.replace("sed", "").split()
