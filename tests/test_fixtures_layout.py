"""Test helpers come from one package, tests/fixtures, imported one way: `from tests.fixtures... import ...`."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_helpers_are_imported_from_tests_fixtures_only() -> None:
    bad: list[str] = []
    local = {p.stem for p in TESTS.rglob("*.py") if not p.name.startswith(("test_", "conftest", "__init__"))}
    for path in TESTS.rglob("*.py"):
        rel = path.relative_to(TESTS.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "spec_from_file_location":
                bad.append(f"{rel}:{node.lineno}: loads a file by path")
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.path.insert", "sys.path.append"):
                bad.append(f"{rel}:{node.lineno}: edits sys.path")
            if isinstance(node, ast.ImportFrom) and not node.level and node.module in local:
                bad.append(f"{rel}:{node.lineno}: bare import of helper {node.module!r}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests."):
                mod = node.module or ""
                helper = not mod.split(".")[-1].startswith("test_") and mod.split(".")[-1] != "conftest"
                if helper and not mod.startswith("tests.fixtures"):
                    bad.append(f"{rel}:{node.lineno}: helper {mod} outside tests/fixtures")
    assert not bad, "\n".join(bad)
