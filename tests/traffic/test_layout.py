"""The traffic package's shape (issue 12): what it may import, how big a module may grow, what stays lazy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import iovkit.traffic

PKG = Path(iovkit.traffic.__file__).parent
ALLOWED_OUTSIDE = {"iovkit", "iovkit.errors", "iovkit.fileio", "iovkit.hostport"}  # `iovkit` for __version__ only


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_traffic_imports_only_errors_fileio_and_hostport_outside_itself() -> None:
    bad = {
        (mod, imp)
        for mod, path in _modules().items()
        for imp in _imports(path)
        if imp.split(".")[0] == "iovkit"
        and not imp.startswith("iovkit.traffic")
        and imp not in ALLOWED_OUTSIDE
        and imp.rsplit(".", 1)[0] not in ALLOWED_OUTSIDE - {"iovkit"}
        and imp != "iovkit.__version__"
    }
    assert not bad


def test_the_load_generator_and_the_sweep_do_not_import_each_other() -> None:
    mods = _modules()
    assert not {i for i in _imports(mods["iovkit.traffic.loadgen"]) if i.startswith("iovkit.traffic.sweep")}
    assert not {i for i in _imports(mods["iovkit.traffic.sweep"]) if i.startswith("iovkit.traffic.loadgen")}


def test_no_traffic_module_is_over_600_lines() -> None:
    sizes = {mod: len(path.read_text().splitlines()) for mod, path in _modules().items()}
    assert {m: n for m, n in sizes.items() if n > 600} == {}


def test_plotting_module_and_bench_runner_do_not_import_matplotlib() -> None:
    code = (
        "import sys, iovkit.traffic.plots, iovkit.traffic.benchrun, iovkit.traffic.compare; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
