"""How long `iovkit fleet check` takes as the inventory grows, and what one host adds (Ansible's fan-out).

Each host is a local-connection host reading one of the shipped example captures (iovkit_from), so the time is
Ansible's start-up, its per-host module run (a fresh Python importing iovkit on the "host") and iovkit's judging
here; a real fleet adds its network round trips and the collection on each host. Prints a markdown table;
--write puts it under "## fleet" in bench/RESULTS.md.

    python3 bench/fleet_time.py [--hosts 1,8,32] [--forks 10] [--runs 1] [--write]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

RESULTS = Path(__file__).with_name("RESULTS.md")
EXAMPLES = ("hyperv-ready", "hyperv-lbfo", "hyperv-i350-no-iov", "linux-cx5")


def inventory(path: Path, n: int) -> Path:
    from iovkit.examples import example_path

    hosts = {f"h{i:03d}": {"iovkit_from": str(example_path(EXAMPLES[i % len(EXAMPLES)]))} for i in range(n)}
    inv = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "children": {"edge": {"hosts": hosts}},
        }
    }
    path.write_text(yaml.safe_dump(inv))
    return path


def run(n: int, forks: int, runs: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        inv = inventory(Path(tmp) / "inv.yml", n)
        for r in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "iovkit", "fleet", "check", "-i", str(inv), "--forks", str(forks), "-q",
                 "-f", "json", "-o", "/dev/null", "--results-dir", f"{tmp}/r{r}"],
                check=False,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", default="1,8,32")
    ap.add_argument("--forks", type=int, default=10)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    counts = [int(x) for x in args.hosts.split(",")]
    rows = []
    for n in counts:
        t = statistics.median(run(n, args.forks, args.runs))
        rows.append((n, t))
        print(f"{n} hosts: {t:.2f} s", file=sys.stderr)
    base = rows[0][1]
    lines = [
        f"Command: `python3 bench/fleet_time.py --hosts {args.hosts} --forks {args.forks} --runs {args.runs}` "
        "(2 CPUs shared with other jobs).",
        "Local-connection hosts reading the shipped example captures: Ansible's start-up and per-host module run plus",
        "iovkit's judging, without a network.",
        "",
        "| hosts | `iovkit fleet check` s (median) | s per host beyond the first |",
        "|---:|---:|---:|",
    ]
    for n, t in rows:
        per = "-" if n == counts[0] else f"{(t - base) / (n - counts[0]):.2f}"
        lines.append(f"| {n} | {t:.2f} | {per} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write:
        text = RESULTS.read_text()
        section = f"## fleet: `iovkit fleet check` as the inventory grows (`bench/fleet_time.py`)\n\n{table}\n"
        if "## fleet:" in text:
            text = re.sub(r"## fleet:.*?(?=\n## |\Z)", section.rstrip("\n") + "\n", text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
