"""The apply journal: one JSON object per line, fsync'd as it goes, so a crash loses at most the last line.

Events: begin (plan id, host, executor, the steps), step-start (command), step-end (phase, result,
output), rollback-start, undo-start, undo-end, end (status). The journal alone is enough to resume a run
or to roll it back (`iovkit rollback JOURNAL`), because it carries the steps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from iovkit.errors import InputError
from iovkit.plan.model import Step

MAX_OUTPUT = 64 * 1024
_STEPS: TypeAdapter[list[Step]] = TypeAdapter(list[Step])
_STEP_EVENTS = frozenset({"step-start", "step-end", "undo-start", "undo-end"})


class Journal:
    """Append-only writer; every event is flushed and fsync'd before the next action runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, **data: Any) -> None:
        record = {"time": datetime.now(UTC).isoformat(), "event": event, **data}
        if isinstance(record.get("output"), str) and len(record["output"]) > MAX_OUTPUT:
            record["output"] = record["output"][:MAX_OUTPUT] + "...(truncated)"
        line = json.dumps(record, default=str) + "\n"
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            raise InputError(f"cannot write the journal: {err.strerror}", path=str(self.path)) from err


def _is_plan(text: str) -> bool:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("format") == "iovkit-plan"


def read_events(path: Path) -> list[dict[str, Any]]:
    """All complete events; a torn last line (crash mid-write) is ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as err:
        raise InputError(f"cannot read the journal: {err.strerror}", path=str(path)) from err
    except UnicodeDecodeError as err:
        raise InputError(f"not an iovkit apply journal (not UTF-8 text at byte {err.start})", path=str(path)) from err
    if text.lstrip().startswith("{\n") and _is_plan(text):  # the plan itself, given where its journal belongs
        raise InputError(
            f"this is a plan, not its journal; rollback reads the journal apply wrote ({path.stem}.journal.jsonl)",
            path=str(path),
        )
    events = []
    lines = text.splitlines()
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as err:
            if no == len(lines):
                break
            raise InputError(f"line {no} is not JSON", path=str(path)) from err
        if not isinstance(ev, dict) or not isinstance(ev.get("event"), str):
            raise InputError(f"line {no} is not a journal event", path=str(path))
        if ev["event"] in _STEP_EVENTS and (not isinstance(ev.get("step"), int) or isinstance(ev["step"], bool)):
            raise InputError(f"line {no}: a {ev['event']} event without a step number", path=str(path))
        events.append(ev)
    return events


@dataclass
class JournalState:
    """What a journal says happened: which steps are done, undone, interrupted, and how it ended."""

    plan_id: str | None = None
    host: str | None = None
    platform: str | None = None
    steps: list[Step] = field(default_factory=list)
    done: list[int] = field(default_factory=list)  # action+verify passed, in order
    touched: list[int] = field(default_factory=list)  # action ran (done, or failed its verification)
    undone: set[int] = field(default_factory=set)
    interrupted: int | None = None  # step-start without step-end
    status: str | None = None  # last end status

    @property
    def to_undo(self) -> list[int]:
        """Steps whose action ran and that were not undone yet, last first."""
        ids = list(self.touched)
        if self.interrupted is not None and self.interrupted not in ids:
            ids.append(self.interrupted)
        return [i for i in reversed(ids) if i not in self.undone]


def journal_state(path: Path) -> JournalState:
    st = JournalState()
    for ev in read_events(path):
        kind = ev["event"]
        if kind == "begin":
            if st.plan_id is None:
                st.plan_id, st.host, st.platform = ev.get("plan_id"), ev.get("host"), ev.get("platform")
                try:
                    st.steps = _STEPS.validate_python(ev.get("steps", []))
                except ValidationError as err:
                    raise InputError("the begin event's steps are not valid", path=str(path)) from err
            st.status = None
        elif kind == "step-start":
            st.interrupted = ev["step"]
        elif kind == "step-end":
            st.interrupted = None
            sid = ev["step"]
            if ev.get("result") == "ok":
                st.done.append(sid)
                if sid not in st.touched:
                    st.touched.append(sid)
            elif ev.get("phase") == "verify" and sid not in st.touched:
                st.touched.append(sid)
        elif kind == "undo-end" and ev.get("result") == "ok":
            st.undone.add(ev["step"])
        elif kind == "end":
            st.status = ev.get("status")
    return st
