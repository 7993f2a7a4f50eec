"""Snapshot model: versioned, strict, with errors that name the field and value."""

from __future__ import annotations

import json

import pytest

from iovkit.errors import InputError
from iovkit.snapshot import SCHEMA_VERSION, HostSnapshot, load_snapshot


def _minimal() -> dict:
    return {"schema_version": SCHEMA_VERSION, "source": {"kind": "snapshot"}, "host": {"platform": "hyperv"}}


def test_round_trip_keeps_unknowns_as_none(tmp_path):
    snap = HostSnapshot.model_validate(_minimal())
    assert snap.cpu.slat is None and snap.iov.supported is None
    p = tmp_path / "s.json"
    p.write_text(snap.to_json())
    assert load_snapshot(p) == snap


def test_wrong_field_type_names_field_and_value(tmp_path):
    data = _minimal()
    data["nics"] = [{"name": "Ethernet 2", "vfs_total": "lots"}]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    with pytest.raises(InputError) as ei:
        load_snapshot(p)
    msg = str(ei.value)
    assert str(p) in msg and "nics.0.vfs_total" in msg and "lots" in msg


def test_unsupported_schema_major_is_rejected(tmp_path):
    data = _minimal()
    data["schema_version"] = "9.0"
    p = tmp_path / "future.json"
    p.write_text(json.dumps(data))
    with pytest.raises(InputError, match="schema_version"):
        load_snapshot(p)


def test_truncated_snapshot_reports_line(tmp_path):
    p = tmp_path / "cut.json"
    p.write_text(json.dumps(_minimal())[:30])
    with pytest.raises(InputError, match="line 1"):
        load_snapshot(p)
