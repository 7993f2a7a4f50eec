"""CLI for `iovkit relay`: parse, start the relay workers, log one line per interval, print final stats."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from iovkit.cli.options import MEASURE, FormatTableJson, duration_opt, exit_codes
from iovkit.errors import InputError
from iovkit.hostport import parse_hostport

if TYPE_CHECKING:
    from iovkit.traffic.relay import RelayHandle

RelayMode = Literal["relay", "echo", "sockperf", "sink"]


def parse_listen(text: str, field: str) -> tuple[str, int]:
    """'127.0.0.1:7777', '[::1]:7777' or ':7777' (all addresses) -> (host, port); port 0: any free one."""
    return parse_hostport(text, field, any_port=True, any_host="0.0.0.0")


def parse_cpus(text: str | None) -> list[int] | None:
    """'0,2-3' -> [0, 2, 3]."""
    if not text:
        return None
    cpus: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise InputError(f"expected a CPU list like 0,2-3, got {text!r}", field="--pin") from None
    return cpus


def parse_size(text: str | None, field: str) -> int | None:
    """'4194304', '4M', '512k' -> bytes."""
    if not text:
        return None
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1].lower(), 1)
    digits = text[:-1] if mult != 1 else text
    if not digits.isdigit():
        raise InputError(f"expected a size in bytes (e.g. 4M), got {text!r}", field=field)
    return int(digits) * mult


def relay(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to listen on, e.g. 127.0.0.1:7777", metavar="<host:port>")
    ] = ("127.0.0.1:7777"),
    mode: Annotated[
        RelayMode,
        typer.Option(
            "--mode",
            help="relay (sessions, tokens), echo (every datagram back unchanged), sockperf (reply like "
            "`sockperf server`, for the sockperf client) or sink (count what arrives, answer nothing: the far end "
            "of `iovkit bench --mode send`)",
        ),
    ] = "relay",
    workers: Annotated[int, typer.Option("--workers", help="Worker processes sharing the port (SO_REUSEPORT)")] = 1,
    pin: Annotated[
        str | None, typer.Option("--pin", help="CPUs to pin workers to, e.g. 0,1 or 2-5", metavar="<cpus>")
    ] = None,
    rcvbuf: Annotated[
        str | None, typer.Option("--rcvbuf", help="Socket receive buffer per worker, e.g. 4M", metavar="<bytes>")
    ] = None,
    sndbuf: Annotated[
        str | None, typer.Option("--sndbuf", help="Socket send buffer per worker, e.g. 4M", metavar="<bytes>")
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Serve Prometheus metrics (/metrics) and the stats query of bench --target-stats (/stats) "
            "on HOST:PORT",
            metavar="<host:port>",
        ),
    ] = None,
    log_interval: Annotated[float, typer.Option("--log-interval", help="Seconds between log lines; 0: none")] = 10.0,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Relay key file (else IOVKIT_RELAY_KEY)")] = None,
    admission_key_file: Annotated[
        Path | None,
        typer.Option(
            "--admission-key-file",
            help="Allocation key file (else IOVKIT_RELAY_ADMISSION_KEY; none: any address-proven client may allocate)",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Datagrams per recvmmsg/sendmmsg")] = 256,
    busy_poll: Annotated[
        float,
        typer.Option(
            "--busy-poll",
            help="echo/sockperf: after each datagram, poll the socket without sleeping for this many "
            "microseconds before blocking again (lower latency for a CPU kept busy; on a VM it also saves the virtual "
            "CPU's halt and wake-up). 0: never",
        ),
    ] = 0.0,
    peer_idle: Annotated[float, typer.Option("--peer-idle", help="Seconds before an idle peer is dropped")] = 30.0,
    rate_limit: Annotated[
        float, typer.Option("--rate-limit", help="Datagrams per second allowed per source address")
    ] = 5000.0,
    gso: Annotated[
        bool,
        typer.Option(
            "--gso/--no-gso",
            help="UDP GRO on receive (several datagrams of one source per buffer) and GSO on send (relay forwards "
            "to one member, reflector replies) where the kernel and the C data paths have them; --no-gso to compare",
        ),
    ] = True,
    duration: Annotated[float, duration_opt("Stop after this many seconds; 0: run until SIGTERM/SIGINT")] = 0.0,
    fmt: FormatTableJson = "table",
) -> None:
    """Run a UDP relay (sessions of peers, HMAC join tokens) or a reflector (--mode echo|sockperf) to load a host.

    Keys come from files or the environment, never from the command line. Example:
    IOVKIT_RELAY_KEY=$(head -c 32 /dev/urandom | base64) iovkit relay --listen 0.0.0.0:7777 --workers 2
    """
    from iovkit.traffic.mmsg import HAVE_FASTPATH
    from iovkit.traffic.relay import RelaySettings, load_key, serve_metrics, start_relay
    from iovkit.traffic.relaystats import final_lines

    host, port = parse_listen(listen, "--listen")
    for value, name in ((duration, "--duration"), (log_interval, "--log-interval")):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"must be 0 (none) or a number of seconds above 0, not {value:g}", field=name)
    if mode != "relay":  # a reflector has no sessions: a key file given to it is a mistake, not to be ignored
        for path, name in ((key_file, "--key-file"), (admission_key_file, "--admission-key-file")):
            if path is not None:
                raise InputError("applies to --mode relay only", field=name)
    settings = RelaySettings(
        host=host,
        port=port,
        mode=mode,
        workers=workers,
        pin=parse_cpus(pin),
        rcvbuf=parse_size(rcvbuf, "--rcvbuf"),
        sndbuf=parse_size(sndbuf, "--sndbuf"),
        batch=batch,
        peer_idle=peer_idle,
        rate_pps=rate_limit,
        busy_poll_us=busy_poll,
        gso=gso,
        rate_burst=max(1.0, rate_limit / 10),
        key=load_key("IOVKIT_RELAY_KEY", key_file, "relay key") if mode == "relay" else None,
        admission_key=load_key("IOVKIT_RELAY_ADMISSION_KEY", admission_key_file, "admission key")
        if mode == "relay"
        else None,
    )
    metrics_at = parse_listen(metrics, "--metrics") if metrics else None
    done = [False]

    def on_signal(signum: int, frame: object) -> None:
        done[0] = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        handle = start_relay(settings)
        try:
            where = f"{handle.address[0]}:{handle.address[1]}"
            from iovkit.traffic.relayfast import HAVE_DATAPATH

            loop = (
                f", data path in {'C' if HAVE_DATAPATH else 'Python'}"
                if mode in ("relay", "sink")
                else f", reflector loops in {'C' if HAVE_FASTPATH else 'Python'}"
            )
            print(
                f"iovkit relay: {mode} on {where}, {workers} worker(s) (pids {handle.pids}){loop}",
                file=sys.stderr,
                flush=True,
            )
            if mode != "relay" and not ipaddress.ip_address(handle.address[0]).is_loopback:
                print(
                    "iovkit relay: warning: a reflector answers any source, spoofed or not; use it on loopback or "
                    "lab networks only",
                    file=sys.stderr,
                    flush=True,
                )
            if metrics_at:
                mh, mp = serve_metrics(handle, *metrics_at)
                print(f"iovkit relay: metrics on http://{mh}:{mp}/metrics", file=sys.stderr, flush=True)
            _wait(handle, done, log_interval, duration)
        finally:
            stats = handle.stop(timeout=1.0)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if fmt == "json":
        print(json.dumps(stats.to_dict(), indent=2))
    else:
        for line in final_lines(stats):
            print(line)
    sys.stdout.flush()


def _wait(handle: RelayHandle, done: list[bool], log_interval: float, duration: float) -> None:
    """Wait for a signal (it sets done[0]), the duration, or a worker's end; a log line every `log_interval` s.

    Why a wake-up pipe: the parent of a latency-sensitive relay should not wake 20 times a second for nothing.
    It sleeps in select() on the signal wake-up fd, which the interpreter writes whichever thread the signal hit
    (the metrics server runs in a thread), and looks at its workers once a second.
    """
    from iovkit.traffic.relaystats import log_line

    start = last = time.monotonic()
    before = None
    r = w = -1
    old_fd: int | None = None
    try:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        old_fd = signal.set_wakeup_fd(w)
    except ValueError:  # not the main thread (an embedding caller): short sleeps instead
        pass
    try:
        while not done[0] and handle.alive():
            now = time.monotonic()
            ends = [1.0 if old_fd is not None else 0.05]
            if duration > 0:
                ends.append(start + duration - now)
            if log_interval > 0:
                ends.append(last + log_interval - now)
            timeout = max(0.0, min(ends))
            if old_fd is not None:
                if select.select([r], [], [], timeout)[0]:
                    with contextlib.suppress(BlockingIOError):
                        os.read(r, 512)
            else:
                time.sleep(timeout)
            now = time.monotonic()
            if duration > 0 and now - start >= duration:
                break
            if log_interval > 0 and now - last >= log_interval:
                current = handle.stats()
                print(log_line(current, before, now - last), file=sys.stderr, flush=True)
                before, last = current, now
    finally:
        if old_fd is not None:
            signal.set_wakeup_fd(old_fd)
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)


def register(app: typer.Typer) -> None:
    """Add `relay` to the app."""
    app.command(
        "relay",
        rich_help_panel=MEASURE,
        epilog=exit_codes(ok="stopped by --duration, Ctrl-C or SIGTERM", extra={130: None}),
    )(relay)
