"""HOST:PORT as users type it (`10.0.0.4:7777`, `[::1]:7777`, `:9464`), parsed once for every option.

Why a module of its own at the bottom: the CLI (--listen, --metrics, --agent-listen) and the traffic package
(--target, --target-stats) read the same spelling, and traffic may import only the bottom row.
"""

from __future__ import annotations

from iovkit.errors import InputError


def parse_hostport(text: str, field: str, *, any_port: bool = False, any_host: str | None = None) -> tuple[str, int]:
    """'host:port' or '[IPv6]:port' -> (host, port); anything else is an InputError naming `field` and the value.

    `any_port`: port 0 (a free one) is allowed (listening addresses). `any_host`: what an empty host (':9464')
    means; without it a host is required (an address to send to).
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"expected HOST:PORT (or [IPv6]:PORT), got {text!r}", field=field)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            raise InputError(f"the IPv6 address between [ ] is missing in {text!r}", field=field)
    elif "[" in host or "]" in host:
        raise InputError(f"unbalanced [ ] around the IPv6 address in {text!r}", field=field)
    elif ":" in host:
        raise InputError(f"an IPv6 address needs brackets ([{host}]:{port}), got {text!r}", field=field)
    if not host:
        if any_host is None:
            raise InputError(f"the host is missing in {text!r} (expected HOST:PORT)", field=field)
        host = any_host
    p = int(port)
    low = 0 if any_port else 1
    if not low <= p <= 65535:
        raise InputError(f"port must be {low}..65535, got {p}", field=field)
    return host, p
