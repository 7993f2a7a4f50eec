"""`iovkit monitor`: the live /proc sampler as a Prometheus exporter, with an optional live terminal view.

Each interval the sampler's rates update the gauges; the diagnosis runs over a rolling window of the last samples
(about 10 s), which is the exporter's own window: SINGLE-CORE-SWITCH holds only when the condition is sustained over
all of it, so one noisy interval neither raises nor clears it, and a window without packet load is "idle".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from iovkit.diagnose import procfs
from iovkit.diagnose.detect import DiagnoseReport, diagnose
from iovkit.diagnose.model import Recording, Series
from iovkit.diagnose.view import (
    L_BUSY,
    L_PROCESSED,
    L_SOFTIRQ,
    L_UDP_INERR,
    L_UDP_RCVBUF,
    L_UDP_SNDBUF,
    NIC_RX,
    NIC_TX,
)
from iovkit.errors import InputError
from iovkit.hostport import parse_hostport

WINDOW_SECONDS = 10.0
VERDICTS = ("bottleneck", "ok", "idle", "insufficient-data")


def parse_listen(value: str) -> tuple[str, int]:
    """`127.0.0.1:9464`, `[::1]:9464` or `:9464` (all addresses) -> (addr, port)."""
    return parse_hostport(value, "--listen", any_port=True, any_host="0.0.0.0")


@dataclass
class Metrics:
    registry: CollectorRegistry
    busy: Gauge
    softirq: Gauge
    cpu_pps: Gauge
    nic_pps: Gauge
    udp: Gauge
    single: Gauge
    single_core: Gauge
    verdict: Gauge
    busy_max: Gauge
    softirq_max: Gauge
    saturation: Gauge

    @classmethod
    def create(cls) -> Metrics:
        r = CollectorRegistry()
        return cls(
            registry=r,
            busy=Gauge(
                "iovkit_cpu_busy_percent", "CPU busy (not idle/iowait) over the last interval", ["cpu"], registry=r
            ),
            softirq=Gauge(
                "iovkit_cpu_softirq_percent", "CPU time in softirq over the last interval", ["cpu"], registry=r
            ),
            cpu_pps=Gauge(
                "iovkit_cpu_packets_per_second",
                "Packets processed by NET_RX on this CPU (softnet)",
                ["cpu"],
                registry=r,
            ),
            nic_pps=Gauge(
                "iovkit_nic_packets_per_second", "Packets per second per interface", ["nic", "direction"], registry=r
            ),
            udp=Gauge("iovkit_udp_errors_per_second", "UDP error counters from /proc/net/snmp", ["kind"], registry=r),
            single=Gauge(
                "iovkit_single_core_switch",
                "1 while SINGLE-CORE-SWITCH holds over the window, 0 when the verdict is ok, NaN when idle or "
                "insufficient-data (nothing to judge)",
                registry=r,
            ),
            single_core=Gauge(
                "iovkit_single_core_switch_cpu", "The hot CPU while SINGLE-CORE-SWITCH holds, else -1", registry=r
            ),
            busy_max=Gauge(
                "iovkit_cpu_busy_max_percent",
                "Highest per-interval CPU busy over the exporter's window (the peak beside the last value)",
                ["cpu"],
                registry=r,
            ),
            softirq_max=Gauge(
                "iovkit_cpu_softirq_max_percent",
                "Highest per-interval softirq share over the exporter's window",
                ["cpu"],
                registry=r,
            ),
            saturation=Gauge(
                "iovkit_saturation_packets_per_second",
                "Host packet rate (NET_RX) at which the hot CPU reaches 100% while SINGLE-CORE-SWITCH holds, 0 when "
                "ok, NaN when idle or insufficient-data",
                registry=r,
            ),
            verdict=Gauge(
                "iovkit_diagnose_verdict",
                "1 for the verdict over the exporter's window (bottleneck, ok, idle, insufficient-data), else 0",
                ["verdict"],
                registry=r,
            ),
        )

    def __post_init__(self) -> None:
        self.single_core.set(-1)

    def update(self, rec: Recording, report: DiagnoseReport) -> None:
        """Set every gauge from the newest sample and the window's report."""
        last = len(rec.timestamps) - 1
        if last < 0:
            return

        def at(vals: Series) -> float | None:
            v = vals[last] if last < len(vals) else None
            return None if v is None or math.isnan(v) else float(v)

        for gauge, ck in ((self.busy, L_BUSY), (self.softirq, L_SOFTIRQ), (self.cpu_pps, L_PROCESSED)):
            for cpu, vals in rec.series(ck).items():
                if (v := at(vals)) is not None:
                    gauge.labels(cpu=cpu).set(v)
        for direction, ck in (("rx", NIC_RX), ("tx", NIC_TX)):
            for nic, vals in rec.series(ck).items():
                if (v := at(vals)) is not None:
                    self.nic_pps.labels(nic=nic, direction=direction).set(v)
        for kind, ck in (("in_errors", L_UDP_INERR), ("rcvbuf_errors", L_UDP_RCVBUF), ("sndbuf_errors", L_UDP_SNDBUF)):
            uvals = rec.series(ck).get("")
            if uvals is not None and (v := at(uvals)) is not None:
                self.udp.labels(kind=kind).set(v)
        for core in report.cores:
            if core.busy_max is not None:
                self.busy_max.labels(cpu=core.name).set(core.busy_max)
            if core.net_max is not None:
                self.softirq_max.labels(cpu=core.name).set(core.net_max)
        hot = report.finding("SINGLE-CORE-SWITCH")
        if report.verdict in ("idle", "insufficient-data"):
            # unknown is not false: a window that cannot answer is NaN, not the 0 of a clear
            self.saturation.set(math.nan)
            self.single.set(math.nan)
        else:
            self.saturation.set(float((hot.evidence.get("saturation_pps") or 0.0) if hot else 0.0))
            self.single.set(1 if hot else 0)
        for name in VERDICTS:
            self.verdict.labels(verdict=name).set(1 if report.verdict == name else 0)
        self.single_core.set(int(hot.core) if hot and hot.core and hot.core.isdigit() else -1)


