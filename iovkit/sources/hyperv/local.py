"""Run the collector on this Windows host through powershell.exe (5.1) or pwsh (7), then parse its bundle."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from iovkit.errors import InputError, UnreachableError
from iovkit.snapshot import HostSnapshot
from iovkit.sources.hyperv.bundle import snapshot_from_bundle
from iovkit.sources.hyperv.script import collector_script
from iovkit.sources.windows import find_powershell, powershell_file_argv

TIMEOUT_S = 600


def collect_local() -> HostSnapshot:
    """Collect this host: write the script to a temp dir, run it, read the bundle it wrote.

    The collector runs as a file so -OutFile binds as a parameter.
    """
    exe = find_powershell()
    with tempfile.TemporaryDirectory(prefix="iovkit-") as tmp:
        script = Path(tmp) / "collect.ps1"
        out = Path(tmp) / "bundle.json"
        script.write_text(collector_script(), encoding="utf-8-sig")  # BOM: 5.1 reads the file as UTF-8
        try:
            proc = subprocess.run(
                powershell_file_argv(exe, script, "-OutFile", str(out)),
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise UnreachableError(f"{exe}: could not run the collector: {err}") from err
        if not out.exists():
            detail = " ".join((proc.stderr or proc.stdout or "").split())[:200]
            raise UnreachableError(f"{exe} exited {proc.returncode} without writing a bundle: {detail}")
        try:
            data = json.loads(out.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"the collector wrote invalid JSON: {err}", path=f"{exe} collect.ps1") from err
        return snapshot_from_bundle(data, f"local:{exe}")
