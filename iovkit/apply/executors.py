"""Executors run one phase of one typed step: local PowerShell, WinRM (pypsrp), local shell, or the simulator.

All share one small interface, so the engine, the journal and rollback do not care where a step runs.
The command text an executor reports is the rendered script from `iovkit.plan.render`, which is also what
`iovkit script plan` prints for review. Executors that test a live host for staleness are handed a `collect`
callable (the CLI binds it to the right source), so apply never reaches into the sources itself.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from iovkit.apply.esxi_sim import EsxiSimulator
from iovkit.apply.esxi_sim import SimError as EsxiSimError
from iovkit.apply.simulator import SimError, Simulator
from iovkit.errors import InputError, UnreachableError
from iovkit.fingerprint import fingerprint, first_difference
from iovkit.plan.model import Plan, SetNumVfsStep, Step
from iovkit.plan.render import Phase, ps_phase, sh_phase
from iovkit.snapshot import HostSnapshot
from iovkit.sources.windows import (
    PS_PRELUDE,
    RemoteTarget,
    describe_failure,
    find_powershell,
    powershell_stdin_argv,
    winrm_client,
)

Collect = Callable[[], HostSnapshot]  # re-collects the live host the executor acts on
TIMEOUT = 600  # New-VMSwitch on a busy host can take minutes; a hung cmdlet must not hang apply forever


@dataclass
class Outcome:
    ok: bool
    output: str


class Executor(Protocol):
    name: str

    def command(self, step: Step, phase: Phase) -> str:
        """The exact text that will run (journaled before it runs)."""
        ...

    def run(self, step: Step, phase: Phase) -> Outcome: ...

    def stale_reason(self, plan: Plan) -> str | None:
        """None when the live host still matches the plan's snapshot; else a one-line reason."""
        ...

    def host_name(self) -> str | None:
        """The name of the host steps run on, when the executor knows it cheaply (rollback checks it)."""
        ...


def _compare(plan: Plan, live: HostSnapshot) -> str | None:
    if (live.host.name or "").lower() != (plan.host or "").lower():
        return f"plan is for host {plan.host!r}, but the live host is {live.host.name!r}"
    if fingerprint(live) != plan.fingerprint:
        diff = first_difference(plan.snapshot, live) or "facts differ"
        return f"stale snapshot: the live host changed since the plan was made ({diff}); re-collect and re-plan"
    return None


class SimulatorExecutor:
    """Runs steps on the Hyper-V simulator; with a state file, saves after every change."""

    name = "simulator"
    refusals: tuple[type[Exception], ...] = (SimError,)

    def __init__(self, sim: Simulator | EsxiSimulator, state_path: Path | None = None) -> None:
        self.sim = sim
        self.state_path = state_path

    def command(self, step: Step, phase: Phase) -> str:
        return ps_phase(step, phase)

    def run(self, step: Step, phase: Phase) -> Outcome:
        try:
            out = self.sim.execute(step, phase)
            ok = True
        except self.refusals as err:
            out, ok = str(err), False
        if self.state_path is not None and phase != "verify":
            self.sim.save(self.state_path)
        return Outcome(ok, out)

    def stale_reason(self, plan: Plan) -> str | None:
        return _compare(plan, self.sim.to_snapshot())

    def host_name(self) -> str | None:
        return self.sim.s.host


class EsxiSimulatorExecutor(SimulatorExecutor):
    """Runs ESXi steps on the ESXi simulator: the same loop, esxcli/API renderings and the ESXi refusals."""

    refusals = (EsxiSimError,)

    def command(self, step: Step, phase: Phase) -> str:
        from iovkit.plan.render_esxi import esx_phase

        return esx_phase(step, phase)


