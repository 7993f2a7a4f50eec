"""Wall-clock time of `iovkit doctor` on this machine (the issue asks for under 3 s), as a user runs it.

Run: python3 bench/doctor_time.py [runs]. Prints one line per run and the median; the numbers go in
bench/RESULTS.md under "doctor".
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def main(runs: int = 3) -> None:
    times: list[float] = []
    for i in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "iovkit", "doctor"], capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        times.append(dt)
        first = proc.stdout.splitlines()[0] if proc.stdout else proc.stderr.strip()
        print(f"run {i + 1}: {dt:.2f} s  exit {proc.returncode}  {first}")
    print(f"median {statistics.median(times):.2f} s over {runs} runs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
