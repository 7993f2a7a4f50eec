"""Size: `iovkit diagnose` on a day of 1 s samples against one bare csv-module pass over the same file (issue 14).

Run: python3 bench/diagnose_size.py [--rounds N] [--write]. It writes the recordings it needs into a temporary
folder (a day at 1 s of 74 counters is ~76 MB; never committed), then measures, each in a fresh process so the
peak resident memory is that step's alone, and in alternating order each round:
  - `csv`: `for row in csv.reader(f): pass` over the file (the yardstick the issue names);
  - `imports`: only the imports `diagnose` needs (numpy, pyarrow, iovkit.diagnose): the fixed cost;
  - `read`: iovkit's reader (header, pyarrow's streaming CSV reader into one float matrix, vectorised timestamps);
  - `diagnose`: read plus the whole analysis (windows, estimate, buckets, findings) and the JSON report;
  - `diagnose, imports excluded`: the same, timed after the imports (the part that grows with the file);
  - `line reader`: the fallback reader iovkit uses when pyarrow refuses a file (decimal commas, bad cells), once;
and, for linearity, `diagnose` on a quarter, half and whole day of 74 counters and on a day of 148 counters.
Medians over rounds; `--write` replaces the section between the diagnose-size markers in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- diagnose-size:begin -->", "<!-- diagnose-size:end -->"

STEP = r"""
import csv, sys, time
what, path = sys.argv[1], sys.argv[2]
if what == "diagnose, imports excluded":
    import json
    from pathlib import Path
    from iovkit.diagnose import diagnose
    from iovkit.diagnose.inputs import load
t0, c0 = time.perf_counter(), time.process_time()
if what == "csv":
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            pass
elif what == "imports":
    import numpy, pyarrow.csv
    from iovkit.diagnose import diagnose
    from iovkit.diagnose.inputs import load
elif what == "read":
    from pathlib import Path
    from iovkit.diagnose.inputs import load
    rec = load(Path(path))
elif what == "diagnose":
    import json
    from pathlib import Path
    from iovkit.diagnose import diagnose
    from iovkit.diagnose.inputs import load
    rep = diagnose(load(Path(path)))
    json.dumps(rep.to_json())
    assert rep.verdict == "bottleneck", rep.verdict
elif what == "diagnose, imports excluded":
    rep = diagnose(load(Path(path)))
    json.dumps(rep.to_json())
    assert rep.verdict == "bottleneck", rep.verdict
elif what == "line reader":
    from pathlib import Path
    from iovkit.diagnose import pdhcsv
    data = Path(path).read_bytes()
    head = pdhcsv.header_of(data, path)
    pdhcsv._slow(data, head, path)
