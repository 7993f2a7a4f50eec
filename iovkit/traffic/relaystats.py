"""Relay statistics: the shared per-worker counter layout, snapshots, the one-line log and Prometheus metrics.

Each worker process owns one row of a shared int64 array (single writer, no locks) and publishes its counters
there every ~100 ms and when it stops; the parent reads rows for the log line, the metrics endpoint and the
final stats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from iovkit.traffic.relaycore import COUNTERS, DROPS

GAUGES: tuple[str, ...] = ("sessions", "peers")
FIELDS: tuple[str, ...] = COUNTERS + tuple(f"drop_{d}" for d in DROPS) + GAUGES
INDEX: dict[str, int] = {name: i for i, name in enumerate(FIELDS)}
WIDTH = len(FIELDS)


@dataclass
class RelayStats:
    """Counters per worker and their total; drops keyed by reason (see relaycore.DROPS)."""

    workers: list[dict[str, int]] = field(default_factory=list)
    elapsed: float = 0.0
    host: dict[str, Any] | None = None  # pathwatch summary: this host's data path, steal and CPU

    @property
    def total(self) -> dict[str, int]:
        out = dict.fromkeys(FIELDS, 0)
        for w in self.workers:
            for k, v in w.items():
                out[k] += v
        return out

    def drops(self) -> dict[str, int]:
        t = self.total
        return {d: t[f"drop_{d}"] for d in DROPS if t[f"drop_{d}"]}

    def to_dict(self) -> dict[str, Any]:
        t = self.total
        return {
            "elapsed_s": round(self.elapsed, 3),
            "total": {k: t[k] for k in COUNTERS + GAUGES},
            "drops": self.drops(),
            "workers": [{k: w[k] for k in FIELDS if w[k]} for w in self.workers],
            **({"host": self.host} if self.host is not None else {}),
        }


def read_rows(array: Sequence[int], workers: int) -> list[dict[str, int]]:
    """Rows of the shared array as dicts (a copy: workers keep writing)."""
    rows = list(array[: workers * WIDTH])
    return [dict(zip(FIELDS, rows[w * WIDTH : (w + 1) * WIDTH], strict=True)) for w in range(workers)]


def log_line(now: RelayStats, before: RelayStats | None, interval: float) -> str:
    """One line: rates since the last line, totals, drops. Built for `grep`, not for humans only."""
    t = now.total
    b = before.total if before is not None else dict.fromkeys(FIELDS, 0)
    dt = max(interval, 1e-9)
    rate = {k: (t[k] - b[k]) / dt for k in ("pkts_in", "pkts_out", "bytes_in", "bytes_out")}
    drops = sum(t[f"drop_{d}"] for d in DROPS) - sum(b[f"drop_{d}"] for d in DROPS)
    per = " ".join(
        f"w{i}={(w['pkts_in'] - (before.workers[i]['pkts_in'] if before else 0)) / dt:.0f}"
        for i, w in enumerate(now.workers)
    )
    return (
        f"relay: in {rate['pkts_in']:.0f} pps {rate['bytes_in'] * 8 / 1e6:.2f} Mbit/s  "
        f"out {rate['pkts_out']:.0f} pps {rate['bytes_out'] * 8 / 1e6:.2f} Mbit/s  drops {drops / dt:.0f}/s  "
        f"sessions {t['sessions']} peers {t['peers']}  total in {t['pkts_in']} out {t['pkts_out']}  [{per}]"
        + _host_part(now.host)
    )


def _host_part(host: dict[str, Any] | None) -> str:
    """'  path vf:eth1 steal 0.0% cpu 41.2%' from the pathwatch summary, or ''."""
    latest = (host or {}).get("latest")
    if not latest:
        return ""
    return f"  path {latest['path']} steal {latest['steal_pct']}% cpu {latest['cpu_pct']}%"


def final_lines(stats: RelayStats) -> list[str]:
    """The final stats printed on shutdown: totals, drops by reason, then one line per worker."""
    t = stats.total
    lines = [
        f"relay stopped after {stats.elapsed:.1f} s: packets in {t['pkts_in']} out {t['pkts_out']}, "
        f"bytes in {t['bytes_in']} out {t['bytes_out']}, sessions {t['sessions']}, peers {t['peers']}"
    ]
    drops = stats.drops()
    lines.append("drops: " + (", ".join(f"{k} {v}" for k, v in drops.items()) if drops else "none"))
    for i, w in enumerate(stats.workers):
        wd = sum(w[f"drop_{d}"] for d in DROPS)
        lines.append(f"worker {i}: packets in {w['pkts_in']} out {w['pkts_out']}, drops {wd}, sessions {w['sessions']}")
    if stats.host is not None:
        seen = ", ".join(stats.host.get("paths_seen") or []) or "no traffic"
        lines.append(f"data path: {seen}; changes {stats.host.get('path_changes', 0)}")
    return lines


class MetricsCollector:
    """A prometheus_client collector reading the live stats (no per-packet work, read at scrape time)."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot  # () -> RelayStats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats: RelayStats = self._snapshot()
        names = {
            "pkts_in": ("packets_received", "Datagrams received"),
            "pkts_out": ("packets_sent", "Datagrams sent"),
            "bytes_in": ("bytes_received", "UDP payload bytes received"),
            "bytes_out": ("bytes_sent", "UDP payload bytes sent"),
        }
        for key, (name, doc) in names.items():
            fam = CounterMetricFamily(f"iovkit_relay_{name}", doc, labels=["worker"])
            for i, w in enumerate(stats.workers):
                fam.add_metric([str(i)], w[key])
            yield fam
        drops = CounterMetricFamily("iovkit_relay_dropped", "Datagrams dropped, by reason", labels=["worker", "reason"])
        events = CounterMetricFamily("iovkit_relay_events", "Handshake and table events", labels=["worker", "event"])
        for i, w in enumerate(stats.workers):
            for d in DROPS:
                drops.add_metric([str(i), d], w[f"drop_{d}"])
            for e in ("challenges", "allocations", "joins", "leaves", "expired_peers"):
                events.add_metric([str(i), e], w[e])
        yield drops
        yield events
        for g in GAUGES:
            fam_g = GaugeMetricFamily(f"iovkit_relay_{g}", f"Current {g}", labels=["worker"])
            for i, w in enumerate(stats.workers):
                fam_g.add_metric([str(i)], w[g])
            yield fam_g
        from iovkit.traffic.pathwatch import metric_families

        yield from metric_families(stats.host)
