"""Conformance of the collection's modules: ansible-doc can read each one, and its documented options are exactly
the options the module accepts (a user reads the doc, Ansible enforces the spec)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from iovkit.fleet import COLLECTION_DIR, COLLECTIONS_PATH

MODULES = sorted((COLLECTION_DIR / "plugins" / "modules").glob("iovkit_*.py"))


def _literal(tree: ast.Module, name: str) -> str:
    return next(
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and n.targets[0].id == name
        and isinstance(n.value, ast.Constant)
    )  # fmt: skip


def _argument_spec(tree: ast.Module) -> set[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "argument_spec" and isinstance(node.value, ast.Dict):
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    raise AssertionError("no argument_spec")


def test_the_collection_has_the_modules_the_howto_names() -> None:
    assert [m.stem for m in MODULES] == ["iovkit_apply", "iovkit_check", "iovkit_collect", "iovkit_load_agent"]


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_documented_options_are_the_accepted_ones(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    doc = yaml.safe_load(_literal(tree, "DOCUMENTATION"))
    yaml.safe_load(_literal(tree, "RETURN"))
    assert doc["module"] == module.stem and doc["short_description"]
    assert set(doc["options"]) == _argument_spec(tree)


def test_ansible_doc_reads_every_module() -> None:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "ANSIBLE_NOCOLOR": "1"}
    names = [f"iovkit.fleet.{m.stem}" for m in MODULES]
    beside = Path(sys.executable).parent / "ansible-doc"  # installed with this Python, on PATH or not
    exe = str(beside) if beside.exists() else "ansible-doc"
    run = subprocess.run([exe, "-t", "module", *names], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "ERROR" not in run.stderr, run.stderr
    for name in names:
        assert f"MODULE {name}" in run.stdout
