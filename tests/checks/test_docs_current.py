"""docs/checks.md is generated from the rule catalog; this keeps it from going stale."""

from __future__ import annotations

from pathlib import Path

from iovkit.checks.catalog import all_rules
from iovkit.checks.docgen import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def test_checks_md_equals_generator_output():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/checks.md is stale: run `python3 -m iovkit.checks.docgen > docs/checks.md`"
    )


def test_every_rule_carries_its_remediation_impact_and_doc_link_and_the_fields_it_reads():
    text = render()
    for rid, r in all_rules().items():
        assert f"\n## {rid}\n" in text
        assert r.remediation, f"{rid}: @rule(..., remediation=...) is missing"
        assert r.impact, f"{rid}: @rule(..., impact=...) is missing"
        page, _, anchor = r.doc.partition("#")
        assert page == "docs/checks.md" and anchor == rid.lower(), f"{rid}: doc link {r.doc!r}"
        assert f"[{rid}](#{anchor})" in text
    assert "not documented" not in text
    assert "(no snapshot field cited)" not in text


def test_generator_runs_as_a_module(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "iovkit.checks.docgen"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == render()
