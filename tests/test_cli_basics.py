"""The CLI's contract: one-line errors with exit code 2, version, schema."""

from __future__ import annotations

import json


def test_unknown_example_is_one_line_error(cli):
    r = cli("collect", "--example", "no-such-host")
    assert r.code == 2
    assert r.err.count("\n") == 1 and "no-such-host" in r.err and "Traceback" not in r.err


def test_unknown_flag_is_usage_error(cli):
    r = cli("collect", "--no-such-flag")
    assert r.code == 2
    assert "no-such-flag" in r.err and "Traceback" not in r.err


def test_schema_is_json_schema_with_version(cli):
    r = cli("schema")
    assert r.code == 0
    schema = json.loads(r.out)
    assert schema["title"] == "iovkit HostSnapshot"
    assert "schema_version" in schema["properties"]
    assert "vm_adapters" in schema["properties"]


def test_missing_input_file_names_the_path(cli, tmp_path):
    missing = tmp_path / "nope.json"
    r = cli("collect", "--from", str(missing))
    assert r.code == 2
    assert str(missing) in r.err