class LocalPowerShellExecutor:
    """powershell.exe (5.1) or pwsh (7) on this Windows host, one process per phase."""

    name = "local"

    def host_name(self) -> str | None:
        import socket

        return socket.gethostname()

    def __init__(self, collect: Collect) -> None:
        self.exe = find_powershell("no PowerShell on PATH (powershell.exe or pwsh); use --executor winrm or simulator")
        self.collect = collect

    def command(self, step: Step, phase: Phase) -> str:
        return ps_phase(step, phase)

    def run(self, step: Step, phase: Phase) -> Outcome:
        script = PS_PRELUDE + ps_phase(step, phase)
        try:
            proc = subprocess.run(
                powershell_stdin_argv(self.exe),
                input=script,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return Outcome(False, f"{self.exe}: {err}")
        return Outcome(proc.returncode == 0, (proc.stdout + proc.stderr).strip())

    def stale_reason(self, plan: Plan) -> str | None:
        try:
            live = self.collect()
        except ImportError as err:
            raise UnreachableError(f"cannot collect this host: {err}") from err
        return _compare(plan, live)


class WinRMExecutor:
    """The same PowerShell over WinRM (pypsrp); the password comes from the caller, never argv."""

    name = "winrm"

    def host_name(self) -> str | None:
        return None  # --host may be an address or an alias: the host's own name is not known here

    def __init__(self, target: object, password: str | None, collect: Collect) -> None:
        if not isinstance(target, RemoteTarget):
            raise InputError("--executor winrm needs --host", field="--host")
        self.target = target
        self.password = password
        self.collect = collect
        self._client: object | None = None

    def _connect(self) -> object:
        if self._client is None:
            # The collector's client policy (timeouts, no silent reconnects): one policy per run.
            self._client = winrm_client(self.target, self.password)
        return self._client

    def command(self, step: Step, phase: Phase) -> str:
        return ps_phase(step, phase)

    def run(self, step: Step, phase: Phase) -> Outcome:
        client = self._connect()
        try:
            output, streams, had_errors = client.execute_ps(PS_PRELUDE + ps_phase(step, phase))  # type: ignore[attr-defined]
        except Exception as err:  # pypsrp raises transport, auth and WSMan errors of many types
            raise UnreachableError(f"{self.target.host}: {describe_failure(err, self.password)}") from None
        errors = "\n".join(str(e) for e in getattr(streams, "error", []))
        return Outcome(not had_errors, (str(output) + ("\n" + errors if errors else "")).strip())

    def stale_reason(self, plan: Plan) -> str | None:
        try:
            live = self.collect()
        except ImportError as err:
            raise UnreachableError(f"cannot collect {self.target.host} over WinRM: {err}") from err
        return _compare(plan, live)


class ShellExecutor:
    """Linux steps through bash; `root` prefixes sysfs paths so a test tree can stand in for /sys.

    `ip link` and `virsh` steps only run against the real root: a --root tree has no devices to set.
    """

    name = "shell"

    def host_name(self) -> str | None:
        import socket

        return socket.gethostname() if self.prefix == "" else None

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root
        self.prefix = "" if str(root) == "/" else str(root)

    def command(self, step: Step, phase: Phase) -> str:
        return sh_phase(step, phase, self.prefix)

    def run(self, step: Step, phase: Phase) -> Outcome:
        if self.prefix and not isinstance(step, SetNumVfsStep):
            return Outcome(False, f"step {step.id} ({step.kind}) runs ip/virsh, which cannot act on --root {self.root}")
        try:
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", sh_phase(step, phase, self.prefix)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return Outcome(False, f"bash: {err}")
        return Outcome(proc.returncode == 0, (proc.stdout + proc.stderr).strip())

    def stale_reason(self, plan: Plan) -> str | None:
        """Compare what the steps depend on: each PF's sriov_numvfs still reads what the snapshot said."""
        import socket

        if self.prefix == "" and (plan.host or "") != socket.gethostname():
            return f"plan is for host {plan.host!r}, but this host is {socket.gethostname()!r}"
        for step in plan.steps:
            if isinstance(step, SetNumVfsStep):
                f = self.root / "sys/class/net" / step.pf / "device/sriov_numvfs"
                try:
                    now = int(f.read_text().strip() or "0")
                except (OSError, ValueError) as err:
                    return f"cannot read {f}: {err}"
                if now != step.old_num_vfs:
                    return (
                        f"stale snapshot: {step.pf} sriov_numvfs is {now}, the plan expected "
                        f"{step.old_num_vfs}; re-collect and re-plan"
                    )
        return None
