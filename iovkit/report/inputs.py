"""What `iovkit report` was given, told apart by content (never by file name) and loaded through each stage's reader.

A file is one of: a host snapshot or anything `collect --from` reads (a capture), a counter recording, a plan, an
apply journal, a bench result, a fleet result. A Get-NetView folder or .zip is both a capture and a recording, and
is read as both. A file that is none of them is a one-line InputError naming it and listing what is read.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iovkit.errors import InputError

WHAT_IS_READ = (
    "a snapshot or capture (anything `iovkit collect --from` reads), a counter recording, plan.json, an apply "
    "journal, a bench result or a fleet result"
)


@dataclass
class Inputs:
    """Everything given, loaded, in the order given."""

    hosts: list[tuple[str, Any]] = field(default_factory=list)  # (path, HostSnapshot)
    recordings: list[tuple[str, Any]] = field(default_factory=list)  # (path, Recording)
    plans: list[tuple[str, Any]] = field(default_factory=list)  # (path, Plan)
    journals: list[tuple[str, Any, list[dict[str, Any]]]] = field(default_factory=list)  # (path, state, events)
    bench: list[tuple[str, Any]] = field(default_factory=list)  # (path, SweepResult)
    before: list[tuple[str, Any]] = field(default_factory=list)
    after: list[tuple[str, Any]] = field(default_factory=list)
    fleets: list[tuple[str, Any]] = field(default_factory=list)  # (path, FleetResult)
    # The `iovkit plan` command for each host input, as given: fixes in the page point at the input itself
    # (a snapshot saved from an example is planned from the file, not from the example).
    plan_for: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any((self.hosts, self.recordings, self.plans, self.journals, self.bench, self.before, self.fleets))


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(4096)
    except FileNotFoundError:
        raise InputError("no such file or directory", path=str(path)) from None
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", path=str(path)) from err


def _json_mark(path: Path, text: str) -> tuple[str, Any] | None:
    """(kind, data) for a JSON document carrying one of iovkit's own format marks."""
    if not text.startswith("{"):
        return None
    from iovkit.fileio import read_json

    data = read_json(path)
    if not isinstance(data, dict):
        return None
    from iovkit.diagnose.model import RECORDING_MARK

    if data.get("format") == "iovkit-plan":
        return "plan", data
    if data.get("schema") == "iovkit.bench/1":
        return "bench", data
    if data.get("schema") == "iovkit.fleet/1":
        return "fleet", data
    if RECORDING_MARK in data:
        return "recording", data
    return None


def _is_journal(path: Path) -> bool:
    """An apply journal: JSON lines, the first an event with its time (it can be long: the begin event holds the
    plan's steps)."""
    try:
        with path.open("rb") as fh:
            first = fh.readline(1 << 22)
        ev = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(ev, dict) and isinstance(ev.get("event"), str) and "time" in ev


def load_bench(path: Path) -> Any:
    from iovkit.traffic.results import load_result

    return load_result(path)


def add(inputs: Inputs, path: Path) -> None:
    """Sniff one path and add what it holds to `inputs`."""
    name = str(path)
    if path.is_dir():
        _capture_and_counters(inputs, path)
        return
    head = _head(path)
    if not head.strip():
        raise InputError("the file is empty", path=name)
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("{") and _is_journal(path):
        from iovkit.apply.journal import journal_state, read_events

        inputs.journals.append((name, journal_state(path), read_events(path)))
        return
    mark = _json_mark(path, text) if text.startswith("{") else None
    if mark is not None:
        kind, _data = mark
        if kind == "plan":
            from iovkit.plan.model import load_plan

            inputs.plans.append((name, load_plan(path)))
        elif kind == "bench":
            inputs.bench.append((name, load_bench(path)))
        elif kind == "fleet":
            from iovkit.fleet.model import load_fleet_result

            inputs.fleets.append((name, load_fleet_result(path)))
        else:
            from iovkit.diagnose import load_recording

            inputs.recordings.append((name, load_recording(path)))
        return
    if head[:2] == b"PK":  # a Get-NetView .zip: configuration and, often, counters
        _capture_and_counters(inputs, path)
        return
    from iovkit.diagnose import load_recording
    from iovkit.sources import load_input

    if head[:2] == b"\x1f\x8b":  # a Linux archive
        _host(inputs, name, load_input(path))
        return
    # JSON: a snapshot or collector bundle, else Get-Counter JSON; text: PDH-CSV counters, else Format-List text
    # or a paste (a capture). The first reader's error is the one shown when neither reads it.
    as_host = (lambda got: _host(inputs, name, got), load_input)
    as_counters = (lambda got: inputs.recordings.append((name, got)), load_recording)
    order = (as_host, as_counters) if text.startswith(("{", "[")) else (as_counters, as_host)
    first_err: InputError | None = None
    for keep, loader in order:
        try:
            keep(loader(path))
            return
        except InputError as err:
            first_err = first_err or err
    why = str(first_err).removeprefix(f"{name}: ")
    raise InputError(f"not an input iovkit report reads ({why}); give {WHAT_IS_READ}", path=name)


def _capture_and_counters(inputs: Inputs, path: Path) -> None:
    """A Get-NetView folder or .zip: read it as a capture and as counters; at least one must work."""
    from iovkit.diagnose import load_recording
    from iovkit.sources import load_input

    errors: list[str] = []
    try:
        _host(inputs, str(path), load_input(path))
    except InputError as err:
        errors.append(str(err).removeprefix(f"{path}: "))
    try:
        inputs.recordings.append((str(path), load_recording(path)))
    except InputError as err:
        errors.append(str(err).removeprefix(f"{path}: "))
    if len(errors) == 2:
        raise InputError(f"neither a capture nor counters ({errors[0]}; {errors[1]})", path=str(path))


def _host(inputs: Inputs, name: str, snap: Any, plan: str | None = None) -> None:
    """A host input, with the plan command that reads that same input (`plan --from` reads all collect reads)."""
    inputs.hosts.append((name, snap))
    inputs.plan_for[name] = plan or f"iovkit plan --from {shlex.quote(name)} -o plan.json"


def load_inputs(paths: list[Path], before: list[Path], after: list[Path], examples: list[str] | None = None) -> Inputs:
    """Load every input; `before`/`after` must be bench results; `examples` are shipped example hosts."""
    inputs = Inputs()
    for name in examples or []:
        from iovkit.sources import load_example

        _host(inputs, f"example {name}", load_example(name), f"iovkit plan --example {shlex.quote(name)} -o plan.json")
    for p in paths:
        add(inputs, p)
    for side, given in ((inputs.before, before), (inputs.after, after)):
        for p in given:
            head = _head(p).decode("utf-8-sig", errors="replace").lstrip()
            mark = _json_mark(p, head) if head.startswith("{") else None
            if mark is None or mark[0] != "bench":
                raise InputError("not a bench result (iovkit bench -o FILE writes one)", path=str(p))
            side.append((str(p), load_bench(p)))
    if bool(inputs.before) != bool(inputs.after):
        raise InputError("give both --before and --after (bench results), or neither", field="--after")
    if inputs.empty:
        raise InputError(f"nothing to report: give {WHAT_IS_READ}")
    return inputs
