"""docs/diagnose.md is generated from the diagnose catalogs; every finding the rules make is registered there."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from iovkit.diagnose.catalog import FINDINGS
from iovkit.diagnose.docgen import render
from iovkit.diagnose.findings import Finding
from iovkit.diagnose.remedies import CATALOG

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "diagnose.md"


def test_diagnose_md_equals_generator_output() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/diagnose.md is stale: run `python3 -m iovkit.diagnose.docgen > docs/diagnose.md`"
    )


def _ids_in_code() -> set[str]:
    """Finding IDs spelled in iovkit/diagnose (Finding("X", ...) and the ("X", counter, text) tables)."""
    ids: set[str] = set()
    for path in (ROOT / "iovkit" / "diagnose").glob("*.py"):
        if path.name in ("catalog.py", "remedies.py", "docgen.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            first = node.args[0] if isinstance(node, ast.Call) and node.args else None
            if getattr(getattr(node, "func", None), "id", "") == "Finding" and isinstance(first, ast.Constant):
                ids.add(first.value)
            if isinstance(node, ast.Tuple) and len(node.elts) == 3 and isinstance(node.elts[0], ast.Constant):
                value = node.elts[0].value  # ("SOFTNET-DROPS", L_DROPPED, "backlog drops ...")
                if isinstance(value, str) and re.fullmatch(r"[A-Z]+(-[A-Z]+)+", value):
                    ids.add(value)
    return ids


def test_every_finding_the_rules_make_is_registered_and_documented() -> None:
    text = render()
    spelled = _ids_in_code()
    assert spelled, "the walk found no Finding(...) in iovkit/diagnose"
    assert spelled <= set(FINDINGS), f"unregistered: {sorted(spelled - set(FINDINGS))}"
    for fid, kind in FINDINGS.items():
        assert f"\n## {fid}\n" in text and kind.remediation and kind.impact
        assert kind.doc == f"docs/diagnose.md#{fid.lower()}"
    answered = {a for r in CATALOG for a in r.answers}
    assert answered <= set(FINDINGS), f"remedies answer unregistered findings: {sorted(answered - set(FINDINGS))}"


def test_an_unregistered_finding_cannot_be_made_and_the_catalog_sets_severity() -> None:
    with pytest.raises(ValueError, match="not registered"):
        Finding("NO-SUCH-FINDING", "warning", "x")
    assert Finding("SINGLE-CORE-SWITCH", "info", "x").severity == "critical"


def test_generator_runs_as_a_module() -> None:
    r = subprocess.run([sys.executable, "-m", "iovkit.diagnose.docgen"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == render()
