"""GUEST-* rules on the guest's network stack and CPU: NUMA, socket buffers, UDP hashing, conntrack, GRO/GSO, steal.

Registered after guest_tuning's (queues and interrupts), whose helpers they share. Facts from guest.md §4.
"""

from __future__ import annotations

from collections.abc import Iterator

from iovkit.checks.catalog import Ev, Finding, Scope, current_rule, host_scope, not_applicable, rule, sh, unknown
from iovkit.checks.guest_tuning import _guest, _linux_guest, _on_hyperv, _relay, _targets
from iovkit.policy import Policy
from iovkit.snapshot import HostSnapshot

STEAL_WARN, STEAL_FAIL = 2.0, 10.0  # % of CPU time stolen by the hypervisor during the sample


@rule(
    "GUEST-NUMA",
    "The relay runs on the NIC's NUMA node",
    platform="guest",
    severity="low",
    rationale="Keep NIC queues and the receiving process on one memory domain (Cloudflare); Hyper-V sets the "
    "VF's node in the guest.",
    remediation="Shell: `numactl --cpunodebind=<node> --membind=<node> iovkit relay ...`.",
    impact="A relay on the far NUMA node pays cross-node memory traffic for every packet.",
)
def numa(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _linux_guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    if g.numa_nodes is None:
        yield unknown(rid, host_scope(snap), ["guest.numa_nodes"], collect="ls -d /sys/devices/system/node/node*")
        return
    if g.numa_nodes <= 1:
        yield Finding(
            rid, "pass", host_scope(snap), "one NUMA node: every CPU is local to the NIC", {"guest.numa_nodes": 1}
        )
        return
    for k, i in _targets(g):
        scope = Scope("guest-nic", i.name)
        ev: Ev = {f"guest.interfaces[{k}].numa_node": i.numa_node, f"guest.interfaces[{k}].local_cpus": i.local_cpus}
        if i.numa_node is None:
            yield unknown(
                rid,
                scope,
                [f"guest.interfaces[{k}].numa_node"],
                collect=f"cat /sys/class/net/{i.name}/device/numa_node",
            )
        else:
            yield Finding(
                rid,
                "warn",
                scope,
                f"{g.numa_nodes} NUMA nodes; {i.name} sits on node {i.numa_node} (CPUs {i.local_cpus or '?'}): "
                "pin the relay there",
                ev,
                fix=f"numactl --cpunodebind={i.numa_node} --membind={i.numa_node} iovkit relay ...",
            )


@rule(
    "GUEST-SOCKBUF",
    "Socket buffer limits allow the relay's receive buffer (net.core.rmem_max)",
    platform="guest",
    severity="medium",
    rationale="SO_RCVBUF is capped at net.core.rmem_max (Azure Linux 212992, Ubuntu 1048576); a capped buffer "
    "drops bursts as RcvbufErrors. A relay run as root forces its size (SO_RCVBUFFORCE).",
    remediation="Shell: `sudo sysctl -w net.core.rmem_max=<relay rcvbuf>` and a line in /etc/sysctl.d.",
    impact="The kernel caps the relay's receive buffer: bursts overflow it and datagrams are dropped.",
)
def sockbuf(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _linux_guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    want = _relay(policy).rcvbuf
    raw = g.sysctl.get("net.core.rmem_max")
    ev: Ev = {"guest.sysctl.net.core.rmem_max": raw, "policy.relay.rcvbuf": want}
    if raw is None or not raw.isdigit():
        yield unknown(rid, host_scope(snap), ["guest.sysctl.net.core.rmem_max"], collect="sysctl net.core.rmem_max")
    elif int(raw) >= want:
        yield Finding(rid, "pass", host_scope(snap), f"rmem_max {raw} >= the relay's {want}", ev)
    else:
        yield Finding(
            rid,
            "warn",
            host_scope(snap),
            f"rmem_max {raw} < the relay's receive buffer {want}: a relay not run as root gets {raw}",
            ev,
            fix=f"sudo sysctl -w net.core.rmem_max={want} net.core.wmem_max={want} && "
            f"printf 'net.core.rmem_max={want}\\nnet.core.wmem_max={want}\\n' | sudo tee /etc/sysctl.d/90-iovkit.conf",
        )


@rule(
    "GUEST-UDP-HASH",
    "UDP flows are hashed on ports (L4) so they spread over queues",
    platform="guest",
    severity="low",
    rationale="With L3-only hashing every flow between two hosts lands on one queue (Cloudflare: "
    "rx-flow-hash udp4 sdfn). On Azure, L3 (sd) is advised when UDP is fragmented.",
    remediation="Shell: `sudo ethtool -N <if> rx-flow-hash udp4 sdfn` (L3 `sd` on Azure when UDP is fragmented).",
    impact="UDP hashed on addresses only puts a relay's flows from one peer on one queue and one core.",
)
def udp_hash(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _linux_guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    for k, i in _targets(g):
        scope = Scope("guest-nic", i.name)
        ev: Ev = {
            f"guest.interfaces[{k}].udp4_hash_fields": i.udp4_hash_fields,
            f"guest.interfaces[{k}].channels": i.channels,
        }
        if i.channels is not None and i.channels <= 1:
            yield not_applicable(rid, scope, f"{i.name} has one queue: the hash picks nothing")
        elif i.udp4_hash_fields is None:
            yield unknown(
                rid,
                scope,
                [f"guest.interfaces[{k}].udp4_hash_fields"],
                collect=f"ethtool -n {sh(i.name)} rx-flow-hash udp4",
            )
        elif {"f", "n"} <= set(i.udp4_hash_fields):
            yield Finding(rid, "pass", scope, "UDP/IPv4 hashed on addresses and ports", ev)
        else:
            yield Finding(
                rid,
                "warn",
                scope,
                f"UDP/IPv4 hashed on {''.join(i.udp4_hash_fields) or 'nothing'}: flows between two hosts share a queue",
                ev,
                fix=f"sudo ethtool -N {sh(i.name)} rx-flow-hash udp4 sdfn",
            )


@rule(
    "GUEST-CONNTRACK",
    "conntrack does not track the relay's UDP port (NOTRACK)",
    platform="guest",
    severity="medium",
    rationale="conntrack alone can cap a core for UDP (4.8 vs 1.8 Mpps per core in the XDP paper); Cloudflare's "
    "recipe starts with NOTRACK for the port.",
    remediation="Shell: `iptables -t raw -I PREROUTING 1 -p udp --dport <port> -j NOTRACK`, OUTPUT --sport too.",
    impact="conntrack on the relay's port costs CPU per packet and can fill its table, dropping new flows.",
)
def conntrack(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _linux_guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    port = _relay(policy).port
    scope = host_scope(snap)
    ev: Ev = {
        "guest.conntrack_loaded": g.conntrack_loaded,
        "guest.notrack_rules": g.notrack_rules,
        "policy.relay.port": port,
    }
    if g.conntrack_loaded is False:
        yield Finding(rid, "pass", scope, "nf_conntrack is not loaded", ev)
    elif g.conntrack_loaded is None or g.notrack_rules is None:
        yield unknown(rid, scope, ["guest.notrack_rules"], collect="sudo iptables -t raw -S; sudo nft list ruleset")
    elif any(str(port) in r for r in g.notrack_rules):
        yield Finding(rid, "pass", scope, f"UDP port {port} is NOTRACK", ev)
    else:
        yield Finding(
            rid,
            "warn",
            scope,
            f"nf_conntrack is loaded and no NOTRACK rule names UDP port {port}: every relay flow is tracked",
            ev,
            fix=f"sudo iptables -t raw -I PREROUTING 1 -p udp --dport {port} -j NOTRACK && "
            f"sudo iptables -t raw -I OUTPUT 1 -p udp --sport {port} -j NOTRACK",
        )


@rule(
    "GUEST-GRO",
    "GRO and GSO are on, fraglist GRO off (ethtool -k)",
    platform="guest",
    severity="low",
    rationale="GRO/GSO batch packets through the stack; for UDP forwarding rx-gro-list should be off and "
    "rx-udp-gro-forwarding on (Tailscale's ethtool advice).",
    remediation="Shell: `sudo ethtool -K <if> gro on gso on rx-gro-list off`.",
    impact="Without GRO/GSO every datagram pays the full stack cost; fraglist GRO can break forwarded UDP.",
)
def gro(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _linux_guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    for k, i in _targets(g):
        scope = Scope("guest-nic", i.name)
        f = i.features
        ev: Ev = {f"guest.interfaces[{k}].features": f}
        if not f:
            yield unknown(rid, scope, [f"guest.interfaces[{k}].features"], collect=f"ethtool -k {sh(i.name)}")
            continue
        wrong = []
        if f.get("generic-receive-offload") is False:
            wrong.append(("GRO off", "gro on"))
        if f.get("generic-segmentation-offload") is False:
            wrong.append(("GSO off", "gso on"))
        if f.get("rx-gro-list") is True:
            wrong.append(("rx-gro-list on", "rx-gro-list off"))
        if wrong:
            yield Finding(
                rid,
                "warn",
                scope,
                ", ".join(w for w, _ in wrong),
                ev,
                fix=f"sudo ethtool -K {sh(i.name)} {' '.join(c for _, c in wrong)}",
            )
        else:
            yield Finding(rid, "pass", scope, "GRO and GSO on, rx-gro-list off", ev)


@rule(
    "GUEST-STEAL",
    "The hypervisor steals little CPU time from this guest",
    platform="guest",
    severity="high",
    rationale="Steal time (the 8th /proc/stat field) is CPU the host gave to someone else; runs on burstable "
    "or oversubscribed VMs are not comparable and cap the packet rate.",
    remediation="Design: a non-burstable size or a dedicated host; re-run benchmarks when steal is low.",
    impact="CPU the hypervisor steals shows up as latency and loss no guest tuning can fix.",
)
def steal(snap: HostSnapshot, policy: Policy | None) -> Iterator[Finding]:
    rid = current_rule()
    g = _guest(snap, rid)
    if isinstance(g, Finding):
        yield g
        return
    scope = host_scope(snap)
    ev: Ev = {"guest.steal_percent": g.steal_percent, "guest.sample_seconds": g.sample_seconds}
    if g.steal_percent is None:
        cmd = (
            "grep '^cpu ' /proc/stat; sleep 1; grep '^cpu ' /proc/stat"
            if g.os == "linux"
            else ("Get-Counter '\\Hyper-V Hypervisor Virtual Processor(*)\\CPU Wait Time Per Dispatch'")
        )
        yield unknown(rid, scope, ["guest.steal_percent"], "steal time not sampled", collect=cmd)
    elif g.steal_percent == 0 and _on_hyperv(snap, g):
        yield unknown(
            rid,
            scope,
            ["guest.steal_percent"],
            "0% steal on Hyper-V/Azure, where Linux guests' steal reporting is not documented: 0 may mean not reported",
            collect="Azure Monitor 'CPU Credits Remaining' (B-series); on the host: Get-Counter "
            "'\\Hyper-V Hypervisor Virtual Processor(*)\\CPU Wait Time Per Dispatch'",
        )
    elif g.steal_percent >= STEAL_FAIL:
        yield Finding(
            rid,
            "fail",
            scope,
            f"{g.steal_percent:g}% steal during the sample: the host is oversubscribed or the VM out of CPU credits",
            ev,
            fix="Move to a non-burstable size or a dedicated host; on Azure B-series check the metric "
            "'CPU Credits Remaining'",
        )
    elif g.steal_percent >= STEAL_WARN:
        yield Finding(
            rid,
            "warn",
            scope,
            f"{g.steal_percent:g}% steal during the sample",
            ev,
            fix="Re-run at a quiet time; a before/after pair with steal is not comparable (iovkit bench marks it)",
        )
    else:
        yield Finding(rid, "pass", scope, f"{g.steal_percent:g}% steal during the sample", ev)
