"""The one home of Windows and PowerShell knowledge: every Hyper-V reader, diagnose input and executor uses it.

- Text: what Windows writes to a file (UTF-16 with a BOM from 5.1's `>`, UTF-8, or the ANSI code page).
- Values: PowerShell 5.1's ConvertTo-Json writes enums as numbers and dates as `/Date(ms)/` (sometimes wrapped
  as {value, DateTime}); 7 writes names and ISO dates; Format-List text is all strings ("True", "{a, b}").
- Enum tables (hyperv.md §1; the numbers are what 5.1 writes) and a case-insensitive record view.
- Running PowerShell: finding powershell.exe or pwsh, its argv, the prelude every executed snippet gets.
- WinRM: the target, one client policy (ports, timeouts, retries) for collect and apply alike, and one-line
  failure text that never carries the password.
- Quoting: PowerShell single-quoted literals (`ps_quote`, from iovkit.quoting).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from iovkit.errors import InputError, UnreachableError
from iovkit.fileio import parse_json
from iovkit.quoting import ps_quote

__all__ = ["ps_quote"]

# -- text ---------------------------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-16 with a BOM (5.1's `>`, some logman/relog builds), UTF-8 with or without BOM, else code page 1252."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_text(path: Path) -> str:
    """A text file Windows wrote, decoded; an unreadable file is a one-line InputError naming it."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", path=str(path)) from err
    return decode_text(data)


def read_json(path: Path) -> Any:
    """A JSON file Windows wrote: `> file.json` in Windows PowerShell 5.1 writes UTF-16, Out-File UTF-8 with a BOM."""
    return parse_json(read_text(path), str(path))


# -- enum tables (hyperv.md §1; numbers are what PowerShell 5.1's ConvertTo-Json writes) ---------------------
SRIOV_SUPPORT = {
    0: "Unknown",
    1: "Supported",
    2: "MissingAcs",
    3: "MissingPfDriver",
    4: "NoBusResources",
    5: "NoIoMmuSupport",
    6: "NoVfBarSpace",
    7: "NoOscSupport",
}
SWITCH_TYPE = {0: "Private", 1: "Internal", 2: "External"}
BANDWIDTH_MODE = {0: "Default", 1: "Weight", 2: "Absolute", 3: "None"}
ADAPTER_STATUS = {
    0: "Unknown",
    1: "Other",
    2: "Ok",
    3: "Degraded",
    4: "Stressed",
    5: "PredictiveFailure",
    6: "Error",
    7: "NonRecoverableError",
    8: "Starting",
    9: "Stopping",
    10: "Stopped",
    11: "InService",
    12: "NoContact",
    13: "LostCommunication",
    14: "Aborted",
    15: "Dormant",
    16: "SupportingEntity",
    17: "Completed",
    18: "PowerMode",
    32775: "ProtocolVersion",
}
VM_STATE = {
    1: "Other",
    2: "Running",
    3: "Off",
    4: "Stopping",
    6: "Saved",
    9: "Paused",
    10: "Starting",
    11: "Reset",
    32773: "Saving",
    32776: "Pausing",
    32777: "Resuming",
    32779: "FastSaved",
    32780: "FastSaving",
    32781: "ForceShutdown",
    32782: "ForceReboot",
}
VM_OPERATIONAL_STATUS = {
    **ADAPTER_STATUS,
    32783: "CommunicationTimedOut",
    32784: "CommunicationFailed",
    32785: "NoIommu",
    32786: "NoIovSupportInNic",
    32787: "SwitchNotInIovMode",
    32788: "IovBlockedByPolicy",
    32789: "IovNoAvailResources",
    32790: "IovGuestDriversNeeded",
    32795: "CriticalIoError",
}
LBFO_MODE = {0: "Static", 1: "SwitchIndependent", 2: "Lacp"}
LBFO_ALGORITHM = {0: "TransportPorts", 2: "IPAddresses", 3: "MacAddresses", 4: "HyperVPort", 5: "Dynamic"}
LBFO_STATUS = {0: "Up", 1: "Degraded", 2: "Down"}
SET_MODE = {1: "SwitchIndependent"}
SET_ALGORITHM = {4: "HyperVPort", 5: "Dynamic"}


