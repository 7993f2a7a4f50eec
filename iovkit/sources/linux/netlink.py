"""Live-only readers that need the kernel, not files: VF details over rtnetlink and ethtool statistics.

Both return text in a documented tool's output shape (`ip -j link show` JSON, `ethtool -S`), which is what an
archive saves, so a replayed capture parses with the same parser as a live one.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import socket
import struct
from typing import Any

from iovkit.sources.linux.parsers import format_ethtool_stats
from iovkit.sources.linux.reader import CaptureError

LINK_STATES = {0: "auto", 1: "enable", 2: "disable"}
_UNSET = 0xFFFFFFFF  # u32 -1: the driver does not report this VF setting (ip prints nothing)


def vf_entries(msg: Any) -> list[dict[str, Any]]:
    """IFLA_VFINFO_LIST of a decoded pyroute2 ifinfmsg -> `ip -j` style `vfinfo_list` entries."""
    vflist = msg.get_attr("IFLA_VFINFO_LIST")
    if vflist is None:
        return []
    out: list[dict[str, Any]] = []
    for info in vflist.get_attrs("IFLA_VF_INFO"):
        mac = info.get_attr("IFLA_VF_MAC")
        if mac is None:
            continue
        entry: dict[str, Any] = {"vf": int(mac["vf"]), "link_type": "ether", "address": mac["mac"]}
        vlan = info.get_attr("IFLA_VF_VLAN")
        if vlan is not None:
            entry["vlan_list"] = [{"vlan": int(vlan["vlan"]), "qos": int(vlan["qos"])}]
        spoof = info.get_attr("IFLA_VF_SPOOFCHK")
        if spoof is not None and spoof["spoofchk"] != _UNSET:
            entry["spoofchk"] = bool(spoof["spoofchk"])
        state = info.get_attr("IFLA_VF_LINK_STATE")
        if state is not None and state["link_state"] in LINK_STATES:
            entry["link_state"] = LINK_STATES[state["link_state"]]
        trust = info.get_attr("IFLA_VF_TRUST")
        if trust is not None and trust["trust"] != _UNSET:
            entry["trust"] = bool(trust["trust"])
        out.append(entry)
    return out


def vf_dump(ifnames: list[str]) -> str:
    """Ask the kernel for the VFs of these PFs (RTM_GETLINK with RTEXT_FILTER_VF); `ip -j link show` JSON."""
    try:
        from pyroute2 import IPRoute
    except ImportError as err:  # pragma: no cover - pyroute2 is a dependency
        raise CaptureError("pyroute2 is not installed") from err
    links: list[dict[str, Any]] = []
    try:
        with IPRoute() as ipr:
            for name in ifnames:
                idx = ipr.link_lookup(ifname=name)
                if not idx:
                    continue
                msgs = ipr.link("get", index=idx[0], ext_mask=1)  # RTEXT_FILTER_VF
                for msg in msgs:
                    links.append({"ifname": name, "vfinfo_list": vf_entries(msg)})
    except (OSError, ValueError) as err:
        raise CaptureError(f"netlink RTM_GETLINK failed: {err}") from err
    return json.dumps(links, indent=1)


# -- ethtool statistics through the SIOCETHTOOL ioctl (no ethtool binary needed) -------------------------
SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 0x00000003
ETHTOOL_GSTRINGS = 0x0000001B
ETHTOOL_GSTATS = 0x0000001D
ETH_SS_STATS = 1
ETH_GSTRING_LEN = 32
_DRVINFO_SIZE = 196  # struct ethtool_drvinfo
_N_STATS_OFFSET = 4 + 32 * 5 + 12 + 4  # cmd, driver..erom_version, reserved2, n_priv_flags


def _ioctl(sock: socket.socket, ifname: str, buf: ctypes.Array[ctypes.c_char]) -> None:
    ifreq = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(buf))
    ifreq += b"\0" * (40 - len(ifreq))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)


def ethtool_stats(ifname: str) -> dict[str, int]:
    """`ethtool -S` counters of one netdev via ioctl: GDRVINFO (count), GSTRINGS (names), GSTATS (values)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            drv = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GDRVINFO), _DRVINFO_SIZE)
            _ioctl(sock, ifname, drv)
            (n,) = struct.unpack_from("I", drv.raw, _N_STATS_OFFSET)
            if n == 0:
                return {}
            names = ctypes.create_string_buffer(
                struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_STATS, n), 12 + n * ETH_GSTRING_LEN
            )
            _ioctl(sock, ifname, names)
            values = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GSTATS, n), 8 + n * 8)
            _ioctl(sock, ifname, values)
        except OSError as err:
            raise CaptureError(f"ethtool statistics of {ifname}: {err.strerror or err}") from err
    raw_names = names.raw[12 : 12 + n * ETH_GSTRING_LEN]
    keys = [
        raw_names[i : i + ETH_GSTRING_LEN].split(b"\0", 1)[0].decode(errors="replace")
        for i in range(0, len(raw_names), ETH_GSTRING_LEN)
    ]
    vals = struct.unpack_from(f"{n}Q", values.raw, 8)
    return dict(zip(keys, vals, strict=True))


def ethtool_stats_text(ifname: str) -> str:
    return format_ethtool_stats(ethtool_stats(ifname))
