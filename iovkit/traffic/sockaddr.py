"""sockaddr bytes <-> address tuples, as the kernel writes them and as the socket module gives them (pure).

Why apart from the socket layer: the relay core keys its member table by the sockaddr bytes the kernel writes
into a receive ring (the C data path compares them), so a sans-IO core needs the same encoding without I/O.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

Address = tuple[Any, ...]
_FAM = struct.Struct("=H")
_V6 = struct.Struct("!HI")
_SCOPE = struct.Struct("=I")


def decode_sockaddr(raw: bytes) -> Address:
    """sockaddr_in/_in6 bytes as the kernel wrote them -> the address tuple socket.recvfrom would give."""
    fam = _FAM.unpack_from(raw)[0]
    if fam == socket.AF_INET:
        return (socket.inet_ntop(socket.AF_INET, raw[4:8]), (raw[2] << 8) | raw[3])
    if fam == socket.AF_INET6:
        port, flow = _V6.unpack_from(raw, 2)
        return (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, flow, _SCOPE.unpack_from(raw, 24)[0])
    return ("?", 0)


def encode_sockaddr(addr: Address, family: int) -> bytes:
    """An address tuple -> sockaddr bytes for `family` (an IPv4 address on an AF_INET6 socket becomes v4-mapped)."""
    host, port = str(addr[0]), int(addr[1])
    if family == socket.AF_INET:
        try:
            packed = socket.inet_pton(socket.AF_INET, host)
        except OSError:
            packed = socket.inet_pton(socket.AF_INET, str(socket.getaddrinfo(host, port, socket.AF_INET)[0][4][0]))
        return _FAM.pack(socket.AF_INET) + struct.pack("!H", port) + packed + bytes(8)
    flow = int(addr[2]) if len(addr) > 2 else 0
    scope = int(addr[3]) if len(addr) > 3 else 0
    try:
        packed = socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        try:
            packed = b"\0" * 10 + b"\xff\xff" + socket.inet_pton(socket.AF_INET, host)
        except OSError:
            info: tuple[Any, ...] = socket.getaddrinfo(host, port, socket.AF_INET6)[0][4]
            packed, scope = socket.inet_pton(socket.AF_INET6, str(info[0]).split("%")[0]), int(info[3])
    return _FAM.pack(socket.AF_INET6) + _V6.pack(port, flow) + packed + _SCOPE.pack(scope)


def family_of(addr: Address) -> int:
    """AF_INET6 for a 4-tuple (what an IPv6 socket gives, v4-mapped included), else AF_INET."""
    return socket.AF_INET6 if len(addr) == 4 else socket.AF_INET