# -- values: JSON values and Format-List strings alike ---------------------------------------------------------
class PsRecord:
    """Case-insensitive view of one record: PowerShell property names are case-insensitive."""

    def __init__(self, rec: Mapping[str, Any]) -> None:
        self._d = {str(k).lower(): v for k, v in rec.items()}

    def has(self, name: str) -> bool:
        return name.lower() in self._d

    def raw(self, *names: str) -> Any:
        for n in names:
            v = self._d.get(n.lower())
            if v is not None and v != "":
                return v
        return None

    def s(self, *names: str) -> str | None:
        v = self.raw(*names)
        if v is None:
            return None
        if isinstance(v, list):
            return ", ".join(str(x) for x in v) or None
        s = str(v).strip()
        # Format-List of a CIM string property sometimes keeps its quotes ("Default Switch").
        return s or None

    def b(self, *names: str) -> bool | None:
        return as_bool(self.raw(*names))

    def i(self, *names: str) -> int | None:
        return as_int(self.raw(*names))

    def lst(self, *names: str) -> list[str]:
        return as_list(self.raw(*names))

    def olst(self, *names: str) -> list[str] | None:
        """A list property: None when the record does not carry it at all (not collected), else its items."""
        if not any(self.has(n) for n in names):
            return None
        return as_list(self.raw(*names))

    def enum(self, table: Mapping[int, str], *names: str) -> str | None:
        return as_enum(self.raw(*names), table)


def as_bool(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("true", "$true", "yes", "on", "1"):
        return True
    if s in ("false", "$false", "no", "off", "0"):
        return False
    return None


def as_int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    s = str(v).strip().replace(",", "")
    return int(s) if re.fullmatch(r"-?\d+", s) else None


def as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v if x is not None and str(x) != ""]
    s = str(v).strip()
    return [s] if s else []


def as_enum(v: Any, table: Mapping[int, str]) -> str | None:
    """A numeric enum (5.1) becomes its name; a name (7, Format-List) is kept, with the table's spelling."""
    if v is None or v == "":
        return None
    n = as_int(v)
    if n is not None:
        return table.get(n, str(n))
    s = str(v).strip()
    by_lower = {name.lower(): name for name in table.values()}
    return by_lower.get(s.lower(), s)


def as_enum_list(v: Any, table: Mapping[int, str]) -> list[str]:
    items = v if isinstance(v, list) else ([] if v is None or v == "" else [v])
    return [e for e in (as_enum(x, table) for x in items) if e is not None]


# `/Date(1732780800000)/`, also as JSON-escaped `\\/Date(...)\\/` when a file was double-encoded; the offset
# suffix (`+0100`) only says which zone the writer was in: the number is UTC milliseconds.
MS_DATE = re.compile(r"^/?\\?/?Date\((-?\d+)([+-]\d{4})?\)\\?/?$")


def unwrap(v: Any) -> Any:
    """5.1 wraps some values with their DisplayHint: {"value": ..., "DateTime": "text"} -> the value."""
    if isinstance(v, dict) and ("value" in v or "DateTime" in v):
        return v.get("value") or v.get("DateTime")
    return v


def as_datetime(v: Any) -> datetime | None:
    """`/Date(ms)/` (5.1, bare or wrapped) or an ISO string (7); naive times are taken as UTC; else None."""
    v = unwrap(v)
    if v is None or v == "":
        return None
    s = str(v).strip()
    if m := MS_DATE.match(s):
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def normalize_mac(v: str | None) -> str | None:
    """PowerShell prints MACs as 00155D010101 (Hyper-V) or 00-15-5D-01-01-01 (NetAdapter); the snapshot keeps
    Hyper-V's own spelling, 12 upper-case hex digits, so a VF's MAC matches its VM adapter's."""
    if not v:
        return None
    hexes = re.sub(r"[^0-9A-Fa-f]", "", v)
    if len(hexes) != 12:
        return v
    return hexes.upper()


# -- running PowerShell -------------------------------------------------------------------------------------

