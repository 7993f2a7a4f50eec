"""The collector script (syntax, coverage of item 3a), the local runner and the WinRM runner."""

from __future__ import annotations

import http.server
import json
import logging
import re
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from iovkit.errors import UnreachableError
from iovkit.sources import RemoteTarget, windows
from iovkit.sources.hyperv import local, winrm
from iovkit.sources.hyperv.normalize import SOURCES
from iovkit.sources.hyperv.script import collector_script
from tests.fixtures import hyperv_bundles as B

SECRET = "Tr0ub4dor&3-not-in-logs"
GUEST_CMDLETS = ("Get-NetAdapterStatistics", "Get-NetAdapterHardwareInfo")  # the guest part's cmdlets


def _powershell_parser() -> Any:
    """The PowerShell grammar: the tree-sitter-powershell wheel (no download), else the language pack's."""
    try:
        import tree_sitter as ts
        import tree_sitter_powershell as tsp

        return ts.Parser(ts.Language(tsp.language()))
    except ImportError:
        from tree_sitter_language_pack import get_parser

        return get_parser("powershell")


def _nodes(node: Any) -> list[Any]:
    out = [node]
    for child in node.children:
        out.extend(_nodes(child))
    return out


@pytest.fixture(scope="module")
def tree() -> Any:
    return _powershell_parser().parse(collector_script().encode("utf-8"))


def test_script_parses_without_errors(tree: Any) -> None:
    bad = [(n.type, n.start_point) for n in _nodes(tree.root_node) if n.type == "ERROR" or n.is_missing]
    assert bad == []


def test_script_names_every_source_of_item_3a(tree: Any) -> None:
    text = collector_script()
    commands = {n.text.decode() for n in _nodes(tree.root_node) if n.type == "command_name"}
    cmdlets = [s for s in SOURCES if s.startswith("Get-")]
    assert set(cmdlets) <= commands
    for cls in ("Win32_OperatingSystem", "Win32_Processor", "Win32_ComputerSystem"):
        assert re.search(rf"Get-CimInstance -ClassName {cls}\b", text)
    assert "Get-VMNetworkAdapter -All" in text
    assert "'HyperVisorPresent', 'HyperVRequirement*'" in text
    # each source is recorded under its name in the bundle, exactly the names the parser knows
    assert re.findall(r"^Invoke-Source '([^']+)'", text, re.M) == list(SOURCES)


def test_every_source_runs_inside_invoke_source_and_its_try(tree: Any) -> None:
    """A failing cmdlet cannot stop the script: each runs in a script block handed to Invoke-Source (try/catch)."""
    nodes = _nodes(tree.root_node)
    funcs = [n for n in nodes if n.type == "function_statement" and n.text.startswith(b"function Invoke-Source")]
    assert len(funcs) == 1 and any(n.type == "try_statement" for n in _nodes(funcs[0]))
    assert any(n.type == "catch_clauses" for n in _nodes(funcs[0]))
    for n in nodes:
        if n.type == "command_name" and n.text.decode() in (*SOURCES, *GUEST_CMDLETS):
            p = n.parent
            while p is not None and not (p.type == "command" and p.text.startswith(b"Invoke-Source")):
                p = p.parent
            assert p is not None, f"{n.text.decode()} runs outside Invoke-Source"
    text = collector_script()
    assert re.search(r"ConvertTo-Json -Depth \d+ -EnumsAsStrings", text)  # PowerShell 6+
    assert re.search(r"ConvertTo-Json -Depth \d+\s*$", text, re.M)  # Windows PowerShell 5.1
    assert "[string]$OutFile" in text and "$ErrorActionPreference = 'Stop'" in text


def test_cli_prints_the_script(cli: Any) -> None:
    r = cli("script", "collect")
    assert r.code == 0 and r.out == collector_script()


# -- local runner ----------------------------------------------------------------------------------------------
def _fake_powershell(bindir: Path, name: str, body: str) -> Path:
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_local_without_powershell_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UnreachableError, match=r"no PowerShell found.*powershell\.exe or pwsh"):
        local.collect_local()


