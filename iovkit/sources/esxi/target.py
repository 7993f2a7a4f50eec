"""A vCenter or ESXi host reached over the vSphere API (no pyVmomi import here: start-up stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VsphereTarget:
    """Where to connect. The password never travels through argv: it comes from IOVKIT_PASSWORD or a prompt."""

    host: str
    user: str
    port: int = 443
    insecure: bool = False  # certificate verification is on unless --insecure
    protocol: str = "https"
    esxi_host: str | None = field(default=None, compare=False)  # through vCenter: which ESXi host (name)

    @classmethod
    def parse(cls, spec: str, user: str, insecure: bool, esxi_host: str | None = None) -> VsphereTarget:
        """`vc.example.com`, `vc:8443`, or `http://127.0.0.1:8080` (tests: a local recorded-response server)."""
        proto = "https"
        rest = spec
        if "://" in spec:
            proto, rest = spec.split("://", 1)
        host, _, port = rest.rstrip("/").rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        if not host:
            host, port = rest, ""
        default = 443 if proto == "https" else 80
        return cls(
            host=host,
            user=user,
            port=int(port) if port.isdigit() else default,
            insecure=insecure,
            protocol=proto,
            esxi_host=esxi_host,
        )