# Windows PowerShell first: it has the Hyper-V module natively; pwsh loads it through compatibility.
POWERSHELLS = ("powershell.exe", "powershell", "pwsh.exe", "pwsh")
# Every snippet iovkit runs: a failing cmdlet stops it (non-zero exit), no progress bars in captured output.
PS_PRELUDE = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n"
NO_POWERSHELL = (
    "no PowerShell found on this host (powershell.exe or pwsh); run `iovkit script collect` "
    "on the Hyper-V host and read its bundle with `iovkit collect --from FILE`"
)


def find_powershell(missing: str = NO_POWERSHELL) -> str:
    """The first PowerShell on PATH; `missing` is the UnreachableError text when there is none."""
    for name in POWERSHELLS:
        found = shutil.which(name)
        if found:
            return found
    raise UnreachableError(missing)


def powershell_file_argv(exe: str, script: Path, *args: str) -> list[str]:
    """Run a script file: no profile, no prompts, execution policy bypassed for this process only."""
    return [exe, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", str(script), *args]


def powershell_stdin_argv(exe: str) -> list[str]:
    """Run the script given on standard input (the executors' way: nothing lands on disk or in argv)."""
    return [exe, "-NoProfile", "-NonInteractive", "-Command", "-"]


# -- WinRM ----------------------------------------------------------------------------------------------------

WINRM_HTTP_PORT = 5985
WINRM_HTTPS_PORT = 5986
CONNECT_TIMEOUT_S = 10
# WSMan polls a long cmdlet (New-VMSwitch, the collector on a big host) in operation-timeout slices.
OPERATION_TIMEOUT_S = 300


@dataclass(frozen=True)
class RemoteTarget:
    """A Hyper-V host reached over WinRM; the password never travels through argv."""

    host: str
    user: str | None = None
    auth: Literal["negotiate", "kerberos", "ntlm", "credssp"] = "negotiate"
    port: int | None = None
    ssl: bool = False

    @property
    def winrm_port(self) -> int:
        """--port, else HTTP 5985 or HTTPS 5986."""
        return self.port or (WINRM_HTTPS_PORT if self.ssl else WINRM_HTTP_PORT)


def client_kwargs(target: RemoteTarget, password: str | None) -> dict[str, Any]:
    """Arguments for pypsrp.client.Client: the one client policy for collect and apply."""
    return {
        "username": target.user,
        "password": password,
        "auth": target.auth,
        "port": target.winrm_port,
        "ssl": target.ssl,
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": OPERATION_TIMEOUT_S + 30,
        "operation_timeout": OPERATION_TIMEOUT_S,
        "reconnection_retries": 0,
    }


def winrm_client(target: RemoteTarget, password: str | None) -> Any:
    """A pypsrp Client for the target (pypsrp is imported only when a remote host is used)."""
    try:
        from pypsrp.client import Client
    except ImportError as err:  # pragma: no cover - pypsrp is a dependency
        raise UnreachableError(f"pypsrp is not installed: {err}") from err
    return Client(target.host, **client_kwargs(target, password))


_ROOT_CAUSE = re.compile(r"\[Errno -?\d+\] ([^'\")(]+)|(timed out|Failed to resolve '[^']+')")


def scrub(text: str, password: str | None) -> str:
    """One short line: the root cause out of requests/urllib3's nested repr, never any part of the password.

    Masking the password inside the text would show which letters it replaced (a one-letter password turns
    `Max retries` into `Ma*** retries`), so a text that contains it is withheld whole.
    """
    text = " ".join(str(text).split())
    found = _ROOT_CAUSE.findall(text)
    if found and "Pool(" in text:  # urllib3's `HTTPConnectionPool(host=..., port=...): Max retries ...`
        text = "; ".join(dict.fromkeys(a or b for a, b in found))
    text = text[:200]
    if password and password in text:
        return "(details withheld: they contain the password)"
    return text


def describe_failure(err: BaseException, password: str | None) -> str:
    """`Type: cause` of a pypsrp/requests/spnego failure, for UnreachableError messages."""
    return f"{type(err).__name__}: {scrub(str(err), password)}"
