"""Live Linux sampler: cumulative /proc counters read twice per interval and turned into rates.

Small pure parsers (one per /proc file, each taking the text) plus one `read_raw(root)` that reads them all, so
a captured /proc tree parses like the live host. `sample(...)` returns a Recording whose counter keys are:
`linux cpu\\% busy|% irq|% softirq|% user|% system` (instance = CPU number), `softnet\\processed/sec|dropped/sec|
time_squeeze/sec` (CPU from column 13 when present), `softirqs\\net_rx/sec|net_tx/sec`, `udp\\<field>/sec`,
`network interface\\packets received/sec|packets sent/sec|packets received discarded/sec` (instance = ifname),
and `vhost\\% cpu` / `vhost\\cpu` (instance = `<comm>:<tid>`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from iovkit.diagnose.model import Recording, key

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
UDP_FIELDS = ("InErrors", "RcvbufErrors", "SndbufErrors", "NoPorts", "InDatagrams", "OutDatagrams")


@dataclass
class Raw:
    """One read of every cumulative counter, at monotonic time `t`."""

    t: float
    cpu: dict[str, dict[str, int]] = field(default_factory=dict)
    softnet: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    softirqs: dict[str, dict[str, int]] = field(default_factory=dict)
    udp: dict[str, int] = field(default_factory=dict)
    dev: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # rx packets, tx packets, rx drop
    vhost: dict[str, tuple[int, int]] = field(default_factory=dict)  # ticks (utime+stime), last cpu


def parse_stat(text: str) -> dict[str, dict[str, int]]:
    """Per-CPU tick counters from /proc/stat (`cpuN user nice system idle iowait irq softirq steal ...`)."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or not parts[0].startswith("cpu") or parts[0] == "cpu":
            continue
        nums = [int(x) for x in parts[1:9]]
        nums += [0] * (len(CPU_FIELDS) - len(nums))
        out[parts[0][3:]] = dict(zip(CPU_FIELDS, nums, strict=True))
    return out


def parse_softnet(text: str) -> dict[str, tuple[int, int, int]]:
    """(processed, dropped, time_squeeze) per CPU; hex columns, CPU id from column 13 when the kernel prints it."""
    out: dict[str, tuple[int, int, int]] = {}
    for row, line in enumerate(text.splitlines()):
        cols = line.split()
        if len(cols) < 3:
            continue
        cpu = str(int(cols[12], 16)) if len(cols) >= 13 else str(row)
        out[cpu] = (int(cols[0], 16), int(cols[1], 16), int(cols[2], 16))
    return out


def parse_softirqs(text: str) -> dict[str, dict[str, int]]:
    """NET_RX / NET_TX counts per CPU from /proc/softirqs."""
    lines = text.splitlines()
    if not lines:
        return {}
    cpus = [c[3:] for c in lines[0].split()]
    out: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name in ("NET_RX", "NET_TX"):
            out[name.lower()] = {cpu: int(v) for cpu, v in zip(cpus, rest.split(), strict=False)}
    return out


