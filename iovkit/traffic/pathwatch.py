"""Which interface carries this host's traffic now (VF or synthetic), its steal time and CPU: sampled each second.

Why inside the relay: a before/after run must not measure the wrong path. Azure and Hyper-V hot-remove the VF during
host servicing and traffic silently falls back to the synthetic adapter; steal time distorts runs on shared VMs.
The relay samples its own host and serves the samples (`/stats?since=SEQ` beside `/metrics`), so the load
generator can ask, after each step, which path carried that step and how much CPU the hypervisor stole.

Reads only /proc and sysfs (the traffic package stands alone). Counters come from /proc/thread-self/net/dev, which
is the sampling thread's network namespace; sysfs only says what kind of device an interface is. On hv_netvsc the
synthetic interface's totals include its VF's (netvsc_get_stats64), so its own share is its total minus its VF's.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

PROC_NET_DEV = ("/proc/thread-self/net/dev", "/proc/net/dev")
SYS_NET = "/sys/class/net"
MIN_PPS = 50.0  # below this the busiest interface is background chatter: the sample says "idle"
HISTORY = 900
SYNTHETIC = {"hv_netvsc"}
PARAVIRTUAL = {"virtio_net", "vmxnet3", "xen-netfront"}
EMULATED = {"e1000", "e1000e", "8139cp", "8139too", "pcnet32", "ne2k-pci"}
VF_DRIVERS = {"igbvf", "ixgbevf", "iavf", "i40evf", "mana"}
VF_IDS = {"15b3:1002", "15b3:1004", "15b3:1012", "15b3:1014", "15b3:1016", "15b3:1018", "15b3:101a", "15b3:101c",
          "15b3:101e", "15b3:a2d3", "1414:00ba"}  # fmt: skip  # guest.md §2.1: mlx4/mlx5/MANA VF device ids


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def net_dev(text: str) -> dict[str, tuple[int, int]]:
    """/proc/net/dev: interface -> (rx packets, tx packets)."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        f = rest.split()
        if sep and len(f) >= 10:
            out[name.strip()] = (int(f[1]), int(f[9]))
    return out


def cpu_jiffies(text: str) -> tuple[int, int, int] | None:
    """/proc/stat's `cpu` line: (total, busy, steal) jiffies; steal is the 8th field, idle+iowait are not busy."""
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "cpu" and len(f) >= 9:
            v = [int(x) for x in f[1:9]]
            total = sum(v)
            return total, total - v[3] - v[4], v[7]
    return None


def read_cpu() -> tuple[int, int, int] | None:
    text = _read("/proc/stat")
    return cpu_jiffies(text) if text else None


def percent(a: tuple[int, int, int] | None, b: tuple[int, int, int] | None) -> tuple[float | None, float | None]:
    """(busy %, steal %) between two cpu_jiffies reads."""
    if a is None or b is None or b[0] <= a[0]:
        return None, None
    dt = b[0] - a[0]
    return round(100.0 * (b[1] - a[1]) / dt, 2), round(100.0 * (b[2] - a[2]) / dt, 2)


def kind_of(name: str, sys_net: str = SYS_NET) -> str:
    """vf, synthetic, paravirtual, emulated, physical or virtual (no device: veth, tun, bridge port...)."""
    base = f"{sys_net}/{name}/device"
    driver = os.path.basename(os.readlink(f"{base}/driver")) if os.path.islink(f"{base}/driver") else None
    if driver is None:
        return "virtual"
    vendor, device = (_read(f"{base}/vendor") or "").strip(), (_read(f"{base}/device") or "").strip()
    pci = f"{vendor.removeprefix('0x')}:{device.removeprefix('0x')}".lower()
    if driver in SYNTHETIC:
        return "synthetic"
    if driver in VF_DRIVERS or pci in VF_IDS:
        return "vf"
    if driver in PARAVIRTUAL:
        return "paravirtual"
    if driver in EMULATED:
        return "emulated"
    return "physical"


def lowers(name: str, sys_net: str = SYS_NET) -> list[str]:
    try:
        return [e[6:] for e in os.listdir(f"{sys_net}/{name}") if e.startswith("lower_")]
    except OSError:
        return []


