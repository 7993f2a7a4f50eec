"""The imports keep the one-way layering: no circle between modules, no import of a higher layer.

The layer table is data: a new package goes into the row of its layer (see BRIEF/STYLE). Every import counts,
including ones inside functions (a lazy import is still a dependency) and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "iovkit"

# Top to bottom. A module may import its own package, a package of its own row (except where the row is
# marked siblings) or any package of a lower row. `iovkit` itself (the version) sits below everything.
LAYERS: list[tuple[str, ...]] = [
    ("cli", "__main__"),
    ("report",),
    ("fleet",),
    ("doctor", "summary"),
    # apply executes the steps plan builds, so it sits on top of plan (plan never imports apply).
    ("apply",),
    ("checks", "diagnose", "plan"),
    ("sources",),
    ("snapshot", "snapshot_esxi", "snapshot_guest", "fingerprint", "policy", "nics"),
    ("snapshot_base",),
    ("errors", "fileio", "quoting", "hostport"),
]
# Rows whose packages must not import each other (shared queries become snapshot methods).
SIBLINGS: set[tuple[str, ...]] = {("checks", "diagnose", "plan")}
# Packages outside the stack: what they may import, and which rows may import them.
BESIDE: dict[str, dict[str, set[str]]] = {
    "traffic": {
        "imports": {"errors", "fileio", "hostport"},
        "imported_by": {"cli", "__main__", "report", "fleet"},
    },
}
# Data packages that live inside a row: examples are the shipped inputs the sources read.
MEMBER_OF: dict[str, str] = {"examples": "sources"}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _imports(mod: str, path: Path) -> set[str]:
    """The iovkit modules (or packages) `mod` imports, resolved to names in MODULES where possible."""
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
    return {m for m in found if m == "iovkit" or m.startswith("iovkit.")} - {mod}


GRAPH = {mod: _imports(mod, path) for mod, path in MODULES.items()}


def _package(mod: str) -> str:
    """`iovkit.checks.hyperv` -> `checks`; `iovkit` -> ``."""
    parts = mod.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return MEMBER_OF.get(top, top)


def _row(pkg: str) -> int | None:
    if pkg == "":
        return len(LAYERS)
    return next((i for i, row in enumerate(LAYERS) if pkg in row), None)


def _violation(src: str, dst: str) -> str | None:
    a, b = _package(src), _package(dst)
    if a == b or b == "":
        return None
    if a in BESIDE:
        return None if b in BESIDE[a]["imports"] else f"{a} stands beside the layers and imports only errors, fileio"
    if b in BESIDE:
        return None if a in BESIDE[b]["imported_by"] else f"only {sorted(BESIDE[b]['imported_by'])} may import {b}"
    ra, rb = _row(a), _row(b)
    if ra is None or rb is None:
        return f"package {a if ra is None else b!r} is not in the layer table (tests/test_layers.py)"
    if rb < ra:
        return f"{a} imports upward into {b}"
    if ra == rb and LAYERS[ra] in SIBLINGS:
        return f"{a} and {b} are siblings and must not import each other"
    return None


def test_every_package_is_in_the_layer_table() -> None:
    known = {p for row in LAYERS for p in row} | set(BESIDE) | set(MEMBER_OF) | {""}
    unknown = sorted({_package(m) for m in MODULES} - known)
    assert not unknown, f"add these packages to LAYERS in tests/test_layers.py: {unknown}"


def test_no_import_goes_up_or_sideways() -> None:
    bad = [f"{src} -> {dst}: {why}" for src, dsts in GRAPH.items() for dst in dsts if (why := _violation(src, dst))]
    assert not bad, "\n".join(sorted(bad))


def _cycles() -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_circle_between_modules() -> None:
    # A package's __init__ importing its own submodules is how a package presents itself, not a circle, as long
    # as no submodule imports the package's __init__ back (that is caught: the submodule -> package edge).
    circles = _cycles()
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_checker_sees_a_circle_and_an_upward_import() -> None:
    """The walk is real: a known upward edge is reported, and a planted circle is found."""
    assert _violation("iovkit.snapshot", "iovkit.checks.catalog") == "snapshot imports upward into checks"
    assert _violation("iovkit.checks.hyperv", "iovkit.plan.model") is not None
    assert _violation("iovkit.traffic.relay", "iovkit.snapshot") is not None
    assert _violation("iovkit.plan.model", "iovkit.snapshot") is None
    GRAPH["iovkit.errors"].add("iovkit.fileio")
    try:
        assert ["iovkit.errors", "iovkit.fileio"] in _cycles()
    finally:
        GRAPH["iovkit.errors"].discard("iovkit.fileio")


def test_no_module_is_over_600_lines() -> None:
    """The house rule (small modules named for what they do), for the whole package, not just traffic/."""
    root = Path(__file__).resolve().parents[1] / "iovkit"
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > 600} == {}