def parse_snmp_udp(text: str) -> dict[str, int]:
    """The `Udp:` header/value pair of /proc/net/snmp, by header name (columns differ across kernels)."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2:
        return {}
    return {name: int(v) for name, v in zip(rows[0], rows[1], strict=False)}


def parse_net_dev(text: str) -> dict[str, tuple[int, int, int]]:
    """(rx packets, tx packets, rx drop) per interface from /proc/net/dev."""
    out: dict[str, tuple[int, int, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        c = rest.split()
        if len(c) >= 10:
            out[name.strip()] = (int(c[1]), int(c[9]), int(c[3]))
    return out


def parse_task_stat(text: str) -> tuple[int, int]:
    """(utime+stime ticks, last CPU) from /proc/<pid>/task/<tid>/stat; fields counted after the `)` of comm."""
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): utime=14, stime=15, processor=39
    return int(rest[11]) + int(rest[12]), int(rest[36])


def _cat(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def vhost_threads(proc: Path) -> dict[str, tuple[int, int]]:
    """vhost-net workers: kthreads named `vhost-<pid>` (before 6.4) or threads of that name inside QEMU."""
    out: dict[str, tuple[int, int]] = {}
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        comm = _cat(proc / pid / "comm").strip()
        tasks = [pid] if comm.startswith("vhost-") else []
        if comm.startswith(("qemu", "kvm")):
            try:
                tasks = [
                    t
                    for t in os.listdir(proc / pid / "task")
                    if _cat(proc / pid / "task" / t / "comm").startswith("vhost-")
                ]
            except OSError:
                tasks = []
        for tid in tasks:
            stat = _cat(proc / pid / "task" / tid / "stat")
            name = _cat(proc / pid / "task" / tid / "comm").strip()
            if stat and name:
                try:
                    out[f"{name}:{tid}"] = parse_task_stat(stat)
                except (ValueError, IndexError):
                    continue
    return out


def read_raw(root: Path = Path("/")) -> Raw:
    """Read every source once; a missing file simply gives no counters of that kind."""
    proc = root / "proc"
    return Raw(
        t=time.monotonic(),
        cpu=parse_stat(_cat(proc / "stat")),
        softnet=parse_softnet(_cat(proc / "net/softnet_stat")),
        softirqs=parse_softirqs(_cat(proc / "softirqs")),
        udp=parse_snmp_udp(_cat(proc / "net/snmp")),
        dev=parse_net_dev(_cat(proc / "net/dev")),
        vhost=vhost_threads(proc),
    )


def available(root: Path = Path("/")) -> bool:
    """True where live counters exist (Linux with /proc/stat and softnet_stat)."""
    return (root / "proc/stat").is_file() and (root / "proc/net/softnet_stat").is_file()


def add_delta(rec: Recording, a: Raw, b: Raw, wall: float) -> None:
    """Append one sample (the rates between reads a and b) to the recording."""
    dt = max(b.t - a.t, 1e-6)
    i = len(rec.timestamps)
    assert isinstance(rec.timestamps, list)  # the live sampler builds list series
    rec.timestamps.append(wall)
    for cpu, cb in b.cpu.items():
        ca = a.cpu.get(cpu)
        if ca is None:
            continue
        d = {f: max(cb[f] - ca[f], 0) for f in CPU_FIELDS}
        all_ticks = sum(d.values())
        if all_ticks <= 0:
            continue
        pct = {f: 100.0 * d[f] / all_ticks for f in CPU_FIELDS}
        rec.put(key("linux cpu", "% busy"), cpu, i, 100.0 - pct["idle"] - pct["iowait"])
        for f in ("irq", "softirq", "user", "system", "steal"):
            rec.put(key("linux cpu", f"% {f}"), cpu, i, pct[f])
    for cpu, sb in b.softnet.items():
        sa = a.softnet.get(cpu)
        if sa is not None:
            for j, name in enumerate(("processed", "dropped", "time_squeeze")):
                rec.put(key("softnet", f"{name}/sec"), cpu, i, max(sb[j] - sa[j], 0) / dt)
    for name, per in b.softirqs.items():
        for cpu, vb in per.items():
            va = a.softirqs.get(name, {}).get(cpu)
            if va is not None:
                rec.put(key("softirqs", f"{name}/sec"), cpu, i, max(vb - va, 0) / dt)
    for fname in UDP_FIELDS:
        if fname in b.udp and fname in a.udp:
            rec.put(key("udp", f"{fname}/sec"), "", i, max(b.udp[fname] - a.udp[fname], 0) / dt)
    for ifname, db in b.dev.items():
        da = a.dev.get(ifname)
        if da is not None:
            rec.put(key("network interface", "packets received/sec"), ifname, i, max(db[0] - da[0], 0) / dt)
            rec.put(key("network interface", "packets sent/sec"), ifname, i, max(db[1] - da[1], 0) / dt)
            rec.put(key("network interface", "packets received discarded/sec"), ifname, i, max(db[2] - da[2], 0) / dt)
    hz = int(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100
    for name, (tb, last_cpu) in b.vhost.items():
        va2 = a.vhost.get(name)
        if va2 is not None:
            rec.put(key("vhost", "% cpu"), name, i, 100.0 * max(tb - va2[0], 0) / hz / dt)
            rec.put(key("vhost", "cpu"), name, i, float(last_cpu))
    rec.pad()


def sample(seconds: float, interval: float, root: Path = Path("/")) -> Recording:
    """Sample /proc every `interval` seconds for `seconds` (at least one interval) and return the rates."""
    rec = Recording(source="procfs", host=os.uname().nodename)
    steps = max(1, round(seconds / interval)) if interval > 0 else 1
    prev = read_raw(root)
    for _ in range(steps):
        time.sleep(max(interval, 0.01))
        cur = read_raw(root)
        add_delta(rec, prev, cur, time.time())
        prev = cur
    return rec
