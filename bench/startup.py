"""Start-up time of the CLI against importing typer and rich (issue 12: within 1.5x), side by side in one run.

Run: python3 bench/startup.py [--runs N] [--before GIT-REF]. Each row runs its command N times in a fresh
interpreter (rounds interleaved, so load on the machine hits every row alike) and reports the median and the
minimum wall time and CPU time (user + system), each also as a ratio to the `import typer, rich` row (on a
shared, loaded machine the minimum and the CPU time are the steadier figures). Two floors are shown too: a
bare typer app's `--help` (what any typer 0.2x CLI pays through typer's own path: pydantic to coerce the root's
unset options, typer.rich_utils with rich's markdown and traceback modules) and the rich floor (importing the
rich parts a help page is drawn with, and drawing one panel: what any rich-rendered help pays above
`import typer, rich`; iovkit's pages no longer go through rich, see iovkit/cli/helplayout.py). The iovkit trees
are byte-compiled first, as an installed package is (with PYTHONDONTWRITEBYTECODE set, an edited module would
otherwise be compiled again on every run). --before REF runs the same commands against the iovkit package as it
was at REF (extracted with `git archive`). The numbers go in bench/RESULTS.md under "CLI start-up".
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BARE_APP = """
from typing import Annotated
import typer
app = typer.Typer()
@app.command()
def one(x: Annotated[str, typer.Option("--x", help="x")] = "a") -> None: pass
@app.command()
def two() -> None: pass
app()
"""

RICH_FLOOR = """
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
t = Table(box=None, show_header=False)
t.add_row("--x", "<str>", "x")
Console().print(Panel(t, title="Options"))
"""


def _rows(tree: Path, label: str) -> list[tuple[str, list[str], Path]]:
    py = sys.executable
    return [
        (f"iovkit --version{label}", [py, "-m", "iovkit", "--version"], tree),
        (f"iovkit check --help{label}", [py, "-m", "iovkit", "check", "--help"], tree),
        (f"iovkit fleet check --help{label}", [py, "-m", "iovkit", "fleet", "check", "--help"], tree),
        (f"iovkit --help{label}", [py, "-m", "iovkit", "--help"], tree),
    ]


def _time(cmd: list[str], tree: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run: on a loaded machine the CPU time waits for no one."""
    env = dict(os.environ, PYTHONPATH=str(tree), COLUMNS="120")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=tree)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--before", help="a git ref to compare with (its iovkit package, extracted)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare_typer.py"
        bare.write_text(BARE_APP)
        py = sys.executable
        rows: list[tuple[str, list[str], Path]] = [
            ("import typer, rich (baseline)", [py, "-c", "import typer, rich"], ROOT),
            ("bare typer app: one --help (floor)", [py, str(bare), "one", "--help"], ROOT),
            ("rich floor: console+table+panel, one panel", [py, "-c", RICH_FLOOR], ROOT),
            *_rows(ROOT, ""),
        ]
        if args.before:
            old = Path(tmp) / "before"
            old.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.before, "iovkit"], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            rows += _rows(old, f" ({args.before})")
        for tree in {tree for _, _, tree in rows}:  # an installed package has its bytecode: so do these trees
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "iovkit")], check=True)
        times: dict[str, list[float]] = {name: [] for name, _, _ in rows}
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in rows}
        for _name, cmd, tree in rows:  # one warm-up each (page cache, .pyc files)
            _time(cmd, tree)
        for _ in range(args.runs):
            for name, cmd, tree in rows:
                wall, used = _time(cmd, tree)
                times[name].append(wall)
                cpu[name].append(used)
    first = rows[0][0]
    base, base_min = statistics.median(times[first]), min(times[first])
    cpu_med, cpu_min = statistics.median(cpu[first]), min(cpu[first])
    head = f"{'median s':>9} {'x':>5} {'min s':>6} {'x':>5} {'cpu med':>8} {'x':>5} {'cpu min':>8} {'x':>5}"
    print(f"{'command':48} {head}")
    for name, _, _ in rows:
        med, low = statistics.median(times[name]), min(times[name])
        cmed, clow = statistics.median(cpu[name]), min(cpu[name])
        print(
            f"{name:48} {med:9.3f} {med / base:5.2f} {low:6.3f} {low / base_min:5.2f}"
            f" {cmed:8.3f} {cmed / cpu_med:5.2f} {clow:8.3f} {clow / cpu_min:5.2f}"
        )
    print(f"({args.runs} runs each, interleaved; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
