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
# Works on any display language: each English name is looked up by its Perflib index (Perflib\\009) and
# recorded under the host's own name for that index (Perflib\\CurrentLanguage), as PdhLookupPerfNameByIndex
# does; iovkit-counters.names.tsv beside the CSV maps the local names back to English for diagnose.
$counters = @'
{listing}
'@ -split "`r?`n" | Where-Object {{ $_ }}

$perflib = 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Perflib'
$english = (Get-ItemProperty -Path "$perflib\\009" -Name Counter).Counter
$localized = (Get-ItemProperty -Path "$perflib\\CurrentLanguage" -Name Counter).Counter
$indexOf = @{{}}
for ($i = 0; $i -lt $english.Count - 1; $i += 2) {{
    # the first index of a name, as PdhLookupPerfIndexByName returns it
    if (-not $indexOf.ContainsKey($english[$i + 1])) {{ $indexOf[$english[$i + 1]] = $english[$i] }}
}}
$nameOf = @{{}}
for ($i = 0; $i -lt $localized.Count - 1; $i += 2) {{ $nameOf[$localized[$i]] = $localized[$i + 1] }}

function ConvertTo-LocalName([string]$Name) {{
    if ($Name -eq '*' -or -not $indexOf.ContainsKey($Name)) {{ return $Name }}
    $index = $indexOf[$Name]
    if ($nameOf.ContainsKey($index)) {{ return $nameOf[$index] }}
    return $Name
}}

$mapping = New-Object System.Collections.Generic.List[string]
$unresolved = New-Object System.Collections.Generic.List[string]
$paths = foreach ($path in $counters) {{
    if ($path -notmatch '^\\\\(?<object>[^\\(]+)(?<instance>\\([^)]*\\))?\\\\(?<counter>.+)$') {{ $path; continue }}
    $object, $instance, $counter = $Matches['object'], $Matches['instance'], $Matches['counter']
    $localObject = ConvertTo-LocalName $object
    $localCounter = ConvertTo-LocalName $counter
    if (-not $indexOf.ContainsKey($object)) {{ $unresolved.Add($object) }}
    if ($localObject -ne $object) {{ $mapping.Add("$localObject`t$object") }}
    if ($localCounter -ne $counter) {{ $mapping.Add("$localCounter`t$counter") }}
    '\\' + $localObject + $instance + '\\' + $localCounter
}}
if ($unresolved.Count) {{
    $names = ($unresolved | Sort-Object -Unique) -join '; '
    Write-Warning "not in Perflib, recorded under the English name: $names"
}}
Set-Content -Path .\\iovkit-counters.txt -Value $paths -Encoding Unicode
Set-Content -Path .\\iovkit-counters.names.tsv -Value ($mapping | Sort-Object -Unique) -Encoding UTF8

# Option 1, typeperf in the foreground (writes iovkit-counters.csv, PDH-CSV 4.0):
typeperf -cf .\\iovkit-counters.txt -si {interval} -sc {samples} -f CSV -o .\\iovkit-counters.csv -y

# Option 2, logman data collector in the background (writes iovkit-counters*.csv):
{logman}
logman start iovkit-diag
Start-Sleep -Seconds {seconds + 5}
logman stop iovkit-diag 2>$null
logman delete iovkit-diag

# Then, anywhere with iovkit, with iovkit-counters.names.tsv beside the CSV:  iovkit diagnose iovkit-counters.csv
"""
