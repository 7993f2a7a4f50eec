"""`iovkit report` on a day-long recording: how long it takes to write, how big the page is, how fast it opens.

Run: python3 bench/report_time.py [--cores 8] [--runs 3]. Builds an iovkit recording of 24 hours at one sample a
second (idle cores but for a five-minute single-core peak), times `iovkit report` on it, then times headless
Chromium (the Debian package) loading the page to its DOM. Prints medians; the numbers go in bench/RESULTS.md under
"report".
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def day_recording(path: Path, cores: int) -> None:
    sys.path.insert(0, str(ROOT))
    from iovkit.diagnose.model import Recording, key

    n = 86400
    start = datetime(2026, 11, 28, tzinfo=UTC).timestamp()
    rec = Recording(source="procfs", timestamps=[start + i for i in range(n)], host="relay-host")
    for core in range(cores):
        busy = [8.0 + (i % 7) for i in range(n)]
        if core == 0:
            busy[15 * 3600 : 15 * 3600 + 300] = [99.0] * 300
        rec.counters.setdefault(key("processor", "% processor time"), {})[str(core)] = busy
    path.write_text(json.dumps(rec.to_json()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rec, page = d / "day.json", d / "report.html"
        day_recording(rec, args.cores)
        env = {"PYTHONPATH": str(ROOT)}
        write, load = [], []
        for i in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "iovkit", "report", str(rec), "-o", str(page)],
                check=True,
                capture_output=True,
                env={**env, "PATH": "/usr/bin:/bin"},
            )
            write.append(time.perf_counter() - t0)
            if chromium:
                t0 = time.perf_counter()
                subprocess.run(
                    [
                        chromium,
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                        f"--user-data-dir={d / f'profile{i}'}",
                        "--proxy-server=127.0.0.1:9",
                        "--dump-dom",
                        page.as_uri(),
                    ],
                    check=True,
                    capture_output=True,
                )
                load.append(time.perf_counter() - t0)
        print(f"recording: 86,400 samples x {args.cores} cores, {rec.stat().st_size / 1e6:,.1f} MB")
        print(f"iovkit report: median {statistics.median(write):.2f} s over {args.runs} runs")
        print(f"page: {page.stat().st_size / 1024:,.1f} KiB")
        if load:
            print(f"chromium --headless --dump-dom (start, load, render, exit): median {statistics.median(load):.2f} s")
        empty = d / "empty.html"
        empty.write_text("<!DOCTYPE html><html><body></body></html>")
        if chromium:
            t0 = time.perf_counter()
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    f"--user-data-dir={d / 'profile-empty'}",
                    "--proxy-server=127.0.0.1:9",
                    "--dump-dom",
                    empty.as_uri(),
                ],
                check=True,
                capture_output=True,
            )
            print(f"chromium on an empty page, for comparison: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
