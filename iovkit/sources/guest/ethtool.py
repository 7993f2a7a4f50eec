"""`ethtool -l / -x / -n rx-flow-hash udp4 / -k`: parsers of the tool's text, and a live reader that prints it.

On a live host the `ethtool` program is run when it exists; otherwise the same answers come from the SIOCETHTOOL
ioctl and are printed in the tool's own layout (guest.md §4 shapes), so a capture parses alike either way.
"""

from __future__ import annotations

import ctypes
import fcntl
import shutil
import socket
import struct
import subprocess

from iovkit.sources.linux.reader import CaptureError

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GRXFH = 0x29
ETHTOOL_GRXRINGS = 0x2D
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GRXFHINDIR = 0x38
ETHTOOL_GFEATURES = 0x3A
ETHTOOL_GCHANNELS = 0x3C
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32
UDP_V4_FLOW = 0x02
# RXH_* bits of ETHTOOL_GRXFH and the lines ethtool prints for them (ethtool's dump_rxfhash)
RXH_FIELDS = (
    (1 << 1, "L2DA", "m"),
    (1 << 2, "VLAN tag", "v"),
    (1 << 3, "L3 proto", "t"),
    (1 << 4, "IP SA", "s"),
    (1 << 5, "IP DA", "d"),
    (1 << 6, "L4 bytes 0 & 1 [TCP/UDP src port]", "f"),
    (1 << 7, "L4 bytes 2 & 3 [TCP/UDP dst port]", "n"),
)
# ethtool -k prints these kernel feature names under their legacy names
LEGACY_NAMES = {
    "rx-gro": "generic-receive-offload",
    "tx-generic-segmentation": "generic-segmentation-offload",
    "rx-lro": "large-receive-offload",
    "rx-hashing": "receive-hashing",
}
FEATURES_OF_INTEREST = (
    "generic-receive-offload",
    "generic-segmentation-offload",
    "large-receive-offload",
    "rx-udp-gro-forwarding",
    "rx-gro-list",
    "tx-udp-segmentation",
)
COMMAND_TIMEOUT_S = 10.0


# -- parsers (text in the tool's shape) -----------------------------------------------------------------------
def _num(value: str) -> int | None:
    v = value.strip()
    return int(v) if v.isdigit() else None


def parse_channels(text: str) -> tuple[int | None, int | None]:
    """`ethtool -l`: (maximum, current) queue count: Combined, else RX; n/a or 0 counts as absent."""
    section: dict[str, dict[str, int | None]] = {"max": {}, "cur": {}}
    part = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Pre-set maximums"):
            part = "max"
        elif s.startswith("Current hardware settings"):
            part = "cur"
        elif part and ":" in s:
            key, _, value = s.partition(":")
            section[part][key.strip().lower()] = _num(value)

    def pick(d: dict[str, int | None]) -> int | None:
        combined, rx = d.get("combined") or 0, d.get("rx") or 0
        return (combined + rx) or None

    return pick(section["max"]), pick(section["cur"])


def parse_indirection(text: str) -> tuple[int | None, list[int] | None]:
    """`ethtool -x`: (RX ring count, the distinct queues the table points at); None when RSS is not reported."""
    rings: int | None = None
    used: set[int] = set()
    seen_table = False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("RX flow hash indirection table"):
            seen_table = True
            words = s.split()
            if "with" in words:
                rings = _num(words[words.index("with") + 1])
            continue
        if s.startswith("RSS hash"):
            break
        head, sep, rest = s.partition(":")
        if seen_table and sep and head.strip().isdigit():
            used.update(int(w) for w in rest.split() if w.isdigit())
    if not seen_table:
        return None, None
    return rings, sorted(used)


def parse_rx_flow_hash(text: str) -> list[str] | None:
    """`ethtool -n <if> rx-flow-hash udp4`: the field letters (s, d, f, n ...) as `ethtool -N` takes them."""
    if "Hash flow key" not in text and "hash flow key" not in text.lower():
        return None
    letters: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        for _, label, letter in RXH_FIELDS:
            if s == label or (label.startswith("L4") and s.startswith(label.split(" [")[0])):
                letters.append(letter)
    return letters


def parse_features(text: str) -> dict[str, bool]:
    """`ethtool -k`: 'name: on|off [fixed]' lines, for the features the GRO/GSO rule reads."""
    out: dict[str, bool] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        v = value.split()
        if sep and v and v[0] in ("on", "off"):
            out[LEGACY_NAMES.get(key.strip(), key.strip())] = v[0] == "on"
    return {k: out[k] for k in FEATURES_OF_INTEREST if k in out}