def run(
    addr: str,
    port: int,
    interval: float,
    duration: float | None = None,
    on_sample: Callable[[Recording, DiagnoseReport], None] | None = None,
    on_bound: Callable[[str, int], None] | None = None,
) -> int:
    """Serve metrics on addr:port, sampling every `interval` s until `duration` (None = until interrupted).

    `on_bound` hears the address actually bound (port 0 picks one), once the endpoint is up. An exporter's normal
    end is Ctrl-C or SIGTERM (systemd's stop; iovkit's CLI raises KeyboardInterrupt for it): the sampling ends
    there as it ends at `duration`. Returns the number of samples taken.
    """
    if not procfs.available():
        raise InputError("no live counters here (needs Linux /proc/stat and /proc/net/softnet_stat)")
    metrics = Metrics.create()
    try:
        server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    except OSError as e:
        raise InputError(f"cannot listen on {addr}:{port}: {e.strerror or e}", field="--listen") from None
    keep = max(2, round(WINDOW_SECONDS / interval))
    rec = Recording(source="procfs")
    n = 0
    end = None if duration is None else time.monotonic() + duration
    try:
        if on_bound is not None:  # inside the try: a signal right after the announcement still ends cleanly
            bound = server.server_address
            on_bound(str(bound[0]), int(bound[1]))
        prev = procfs.read_raw()
        while end is None or time.monotonic() < end:
            time.sleep(interval if end is None else max(0.0, min(interval, end - time.monotonic())))
            cur = procfs.read_raw()
            procfs.add_delta(rec, prev, cur, time.time())
            prev = cur
            _trim(rec, keep)
            report = diagnose(rec)
            metrics.update(rec, report)
            n += 1
            if on_sample is not None:
                on_sample(rec, report)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)
    return n


def _trim(rec: Recording, keep: int) -> None:
    """Keep the last `keep` samples (the live sampler builds list series)."""
    drop = len(rec.timestamps) - keep
    if drop > 0:
        assert isinstance(rec.timestamps, list)
        del rec.timestamps[:drop]
        for insts in rec.counters.values():
            for vals in insts.values():
                assert isinstance(vals, list)
                del vals[:drop]