class PathWatcher:
    """Samples every `interval` seconds in a daemon thread; keeps the last HISTORY samples, numbered by seq."""

    def __init__(
        self,
        interval: float = 1.0,
        min_pps: float = MIN_PPS,
        sys_net: str = SYS_NET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.min_pps = min_pps
        self.sys_net = sys_net
        self.samples: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.seq = 0
        self.changes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prev: tuple[float, dict[str, tuple[int, int]], tuple[int, int, int] | None] | None = None
        self._kinds: dict[str, str] = {}

    def _counters(self) -> dict[str, tuple[int, int]]:
        for path in PROC_NET_DEV:
            text = _read(path)
            if text is not None:
                return net_dev(text)
        return {}

    def sample(self) -> dict[str, Any] | None:
        """Take one reading; from the second reading on, record and return a sample of the interval."""
        now, counters, cpu = self.clock(), self._counters(), read_cpu()
        prev, self._prev = self._prev, (now, counters, cpu)
        if prev is None:
            return None
        dt = max(now - prev[0], 1e-6)
        pps: dict[str, dict[str, float]] = {}
        kinds: dict[str, str] = {}
        for name, (rx, tx) in counters.items():
            if name == "lo" or name not in prev[1]:
                continue
            if name not in self._kinds:  # a device's kind does not change; a re-added VF comes back as a VF
                there = os.path.exists(f"{self.sys_net}/{name}")
                self._kinds[name] = kind_of(name, self.sys_net) if there else "virtual"
            kinds[name] = self._kinds[name]
            pps[name] = {"rx": (rx - prev[1][name][0]) / dt, "tx": (tx - prev[1][name][1]) / dt}
        for name, k in kinds.items():  # a master's totals repeat its legs': netvsc keeps its own share only
            legs = [x for x in lowers(name, self.sys_net) if x in pps]
            if legs and k == "synthetic":
                for d in ("rx", "tx"):
                    pps[name][d] = max(0.0, pps[name][d] - sum(pps[x][d] for x in legs))
            elif legs:
                pps.pop(name)
        busiest = max(pps, key=lambda n: pps[n]["rx"] + pps[n]["tx"], default=None)
        busy_pct, steal_pct = percent(prev[2], cpu)
        active = busiest is not None and pps[busiest]["rx"] + pps[busiest]["tx"] >= self.min_pps
        s = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "interval_s": round(dt, 3),
            "path": f"{kinds[busiest]}:{busiest}" if active and busiest else "idle",
            "pps": {n: {d: round(v, 1) for d, v in x.items()} for n, x in pps.items() if x["rx"] + x["tx"] > 0},
            "steal_pct": steal_pct,
            "cpu_pct": busy_pct,
        }
        with self._lock:
            last = next((x["path"] for x in reversed(self.samples) if x["path"] != "idle"), None)
            if last is not None and s["path"] not in ("idle", last):
                self.changes += 1
            self.seq += 1
            s["seq"] = self.seq
            self.samples.append(s)
        return s

    def _run(self) -> None:
        self.sample()
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, ValueError):
                self.sample()

    def start(self) -> PathWatcher:
        self._thread = threading.Thread(target=self._run, name="iovkit-pathwatch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def since(self, seq: int) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.samples if s["seq"] > seq]

    def summary(self) -> dict[str, Any]:
        """What the relay's stats carry: the latest sample, how many there are, path changes and paths seen."""
        with self._lock:
            latest = self.samples[-1] if self.samples else None
            seen = list(dict.fromkeys(s["path"] for s in self.samples if s["path"] != "idle"))
            return {"seq": self.seq, "latest": latest, "path_changes": self.changes, "paths_seen": seen}


# -- what a step saw ---------------------------------------------------------------------------------------------
def window(samples: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A step's samples folded: the paths that carried traffic, the path changes, the worst steal and CPU."""
    rows = list(samples)
    paths = [s["path"] for s in rows if s.get("path") not in (None, "idle")]
    steal = [s["steal_pct"] for s in rows if s.get("steal_pct") is not None]
    cpu = [s["cpu_pct"] for s in rows if s.get("cpu_pct") is not None]
    changes = sum(1 for a, b in itertools.pairwise(paths) if a != b)
    return {
        "samples": len(rows),
        "paths": list(dict.fromkeys(paths)),
        "path_changes": changes,
        "steal_pct_max": max(steal) if steal else None,
        "cpu_pct_max": max(cpu) if cpu else None,
    }


def fetch(address: tuple[str, int], since: int = 0, timeout: float = 3.0) -> dict[str, Any]:
    """GET http://HOST:PORT/stats?since=SEQ from a relay's metrics server (the load generator's stats query)."""
    import urllib.request

    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    with urllib.request.urlopen(f"http://{host}:{address[1]}/stats?since={since}", timeout=timeout) as resp:
        data: dict[str, Any] = json.loads(resp.read().decode())
    return data


# -- serving: /metrics from prometheus_client, /stats as JSON ---------------------------------------------------
def with_stats(app: Callable[..., Any], body: Callable[[int], dict[str, Any]]) -> Callable[..., Iterator[bytes]]:
    """Wrap a WSGI app: `/stats?since=SEQ` answers `body(since)` as JSON, every other path goes to `app`."""
    from urllib.parse import parse_qs

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        if environ.get("PATH_INFO") == "/stats":
            raw = parse_qs(environ.get("QUERY_STRING", "")).get("since", ["0"])[0]
            data = json.dumps(body(int(raw) if raw.isdigit() else 0)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return iter([data])
        return iter(app(environ, start_response))

    return wsgi


def serve(app: Callable[..., Any], host: str, port: int) -> tuple[str, int]:
    """A threading WSGI server in a daemon thread (no request log); the bound address."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="iovkit-metrics", daemon=True).start()
    bound = server.server_address
    return str(bound[0]), int(bound[1])


def metric_families(host: dict[str, Any] | None) -> Iterator[Any]:
    """Prometheus families for the relay's /metrics: the path, per-interface packet rates, steal and CPU."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    if not host:
        return
    latest = host.get("latest") or {}
    path = GaugeMetricFamily(
        "iovkit_relay_host_path",
        "1 for the interface that carried most packets last second",
        labels=["kind", "interface"],
    )
    if latest.get("path", "idle") != "idle":
        kind, _, name = latest["path"].partition(":")
        path.add_metric([kind, name], 1)
    yield path
    rate = GaugeMetricFamily("iovkit_relay_host_interface_pps", "Packets/s per interface", labels=["interface", "dir"])
    for name, d in (latest.get("pps") or {}).items():
        for direction, v in d.items():
            rate.add_metric([name, direction], v)
    yield rate
    for key, doc in (("steal_pct", "Steal time % last second"), ("cpu_pct", "Busy CPU % last second")):
        fam = GaugeMetricFamily(f"iovkit_relay_host_{key.replace('_pct', '_percent')}", doc)
        if latest.get(key) is not None:
            fam.add_metric([], latest[key])
        yield fam
    changes = CounterMetricFamily("iovkit_relay_host_path_changes", "Times the busiest interface changed")
    changes.add_metric([], host.get("path_changes", 0))
    yield changes


# -- the bench's guard ---------------------------------------------------------------------------------------------
Query = Callable[[int], dict[str, Any]]


def target_query(address: tuple[str, int]) -> Query:
    """The stats query of a relay's metrics server, as a function of the last sequence number seen."""
    return lambda since: fetch(address, since)


def target_seq(query: Query | None) -> int:
    """The target's newest sample number (0 when it cannot be asked): a step's samples are those after it."""
    if query is None:
        return 0
    try:
        return int((query(1 << 62).get("host") or {}).get("seq", 0))
    except (OSError, ValueError):
        return 0


def guard_step(
    step: Any,
    cpu_before: tuple[int, int, int] | None,
    cpu_after: tuple[int, int, int] | None,
    query: Query | None,
    since: int,
    max_steal_pct: float,
) -> None:
    """Fill a StepResult's steal_pct / target_path / invalid_because.

    Every step gets the generator host's steal time; with a target relay's stats query it also gets the target's
    paths, steal and CPU. A step is invalid when the busiest path changed during it or steal passed the limit.
    """
    _busy, step.steal_pct = percent(cpu_before, cpu_after)
    reasons: list[str] = []
    if query is not None:
        try:
            data = query(since)
        except (OSError, ValueError) as err:
            step.target_path = {"error": f"stats query failed: {err}"}
        else:
            w = window((data.get("host") or {}).get("samples", []))
            step.target_path = w
            if w["path_changes"]:
                reasons.append(f"the target's data path changed during the step ({' -> '.join(w['paths'])})")
            if w["steal_pct_max"] is not None and w["steal_pct_max"] > max_steal_pct:
                reasons.append(f"target steal {w['steal_pct_max']:g}% > {max_steal_pct:g}%")
    if step.steal_pct is not None and step.steal_pct > max_steal_pct:
        reasons.append(f"generator steal {step.steal_pct:g}% > {max_steal_pct:g}%")
    step.invalid_because = "; ".join(reasons) or None