def test_local_runs_the_script_file_and_reads_its_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `pwsh` on PATH: checks it was given the collector as a file and -OutFile, writes a bundle."""
    bundle = tmp_path / "fixture.json"
    bundle.write_text(json.dumps(B.to_ps51(B.i350_bundle())))
    argv_log = tmp_path / "argv.txt"
    _fake_powershell(
        tmp_path / "bin",
        "pwsh",
        f"""
printf '%s\\n' "$@" > {argv_log}
while [ $# -gt 0 ]; do
  case "$1" in -File) script="$2"; shift;; -OutFile) out="$2"; shift;; esac; shift
done
{shutil.which("grep")} -q iovkit-hyperv-bundle "$script" || exit 9
{shutil.which("cp")} {bundle} "$out"
""",
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    snap = local.collect_local()
    assert snap.host.name == "HV-RELAY-01" and len(snap.vms) == 8
    assert snap.source.origin == f"local:{tmp_path / 'bin' / 'pwsh'}"
    argv = argv_log.read_text().split("\n")
    assert argv[:5] == ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File"]
    assert not Path(argv[5]).exists()  # the temp script is cleaned up


def test_local_failure_names_the_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_powershell(tmp_path / "bin", "powershell.exe", "echo 'Get-VMHost : Access denied' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(UnreachableError, match=r"powershell\.exe exited 1 without writing a bundle: .*Access denied"):
        local.collect_local()


# -- WinRM -----------------------------------------------------------------------------------------------------
def test_client_arguments() -> None:
    from pypsrp.client import Client

    kw = windows.client_kwargs(RemoteTarget("hv1.corp", user="CORP\\ops", auth="kerberos", ssl=True), SECRET)
    assert (kw["port"], kw["ssl"], kw["auth"], kw["username"], kw["password"]) == (
        5986,
        True,
        "kerberos",
        "CORP\\ops",
        SECRET,
    )
    kw = windows.client_kwargs(RemoteTarget("hv1", auth="ntlm", port=15985), None)
    assert (kw["port"], kw["ssl"], kw["auth"], kw["username"], kw["password"]) == (15985, False, "ntlm", None, None)
    kw = windows.client_kwargs(RemoteTarget("hv1"), None)
    assert (kw["port"], kw["auth"]) == (5985, "negotiate")
    Client("hv1", **windows.client_kwargs(RemoteTarget("hv1", user="u", auth="ntlm"), SECRET))  # pypsrp accepts them


def test_unreachable_host_fails_fast_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    t0 = time.monotonic()
    with pytest.raises(UnreachableError) as ei:
        winrm.collect_remote(RemoteTarget("127.0.0.1", user="ops", auth="ntlm", port=1), SECRET)
    assert time.monotonic() - t0 < 20  # a refused port, not a hang (generous bound: shared CI)
    msg = str(ei.value)
    assert "127.0.0.1:1" in msg and "\n" not in msg and SECRET not in msg
    assert SECRET not in caplog.text
    assert ei.value.__cause__ is None and ei.value.__suppress_context__


def test_cli_remote_exit_code_and_no_password(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOVKIT_PASSWORD", SECRET)
    r = cli("collect", "--host", "127.0.0.1", "--port", "1", "--user", "ops", "--auth", "ntlm")
    assert r.code == 3, r.err
    assert len(r.err.strip().splitlines()) == 1 and "127.0.0.1" in r.err
    assert SECRET not in r.err + r.out


class _Refuse401(http.server.BaseHTTPRequestHandler):
    """A WinRM endpoint that answers every request 401 without offering an authentication method."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_authentication_failure_names_the_host_not_the_password() -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse401)
    port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(UnreachableError) as ei:
            winrm.collect_remote(RemoteTarget("127.0.0.1", user="ops", auth="ntlm", port=port), SECRET)
    finally:
        srv.shutdown()
        srv.server_close()
    msg = str(ei.value)
    assert f"127.0.0.1:{port}" in msg and "(ntlm)" in msg and "AuthenticationError" in msg
    assert SECRET not in msg
