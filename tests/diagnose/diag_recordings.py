"""Build counter recordings in the exact shapes Windows writes (PDH-CSV 4.0, Get-Counter JSON).

The "case" recording is the issue's symptom: root VP 0 at 97-99%, interrupt+DPC on core 0 close to it, the NIC at
150k received + 300k sent packets/s, all of them indicated on processor 0, the other root VPs near 10%.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

NIC = "Mellanox ConnectX-4 Lx Ethernet Adapter"
HOSTVNIC = "vEthernet (vSwitch-Ext)"
SWITCH = "vSwitch-Ext"
START = datetime(2026, 9, 22, 21, 42, 32, 824000)


def _jitter(i: int, amp: float) -> float:
    return ((i * 7919) % 11 - 5) / 5 * amp


def case_rows(n: int = 12, cores: int = 4, balanced: bool = False) -> tuple[list[str], list[list[float | None]]]:
    """Counter paths (without machine prefix) and n rows of values."""
    paths: list[str] = []
    for c in range(cores):
        paths.append(f"\\Hyper-V Hypervisor Root Virtual Processor(Root VP {c})\\% Total Run Time")
    paths.append("\\Hyper-V Hypervisor Root Virtual Processor(_Total)\\% Total Run Time")
    for c in range(cores):
        paths += [f"\\Processor({c})\\% Interrupt Time", f"\\Processor({c})\\% DPC Time"]
    paths += ["\\Processor(_Total)\\% Interrupt Time", "\\Processor(_Total)\\% DPC Time"]
    for c in range(cores):
        paths += [
            f"\\Hyper-V Virtual Switch Processor({c})\\Packets from External",
            f"\\Hyper-V Virtual Switch Processor({c})\\Packets from Internal",
        ]
    paths += [
        f"\\Hyper-V Virtual Switch({SWITCH})\\Packets Received/sec",
        f"\\Hyper-V Virtual Switch({SWITCH})\\Packets Sent/sec",
        f"\\Hyper-V Virtual Switch({SWITCH})\\Dropped Packets Incoming/sec",
        f"\\Network Interface({NIC})\\Packets Received/sec",
        f"\\Network Interface({NIC})\\Packets Sent/sec",
        f"\\Network Interface({HOSTVNIC})\\Packets Received/sec",
        f"\\Network Interface({HOSTVNIC})\\Packets Sent/sec",
    ]
    rows: list[list[float | None]] = []
    for i in range(n):
        rx, tx = 150_000 + _jitter(i, 3000), 300_000 + _jitter(i + 3, 6000)
        row: list[float | None] = []
        if balanced:
            run = [45 + _jitter(i + c, 4) for c in range(cores)]
            intr = [(8 + _jitter(i + c, 1), 12 + _jitter(i + c + 1, 2)) for c in range(cores)]
            ext = [rx / cores] * cores
            inte = [tx / cores] * cores
        else:
            run = [98 + _jitter(i, 1)] + [10 + _jitter(i + c, 2) for c in range(1, cores)]
            intr = [(31 + _jitter(i, 1), 65 + _jitter(i + 1, 1))] + [(1.0, 1.5)] * (cores - 1)
            ext = [rx * 0.99] + [rx * 0.01 / (cores - 1)] * (cores - 1)
            inte = [tx * 0.99] + [tx * 0.01 / (cores - 1)] * (cores - 1)
        row += [*run, sum(run) / cores]
        for a, b in intr:
            row += [a, b]
        row += [sum(a for a, _ in intr) / cores, sum(b for _, b in intr) / cores]
        for c in range(cores):
            row += [ext[c], inte[c]]
        row += [rx, tx, 0.0, rx, tx, 120.0, 80.0]
        rows.append(row)
    # a missing sample, as PDH writes it: a single space
    rows[3][1] = None
    return paths, rows


def pdh_csv(
    host: str = "HV-HOST-01", tz: str | None = None, balanced: bool = False, typeperf_stdout: bool = False, n: int = 12
) -> str:
    """PDH-CSV 4.0 text; `typeperf_stdout` adds the leading empty line and trailing status lines."""
    paths, rows = case_rows(n=n, balanced=balanced)
    first = "(PDH-CSV 4.0)" + (f" {tz}" if tz else "")
    lines = [",".join(f'"{c}"' for c in [first] + [f"\\\\{host}{p}" for p in paths])]
    for i, row in enumerate(rows):
        ts = (START + timedelta(seconds=i)).strftime("%m/%d/%Y %H:%M:%S.%f")[:-3]
        cells = [ts] + [" " if v is None else f"{v:.6f}" for v in row]
        lines.append(",".join(f'"{c}"' for c in cells))
    body = "\r\n".join(lines) + "\r\n"
    if typeperf_stdout:
        status = "Exiting, please wait...                         \r\nThe command completed successfully.\r\n"
        body = "\r\n" + body + status
    return body


def get_counter_json(host: str = "hv-host-01", balanced: bool = False, flat: bool = False) -> str:
    """Get-Counter samples via ConvertTo-Json: sample sets (PS 5.1 /Date()/ stamps) or a flat list (PS 7 ISO)."""
    paths, rows = case_rows(balanced=balanced)
    sets = []
    flat_list = []
    for i, row in enumerate(rows):
        when = START + timedelta(seconds=i)
        ms = int((when - datetime(1970, 1, 1)).total_seconds() * 1000)
        samples = []
        for p, v in zip(paths, row, strict=True):
            full = f"\\\\{host}{p}".lower()
            inst = full.split("(", 1)[1].rsplit(")", 1)[0] if "(" in full else ""
            s = {
                "Path": full,
                "InstanceName": inst,
                "CookedValue": 0.0 if v is None else v,
                "Timestamp": when.isoformat() if flat else f"/Date({ms})/",
            }
            samples.append(s)
            flat_list.append(s)
        sets.append({"Timestamp": f"/Date({ms})/", "CounterSamples": samples})
    return json.dumps(flat_list if flat else sets, indent=1)


def peak_csv(
    hours: float = 4.0,
    peak_at: int = 3 * 3600,
    peak_s: int = 600,
    cores: int = 16,
    step: int = 1,
    tz: str = "(W. Europe Daylight Time)(-120)",
    percore: bool = False,
    proc_info: bool = False,
    start: datetime = datetime(2026, 9, 22, 17, 0, 0, 250000),
    host: str = "HV-EDGE-02",
    dpc_background: float = 3.0,
    dpc1_peak: float | None = None,
) -> str:
    """A long logman-style recording: quiet evening load, then `peak_s` seconds from `peak_at` where root VP 0 and
    its interrupt+DPC saturate at the source's 150k in + 300k out pkt/s; the other cores carry `dpc_background`
    % of DPC (timers, storage) all the time (core 1 `dpc1_peak` % during the peak, when given).
    `proc_info` records `\\Processor Information(0,n)` instead of
    `\\Processor(n)`, as Perfmon's UI picks; `percore` adds `\\Hyper-V Virtual Switch Processor(*)`."""
    pobj = "Processor Information" if proc_info else "Processor"
    pinst = (lambda c: f"0,{c}") if proc_info else str
    paths = [f"\\Hyper-V Hypervisor Root Virtual Processor(Root VP {c})\\% Total Run Time" for c in range(cores)]
    paths.append("\\Hyper-V Hypervisor Root Virtual Processor(_Total)\\% Total Run Time")
    for c in range(cores):
        paths += [f"\\{pobj}({pinst(c)})\\% Interrupt Time", f"\\{pobj}({pinst(c)})\\% DPC Time"]
    paths += [f"\\{pobj}(_Total)\\% DPC Time"] + ([f"\\{pobj}(0,_Total)\\% DPC Time"] if proc_info else [])
    if percore:
        paths += [f"\\Hyper-V Virtual Switch Processor({c})\\Packets from External/sec" for c in range(cores)]
    paths += [
        f"\\Network Interface({NIC})\\Packets Received/sec",
        f"\\Network Interface({NIC})\\Packets Sent/sec",
        f"\\Network Interface({HOSTVNIC})\\Packets Received/sec",
    ]
    first = f"(PDH-CSV 4.0) {tz}" if tz else "(PDH-CSV 4.0)"
    out = [",".join(f'"{c}"' for c in [first] + [f"\\\\{host}{p}" for p in paths])]
    n = int(hours * 3600 / step)
    for i in range(n):
        t = i * step
        hot = peak_at <= t < peak_at + peak_s
        j = _jitter(i, 1.0)
        if hot:
            rx, tx = 150_000 + 900 * j, 300_000 + 1800 * j
            run0, intr0, dpc0 = 99.6 + 0.3 * j, 31.0 + j, 64.0 + j
        else:
            rx, tx = 60_000 + 600 * j, 120_000 + 900 * j
            run0, intr0, dpc0 = 42.0 + 2 * j, 13.0 + j, 26.0 + j
        row = [run0] + [12.0 + 2 * _jitter(i + c, 1.0) for c in range(1, cores)]
        row.append(sum(row) / cores)
        row += [intr0, dpc0]
        for c in range(1, cores):
            dpc = dpc1_peak if c == 1 and hot and dpc1_peak is not None else dpc_background + 0.5 * _jitter(i + c, 1.0)
            row += [0.5, dpc]
        row += [(intr0 + dpc0) / cores]
        if proc_info:
            row += [(intr0 + dpc0) / cores]
        if percore:
            row += [0.97 * (rx + tx)] + [0.03 * (rx + tx) / (cores - 1)] * (cores - 1)
        row += [rx, tx, 150.0]
        ts = (start + timedelta(seconds=t)).strftime("%m/%d/%Y %H:%M:%S.%f")[:-3]
        out.append('"' + ts + '","' + '","'.join(f"{v:.6f}" for v in row) + '"')
    return "\r\n".join(out) + "\r\n"