dt, cpu = time.perf_counter() - t0, time.process_time() - c0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent (the benchmark's own arrays)
hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024
print(f"{dt:.4f} {cpu:.4f} {hwm}")
"""


def make(path: Path, rows: int, counters: int, cores: int = 16) -> None:
    """A logman-style recording: 16 root VPs, their interrupt/DPC time, NIC and switch rates, padding counters of
    other objects up to `counters`; root VP 0 saturates for ten minutes in the evening."""
    names = [f"\\Hyper-V Hypervisor Root Virtual Processor(Root VP {c})\\% Total Run Time" for c in range(cores)]
    for c in range(cores):
        names += [f"\\Processor({c})\\% Interrupt Time", f"\\Processor({c})\\% DPC Time"]
    names += [
        "\\Network Interface(Mellanox ConnectX-4 Lx Ethernet Adapter)\\Packets Received/sec",
        "\\Network Interface(Mellanox ConnectX-4 Lx Ethernet Adapter)\\Packets Sent/sec",
        "\\Hyper-V Virtual Switch(vSwitch-Ext)\\Packets Received/sec",
        "\\Hyper-V Virtual Switch(vSwitch-Ext)\\Packets Sent/sec",
    ]
    n = 0
    while len(names) < counters:
        names.append(f"\\Hyper-V Virtual Network Adapter(relay-{n:03d}_Network Adapter)\\Packets/sec")
        n += 1
    names = names[:counters]
    rng = np.random.default_rng(14)
    vals = rng.uniform(2.0, 14.0, size=(rows, counters))
    peak = slice(int(rows * 0.8), int(rows * 0.8) + min(600, rows // 10))
    vals[:, 0] = rng.uniform(35, 45, rows)
    vals[peak, 0] = rng.uniform(99.2, 99.9, peak.stop - peak.start)
    vals[peak, cores] = 31.0
    vals[peak, cores + 1] = 64.0
    nic = 3 * cores
    vals[:, nic] = rng.uniform(50_000, 70_000, rows)
    vals[:, nic + 1] = rng.uniform(100_000, 140_000, rows)
    vals[peak, nic] = 150_000.0
    vals[peak, nic + 1] = 300_000.0
    start = datetime(2026, 9, 22, 0, 0, 0, 125000, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as f:
        head = ['"(PDH-CSV 4.0) (W. Europe Daylight Time)(-120)"'] + [f'"\\\\HV-EDGE-02{p}"' for p in names]
        f.write(",".join(head) + "\r\n")
        for i in range(rows):
            ts = (start + timedelta(seconds=i)).strftime("%m/%d/%Y %H:%M:%S.%f")[:-3]
            f.write(f'"{ts}","' + '","'.join(f"{v:.6f}" for v in vals[i]) + '"\r\n')


# Whole processes, timed from outside (interpreter start-up included), by a small launcher so that the peak RSS
# os.wait4 reports is the child's own (Linux carries ru_maxrss over exec; the launcher is ~10 MB, the benchmark
# itself much more).
LAUNCH = r"""
import os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, ru = os.wait4(p.pid, 0)
dt = time.perf_counter() - t0
code = os.waitstatus_to_exitcode(status)
assert code in (0, 1), f"exit {code}"
print(f"{dt:.4f} {ru.ru_utime + ru.ru_stime:.4f} {ru.ru_maxrss // 1024}")
"""
CSV_PASS = (
    "import csv, sys\n"
    "with open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
    "    for row in csv.reader(f):\n"
    "        pass\n"
)
DIAGNOSE_NO_CLI = (
    "import json, sys\n"
    "from pathlib import Path\n"
    "from iovkit.diagnose import diagnose\n"
    "from iovkit.diagnose.inputs import load\n"
    "print(json.dumps(diagnose(load(Path(sys.argv[1]))).to_json(), indent=2, ensure_ascii=False))\n"
)
WHOLE = {
    "csv, whole process": lambda path: [sys.executable, "-c", CSV_PASS, str(path)],
    "python3 -c pass, whole process": lambda path: [sys.executable, "-c", "pass"],
    "diagnose + JSON without the CLI, whole process": lambda path: [sys.executable, "-c", DIAGNOSE_NO_CLI, str(path)],
    "iovkit diagnose --format json on 60 samples, whole process": lambda path: [
        sys.executable,
        "-m",
        "iovkit",
        "diagnose",
        str(path.with_name("minute74.csv")),
        "--format",
        "json",
    ],
    "iovkit diagnose --format json, whole process": lambda path: [
        sys.executable,
        "-m",
        "iovkit",
        "diagnose",
        str(path),
        "--format",
        "json",
    ],
}


def run(what: str, path: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS MB) of one step in a fresh process. In-process steps are timed from after the
    interpreter started (their imports count); whole-process steps include the interpreter's start-up."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if what in WHOLE:
        out = subprocess.run(
            [sys.executable, "-c", LAUNCH, *WHOLE[what](path)], capture_output=True, text=True, env=env, check=True
        ).stdout.split()
        return float(out[0]), float(out[1]), int(out[2])
    out = subprocess.run(
        [sys.executable, "-c", STEP, what, str(path)], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="iovkit-size-") as tmp:
        d = Path(tmp)
        files = {
            "day, 74 counters": (d / "day74.csv", 86_400, 74),
            "half day, 74 counters": (d / "half74.csv", 43_200, 74),
            "quarter day, 74 counters": (d / "quarter74.csv", 21_600, 74),
            "day, 148 counters": (d / "day148.csv", 86_400, 148),
        }
        for path, rows, counters in files.values():
            make(path, rows, counters)
        make(d / "minute74.csv", 60, 74)  # the CLI's fixed cost: a file that costs nothing to read
        day = files["day, 74 counters"][0]
        size_mb = day.stat().st_size / 1e6
        res: dict[str, list[tuple[float, float, int]]] = {}
        steps = ["csv", "imports", "read", "diagnose", "diagnose, imports excluded", *WHOLE]
        load_before = os.getloadavg()
        for r in range(args.rounds):
            for what in steps if r % 2 == 0 else steps[::-1]:
                res.setdefault(what, []).append(run(what, day))
        res["line reader"] = [run("line reader", day)]
        lin: dict[str, tuple[float, float, int, float, float]] = {}
        for label, (path, _rows, _c) in files.items():
            ts: list[tuple[float, float, int]] = []
            cs: list[tuple[float, float, int]] = []
            for r in range(args.rounds):
                pair = [("diagnose", ts), ("csv", cs)]
                for what, into in pair if r % 2 == 0 else pair[::-1]:
                    into.append(run(what, path))
            lin[label] = (
                statistics.median(t for t, _, _ in ts),
                statistics.median(c for _, c, _ in ts),
                max(m for _, _, m in ts),
                statistics.median(t for t, _, _ in cs),
                statistics.median(c for _, c, _ in cs),
            )
        load_after = os.getloadavg()
    base = statistics.median(t for t, _, _ in res["csv"])
    base_cpu = statistics.median(c for _, c, _ in res["csv"])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## diagnose: a day of 1 s samples (size)",
        "",
        f"Run {when} on {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; the machine is shared, so these are upper bounds). Command: "
        f"`python3 bench/diagnose_size.py --rounds {args.rounds} --write`. The file: 86,400 samples x 74 counters, "
        f"{size_mb:.0f} MB, written by the benchmark (not committed). Each step in a fresh process, the steps "
        "alternating in order round by round; peak RSS is that process's maximum resident set. Load average "
        f"(1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_before)} at the start of the day rounds, "
        f"{'/'.join(f'{x:.1f}' for x in load_after)} at their end.",
        "",
        "In-process steps are timed inside the process from after the interpreter started (their imports count) "
        "and compare with `csv` timed the same way; the `whole process` rows are timed from outside, "
        "interpreter start-up included, and compare with `csv, whole process`.",
        "",
        "| step (day, 74 counters) | wall min / median | ratio (median) | CPU min / median | CPU ratio "
        "(min, median) | peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base_whole = statistics.median(t for t, _, _ in res["csv, whole process"])
    base_whole_cpu = statistics.median(c for _, c, _ in res["csv, whole process"])
    base_whole_cpu_min = min(c for _, c, _ in res["csv, whole process"])
    base_cpu_min = min(c for _, c, _ in res["csv"])
    for what in ("csv", "imports", "read", "diagnose", "diagnose, imports excluded", "line reader", *WHOLE):
        whole = what in WHOLE
        bt, bc, bcm = (base_whole, base_whole_cpu, base_whole_cpu_min) if whole else (base, base_cpu, base_cpu_min)
        t = statistics.median(x for x, _, _ in res[what])
        c = statistics.median(x for _, x, _ in res[what])
        tm = min(x for x, _, _ in res[what])
        cm = min(x for _, x, _ in res[what])
        m = max(x for _, _, x in res[what])
        lines.append(
            f"| {what} | {tm:.2f} / {t:.2f} s | {t / bt:.2f}x | {cm:.2f} / {c:.2f} s | {cm / bcm:.2f}x, "
            f"{c / bc:.2f}x | {m} MB |"
        )
    lines += [
        "",
        "| linearity: `diagnose` | wall | one csv pass | ratio | CPU | csv CPU | CPU ratio | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, (t, c, m, bt, bc) in lin.items():
        lines.append(
            f"| {label} | {t:.2f} s | {bt:.2f} s | {t / bt:.2f}x | {c:.2f} s | {bc:.2f} s | {c / bc:.2f}x | {m} MB |"
        )
    lines += [
        "",
        "Targets: `diagnose` on the day within the time of one csv pass (ratio <= 1.0) and under 300 MB; cost "
        "linear in samples and counters. `diagnose, imports excluded` is the part that grows with the file. "
        "Before issue 14 the same day took 16.7 s and 511 MB (15.8x). The reader was chosen by measurement on "
        "this file (one process each, this machine, 2026-11-29): numpy blocks (split, join, `np.fromstring`) "
        "~2.3x one csv pass; pyarrow's streaming reader with 2 threads ~1.2x CPU and slower wall time under "
        "load, single-threaded ~0.8x CPU at ~210 MB (what iovkit uses). `line reader` is the fallback for files "
        "pyarrow refuses (decimal commas, a malformed cell, whose line it names). iovkit.sources (the snapshot "
        "model and pydantic) is imported only for a non-ASCII header or a non-CSV input; rich only for the "
        "table; numpy.ma not at all (iovkit's own median).",
        "",
        "Why the target is still missed (measured apart, in-process CPU, this machine, 2026-11-29): "
        "the part that grows with the file (read plus analysis, `imports excluded`) is ~0.8x of one csv pass; "
        "what is over is fixed start-up cost, paid once whatever the file: numpy's import ~0.08 s, pyarrow's "
        "~0.05 s, iovkit.diagnose's own modules ~0.02 s; and for the command, typer ~0.025 s, the command tree "
        "(every command's click object, built for any run but `CMD --help`) ~0.035 s, and the pydantic import "
        "typer 0.29 makes to coerce parameters (typer._adapters) ~0.065 s. The row `on 60 samples` is that fixed "
        "cost alone: as much as one csv pass over the 76 MB day. So `iovkit diagnose` misses 1.0x on this file "
        "by its start-up, not by per-row work, and the ratio falls as files grow (the day of 148 counters).",
        END,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        results = ROOT / "bench" / "RESULTS.md"
        old = results.read_text(encoding="utf-8")
        if BEGIN in old and END in old:
            new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :]
        else:
            new = old.rstrip("\n") + "\n\n" + text + "\n"
        results.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"(benchmark took {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
