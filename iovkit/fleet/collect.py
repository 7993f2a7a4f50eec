"""Collect every selected host through the collection's playbook; one outcome per host, never an abort.

Linux hosts and captures come back as snapshot data from the iovkit_collect module; Windows hosts as the
PowerShell collector's bundle on stdout, parsed here exactly as `iovkit collect --from bundle.json` would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iovkit.errors import IovkitError
from iovkit.fleet.inventory import InventoryHost, select_hosts
from iovkit.fleet.model import HostStatus
from iovkit.fleet.runner import PlaybookRun, TaskOutcome, clean_message, run_playbook
from iovkit.snapshot import HostSnapshot, snapshot_from_dict

MODULE_TASK = "iovkit: collect"
SCRIPT_TASK = "iovkit: collect windows"
ESXI_TASK = "iovkit: collect esxi"


@dataclass
class Collected:
    host: InventoryHost
    status: HostStatus
    method: str | None = None
    snapshot: HostSnapshot | None = None
    error: str | None = None


def collect_fleet(
    inventory: Path,
    limit: str | None = None,
    *,
    forks: int = 10,
    timeout: int = 10,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[Collected]:
    """Every host the inventory and limit select, in inventory order, each collected or with its error."""
    from iovkit.sources.esxi.script import esxi_collect_script
    from iovkit.sources.hyperv.script import collector_script

    hosts = select_hosts(inventory, limit)
    with tempfile.TemporaryDirectory(prefix="iovkit-fleet-") as tmp:
        script = Path(tmp) / "collect.ps1"
        script.write_text(collector_script(), encoding="utf-8")
        esxi = Path(tmp) / "iovkit-esxi.sh"
        esxi.write_text(esxi_collect_script(), encoding="utf-8")
        run = run_playbook(
            "collect",
            inventory,
            limit=limit,
            forks=forks,
            timeout=timeout,
            extravars={"iovkit_collector_script_default": str(script), "iovkit_esxi_script_default": str(esxi)},
            on_event=on_event,
            private_dir=Path(tmp) / "runner",
        )
    return [interpret(h, run) for h in hosts]


def interpret(host: InventoryHost, run: PlaybookRun) -> Collected:
    """Turn one host's task outcomes into a snapshot or a one-line error."""
    tasks = run.outcomes.get(host.name, {})
    for any_task in tasks.values():
        if any_task.event == "unreachable":
            return Collected(host, "unreachable", error=clean_message(any_task.res))
    module = tasks.get(MODULE_TASK)
    methods = (
        (module, _module_method(module)),
        (tasks.get(SCRIPT_TASK), "script"),
        (tasks.get(ESXI_TASK), "esxi-shell"),
    )
    for outcome, method in methods:
        if outcome is None or outcome.event == "skipped":
            continue
        if outcome.event == "failed":
            return Collected(host, "failed", method, error=clean_message(outcome.res))
        try:
            read = {"script": _script_snapshot, "esxi-shell": _esxi_snapshot}.get(method, _module_snapshot)
            snap = read(host, outcome)
        except IovkitError as err:
            return Collected(host, "failed", method, error=str(err))
        return Collected(host, "ok", method, snap)
    why = f"Ansible reported nothing for this host (ansible-playbook exit {run.rc})"
    if run.output_tail:
        why += ": " + " ".join(run.output_tail.split())[-300:]
    return Collected(host, "failed", error=why)


def _module_method(outcome: TaskOutcome | None) -> str:
    args = (outcome.res.get("invocation") or {}).get("module_args") or {} if outcome else {}
    if args.get("src"):
        return "capture"
    return "tree" if args.get("root") else "module"


def _module_snapshot(host: InventoryHost, outcome: TaskOutcome) -> HostSnapshot:
    data = outcome.res.get("snapshot")
    if not isinstance(data, dict):
        raise IovkitError(f"{host.name}: the iovkit_collect module returned no snapshot")
    return snapshot_from_dict(data, f"ansible:{host.name}")


def _script_snapshot(host: InventoryHost, outcome: TaskOutcome) -> HostSnapshot:
    """The collector's bundle from the script task's stdout, parsed as `iovkit collect` parses a WinRM run's."""
    from iovkit.sources.hyperv.bundle import snapshot_from_output

    text = str(outcome.res.get("stdout") or "")
    if "{" not in text:
        errs = " ".join(str(outcome.res.get("stderr") or "").split())[:200]
        raise IovkitError(f"the collector printed no bundle{': ' + errs if errs else ''}")
    return snapshot_from_output(text, f"ansible:{host.name}")


def _esxi_snapshot(host: InventoryHost, outcome: TaskOutcome) -> HostSnapshot:
    """The ESXi shell session the script printed, read as `iovkit collect --from` reads a pasted one."""
    from iovkit.sources.esxi.paste import looks_like_esxi, snapshot_from_sections, split_sections

    text = str(outcome.res.get("stdout") or "")
    if not looks_like_esxi(text):
        errs = " ".join(str(outcome.res.get("stderr") or "").split())[:200]
        raise IovkitError(f"the ESXi commands printed nothing iovkit reads{': ' + errs if errs else ''}")
    origin = f"ansible:{host.name}"
    return snapshot_from_sections(split_sections(text, origin), origin)
