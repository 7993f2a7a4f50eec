"""The exact typeperf and logman command lines that record what `iovkit diagnose` needs on a Hyper-V host.

The counter list is data (COUNTERS); the script writes it to a `-cf` file so the command lines stay short and the
same list feeds typeperf (foreground) and logman (background data collector set).
"""

from __future__ import annotations

from iovkit.errors import InputError

COUNTERS: tuple[str, ...] = (
    r"\Hyper-V Hypervisor Root Virtual Processor(*)\% Total Run Time",
    r"\Hyper-V Hypervisor Logical Processor(*)\% Total Run Time",
    r"\Processor(*)\% Interrupt Time",
    r"\Processor(*)\% DPC Time",
    r"\Processor(*)\% Processor Time",
    r"\Hyper-V Virtual Switch(*)\Packets Received/sec",
    r"\Hyper-V Virtual Switch(*)\Packets Sent/sec",
    r"\Hyper-V Virtual Switch(*)\Dropped Packets Incoming/sec",
    r"\Hyper-V Virtual Switch(*)\Dropped Packets Outgoing/sec",
    r"\Hyper-V Virtual Switch Processor(*)\*",
    r"\Hyper-V Virtual Network Adapter(*)\Packets Received/sec",
    r"\Hyper-V Virtual Network Adapter(*)\Packets Sent/sec",
    r"\Hyper-V Virtual Network Adapter(*)\Dropped Packets Incoming/sec",
    r"\Hyper-V Virtual Network Adapter(*)\Dropped Packets Outgoing/sec",
    r"\Network Interface(*)\Packets Received/sec",
    r"\Network Interface(*)\Packets Sent/sec",
    r"\Network Interface(*)\Packets Received Discarded",
    r"\UDPv4\Datagrams Received Errors",
)


def _hms(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


MAX_RECORD_S = 7 * 24 * 3600  # logman's -rf and typeperf's -sc stay sane; a longer capture is a mistake


def counters_script(seconds: int, interval: int) -> str:
    """A PowerShell snippet: write the counter list, then record it with typeperf or logman for `seconds`."""
    if not 1 <= seconds <= MAX_RECORD_S:
        raise InputError(f"record 1..{MAX_RECORD_S} s (a week), not {seconds}", field="--duration")
    if not 1 <= interval <= seconds // 2:
        raise InputError(
            f"--interval {interval} leaves fewer than 2 samples in --duration {seconds}; diagnose needs a series",
            field="--interval",
        )
    samples = max(1, seconds // interval)
    listing = "\n".join(COUNTERS)
    logman = (
        f"logman create counter iovkit-diag -cf .\\iovkit-counters.txt -si {_hms(interval)} "
        f'-rf {_hms(seconds)} -f csv -o "$PWD\\iovkit-counters" -ow'
    )
    return f"""# iovkit: record the counters `iovkit diagnose` reads ({seconds} s, one sample every {interval} s).
# Run in an elevated PowerShell on the Hyper-V host while the VMs carry their usual (or peak) traffic.
# Counter names are English; on a localized Windows use the local names (typeperf -q lists them).
$counters = @'
{listing}
'@
Set-Content -Path .\\iovkit-counters.txt -Value $counters -Encoding ASCII

# Option 1, typeperf in the foreground (writes iovkit-counters.csv, PDH-CSV 4.0):
typeperf -cf .\\iovkit-counters.txt -si {interval} -sc {samples} -f CSV -o .\\iovkit-counters.csv -y

# Option 2, logman data collector in the background (writes iovkit-counters*.csv):
{logman}
logman start iovkit-diag
Start-Sleep -Seconds {seconds + 5}
logman stop iovkit-diag 2>$null
logman delete iovkit-diag

# Then, anywhere with iovkit:  iovkit diagnose iovkit-counters.csv
"""
