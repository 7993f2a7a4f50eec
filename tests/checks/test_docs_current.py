"""docs/checks.md is generated from the rule catalog; this keeps it from going stale."""

from __future__ import annotations

from pathlib import Path

from iovkit.checks.catalog import all_rules
from iovkit.checks.docgen import FIX_KIND, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def test_checks_md_equals_generator_output():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/checks.md is stale: run `python3 -m iovkit.checks.docgen > docs/checks.md`"
    )


def test_every_rule_is_documented_with_a_fix_kind_and_fields_it_reads():
    text = render()
    for rid in all_rules():
        assert f"\n## {rid}\n" in text
        assert rid in FIX_KIND, f"{rid} has no fix description in iovkit/checks/docgen.py FIX_KIND"
    assert "not documented" not in text
    assert "(no snapshot field cited)" not in text
    assert set(FIX_KIND) <= set(all_rules()), "FIX_KIND names a rule that no longer exists"


def test_generator_runs_as_a_module(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "iovkit.checks.docgen"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == render()
