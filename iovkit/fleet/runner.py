"""Run one of the collection's playbooks with ansible-runner and hand back what each host returned.

The playbook does the fan-out; this module only starts it (in a throw-away private data dir, with the
collection on ANSIBLE_COLLECTIONS_PATH) and sorts its events per host and task. Nothing here judges.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iovkit.errors import IovkitError
from iovkit.fleet import COLLECTION_DIR, COLLECTIONS_PATH


@dataclass
class TaskOutcome:
    """The last thing one task did on one host: ok, failed, unreachable or skipped, with Ansible's result."""

    event: str
    task: str
    res: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlaybookRun:
    rc: int
    status: str
    outcomes: dict[str, dict[str, TaskOutcome]]  # host -> task name -> outcome
    output_tail: str = ""


_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


def search_path() -> str:
    """PATH with this Python's bin directory first, so runner finds the ansible-playbook installed with it
    (a venv that is not activated); an error when there is none at all."""
    here = str(Path(sys.executable).parent)
    path = os.pathsep.join([here, os.environ.get("PATH", os.defpath)])
    if shutil.which("ansible-playbook", path=path) is None:
        raise IovkitError("ansible-playbook not found: install ansible-core (pip install ansible-core ansible-runner)")
    return path


def run_playbook(
    playbook: str,
    inventory: Path,
    *,
    limit: str | None = None,
    forks: int = 10,
    extravars: dict[str, Any] | None = None,
    timeout: int = 10,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    private_dir: Path | None = None,
) -> PlaybookRun:
    """Run playbooks/<playbook>.yml of the collection; every host's per-task outcome, keyed by host."""
    import ansible_runner

    path = COLLECTION_DIR / "playbooks" / f"{playbook}.yml"
    outcomes: dict[str, dict[str, TaskOutcome]] = {}

    def handler(event: dict[str, Any]) -> bool:
        kind = _EVENTS.get(str(event.get("event")))
        data = event.get("event_data") or {}
        host = data.get("host")
        if kind is not None and host:
            outcomes.setdefault(str(host), {})[str(data.get("task", ""))] = TaskOutcome(
                kind, str(data.get("task", "")), dict(data.get("res") or {})
            )
        if on_event is not None:
            on_event(event)
        return False  # nothing to keep on disk beyond what runner writes anyway

    envvars = {
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(
            [str(COLLECTIONS_PATH), *filter(None, [os.environ.get("ANSIBLE_COLLECTIONS_PATH")])]
        ),
        "ANSIBLE_TIMEOUT": str(timeout),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "PATH": search_path(),
    }
    if "utf" not in (os.environ.get("LC_ALL") or os.environ.get("LANG") or "").lower():
        envvars["LC_ALL"] = "C.UTF-8"  # ansible-core refuses to start in a non-UTF-8 locale
    own = private_dir is None
    base = Path(tempfile.mkdtemp(prefix="iovkit-fleet-")) if private_dir is None else private_dir
    base.mkdir(parents=True, exist_ok=True)
    try:
        runner = ansible_runner.run(
            private_data_dir=str(base),
            playbook=str(path),
            inventory=str(inventory.resolve()),
            limit=limit,
            forks=forks,
            extravars=extravars or {},
            envvars=envvars,
            quiet=True,
            event_handler=handler,
            suppress_env_files=True,
        )
        tail = ""
        if runner.rc != 0:
            try:
                tail = "\n".join(runner.stdout.read().strip().splitlines()[-6:])
            except (OSError, ValueError, AttributeError):
                tail = ""
        if not outcomes and runner.rc != 0:  # the playbook never reached a host: not a host's problem
            raise IovkitError(
                f"ansible-playbook failed before reaching any host (exit {runner.rc}): " + " ".join(tail.split())[-400:]
            )
        return PlaybookRun(int(runner.rc or 0), str(runner.status), outcomes, tail)
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)


def clean_message(res: dict[str, Any]) -> str:
    """One line from Ansible's result for a failed or unreachable task."""
    msg = str(res.get("msg") or "").strip()
    for prefix in ("Task failed: ", "Task failed:"):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if msg in ("", "MODULE FAILURE", "MODULE FAILURE\nSee stdout/stderr for the exact error"):
        detail = str(res.get("module_stderr") or res.get("stderr") or res.get("module_stdout") or "").strip()
        lines = [ln for ln in detail.splitlines() if ln.strip()]
        msg = (msg.split("\n")[0] + ": " if msg else "") + (lines[-1] if lines else "no output")
    return " ".join(msg.split())[:400]