# -- live: the program, or the ioctl printed in the program's layout -----------------------------------------
def _run(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CaptureError(f"{' '.join(argv)}: {err}") from err
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        if "not supported" in msg.lower():
            return None  # the driver does not offer it: absent, not an error
        raise CaptureError(f"{' '.join(argv)}: {msg[:160]}")
    return proc.stdout


def _ioctl(ifname: str, buf: ctypes.Array[ctypes.c_char]) -> bool:
    """One SIOCETHTOOL call; False when the driver does not support the command."""
    ifreq = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(buf))
    ifreq += b"\0" * (40 - len(ifreq))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
        except OSError as err:
            if err.errno in (95, 22, 1, 19):  # EOPNOTSUPP, EINVAL, EPERM, ENODEV: not offered here
                return False
            raise CaptureError(f"ethtool ioctl on {ifname}: {err.strerror}") from err
    return True


def channels_text(ifname: str) -> str | None:
    if shutil.which("ethtool"):
        return _run(["ethtool", "-l", ifname])
    buf = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GCHANNELS), 36)
    if not _ioctl(ifname, buf):
        return None
    v = struct.unpack_from("8I", buf.raw, 4)

    def show(x: int) -> str:
        return str(x) if x else "n/a"

    names = ("RX", "TX", "Other", "Combined")
    return (
        f"Channel parameters for {ifname}:\nPre-set maximums:\n"
        + "".join(f"{n}:\t\t{show(x)}\n" for n, x in zip(names, v[:4], strict=True))
        + "Current hardware settings:\n"
        + "".join(f"{n}:\t\t{show(x)}\n" for n, x in zip(names, v[4:], strict=True))
    )


def indirection_text(ifname: str) -> str | None:
    if shutil.which("ethtool"):
        return _run(["ethtool", "-x", ifname])
    rings = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GRXRINGS), 256)
    if not _ioctl(ifname, rings):
        return None
    (n_rings,) = struct.unpack_from("Q", rings.raw, 8)
    head = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GRXFHINDIR, 0), 8)
    if not _ioctl(ifname, head):
        return None
    (size,) = struct.unpack_from("I", head.raw, 4)
    if size == 0:
        return f"RX flow hash indirection table for {ifname} with {n_rings} RX ring(s):\nOperation not supported\n"
    table = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GRXFHINDIR, size), 8 + 4 * size)
    if not _ioctl(ifname, table):
        return None
    idx = struct.unpack_from(f"{size}I", table.raw, 8)
    rows = "".join(f"{i:5}: " + " ".join(f"{q:5}" for q in idx[i : i + 8]) + "\n" for i in range(0, size, 8))
    return f"RX flow hash indirection table for {ifname} with {n_rings} RX ring(s):\n{rows}"


def udp4_hash_text(ifname: str) -> str | None:
    if shutil.which("ethtool"):
        return _run(["ethtool", "-n", ifname, "rx-flow-hash", "udp4"])
    buf = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GRXFH, UDP_V4_FLOW), 256)
    if not _ioctl(ifname, buf):
        return None
    (data,) = struct.unpack_from("Q", buf.raw, 8)
    lines = [label for bit, label, _ in RXH_FIELDS if data & bit]
    if not lines:
        return "UDP over IPV4 flows use these fields for computing Hash flow key:\nNone\n"
    return "UDP over IPV4 flows use these fields for computing Hash flow key:\n" + "".join(f"{x}\n" for x in lines)


def features_text(ifname: str) -> str | None:
    if shutil.which("ethtool"):
        return _run(["ethtool", "-k", ifname])
    info = ctypes.create_string_buffer(struct.pack("IIQ", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES), 20)
    if not _ioctl(ifname, info):
        return None
    (count,) = struct.unpack_from("I", info.raw, 16)
    names = ctypes.create_string_buffer(
        struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count), 12 + count * ETH_GSTRING_LEN
    )
    if not _ioctl(ifname, names):
        return None
    blocks = (count + 31) // 32
    feats = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GFEATURES, blocks), 8 + 16 * blocks)
    if not _ioctl(ifname, feats):
        return None
    raw = names.raw[12:]
    lines = [f"Features for {ifname}:"]
    for i in range(count):
        name = raw[i * ETH_GSTRING_LEN : (i + 1) * ETH_GSTRING_LEN].split(b"\0", 1)[0].decode(errors="replace")
        if not name:
            continue
        available, _req, active, _never = struct.unpack_from("4I", feats.raw, 8 + 16 * (i // 32))
        bit = 1 << (i % 32)
        fixed = "" if available & bit else " [fixed]"
        lines.append(f"{LEGACY_NAMES.get(name, name)}: {'on' if active & bit else 'off'}{fixed}")
    return "\n".join(lines) + "\n"
