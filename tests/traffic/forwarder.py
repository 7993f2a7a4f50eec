"""A test reflector/forwarder that misbehaves on purpose: swaps, duplicates, or slows datagrams, and counts it.

Why: the load generator's reorder and duplicate counters must be shown exact, and a slow target must be shown to
move the knee. This runs in its own process (so it never shares the generator's interpreter lock) and reports
exactly how many swaps and duplicates it made.

- reflect mode (upstream None): each datagram goes back to its sender (a UDP echo);
- forward mode: datagrams from clients go to `upstream` from one socket per client, and replies go back to the
  client they belong to; the misbehaviour applies to the way back.
Swaps are made per client address (so they are reorderings within one flow): with `swap_every=N`, every N-th
datagram of a client is held and sent right after that client's next one; a held datagram is flushed unswapped
after `hold_ns`. `dup_every=M` sends every M-th datagram twice. `delay_us` busy-waits that long per datagram.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import select
import signal
import time
from dataclasses import dataclass
from typing import Any

from iovkit.traffic.mmsg import BatchSocket, open_udp

Address = tuple[Any, ...]


@dataclass
class ForwarderStats:
    received: int = 0
    sent: int = 0
    swapped: int = 0
    duplicated: int = 0
    flushed_unswapped: int = 0


class _Shaper:
    """Per-client swap/duplicate decisions; pure (no sockets, no clock of its own)."""

    def __init__(self, swap_every: int, dup_every: int, hold_ns: int) -> None:
        self.swap_every, self.dup_every, self.hold_ns = swap_every, dup_every, hold_ns
        self.count: dict[Address, int] = {}
        self.held: dict[Address, tuple[bytes, int]] = {}
        self.stats = ForwarderStats()

    def feed(self, data: bytes, client: Address, now_ns: int) -> list[bytes]:
        """The datagrams to send to `client` now, in order."""
        st = self.stats
        st.received += 1
        n = self.count.get(client, 0) + 1
        self.count[client] = n
        out: list[bytes] = []
        held = self.held.pop(client, None)
        if held is None and self.swap_every and n % self.swap_every == 0:
            self.held[client] = (data, now_ns)
            return out
        out.append(data)
        if self.dup_every and n % self.dup_every == 0:
            out.append(data)
            st.duplicated += 1
        if held is not None:
            out.append(held[0])
            st.swapped += 1
        return out

    def expired(self, now_ns: int) -> list[tuple[bytes, Address]]:
        """Held datagrams whose partner did not come in time: sent as they are (not a swap)."""
        out = []
        for client, (data, since) in list(self.held.items()):
            if now_ns - since >= self.hold_ns:
                del self.held[client]
                out.append((data, client))
                self.stats.flushed_unswapped += 1
        return out


def _serve(
    conn: Any,
    listen: tuple[str, int],
    upstream: tuple[str, int] | None,
    swap_every: int,
    dup_every: int,
    delay_us: float,
    hold_ms: float,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    front = open_udp(listen[0], listen[1], rcvbuf=4 << 20, sndbuf=4 << 20, blocking=False)
    fb = BatchSocket(front, batch=64)
    conn.send(front.getsockname()[:2])
    shaper = _Shaper(swap_every, dup_every, int(hold_ms * 1e6))
    backs: dict[Address, BatchSocket] = {}
    owner: dict[int, Address] = {}
    poller = select.epoll()
    poller.register(front.fileno(), select.EPOLLIN)
    poller.register(conn.fileno(), select.EPOLLIN)
    delay_ns = int(delay_us * 1000)

    def back_for(client: Address) -> BatchSocket:
        bs = backs.get(client)
        if bs is None:
            assert upstream is not None
            s = open_udp(listen[0], 0, rcvbuf=4 << 20, sndbuf=4 << 20, blocking=False)
            s.connect(upstream)
            bs = backs[client] = BatchSocket(s, batch=64)
            owner[s.fileno()] = client
            poller.register(s.fileno(), select.EPOLLIN)
        return bs

    def to_client(data: bytes, client: Address) -> None:
        if delay_ns:
            until = time.monotonic_ns() + delay_ns
            while time.monotonic_ns() < until:
                pass
        out = shaper.feed(data, client, time.monotonic_ns())
        if out:
            shaper.stats.sent += fb.send([(d, client) for d in out])

    try:
        while True:
            events = poller.poll(0.002)
            for fd, _ev in events:
                if fd == conn.fileno():
                    raise SystemExit
                if fd == front.fileno():
                    for data, client in fb.recv():
                        if upstream is None:
                            to_client(data, client)
                        else:
                            with contextlib.suppress(OSError):
                                back_for(client).send([(data, None)])
                else:
                    client = owner[fd]
                    with contextlib.suppress(OSError):
                        for data, _src in backs[client].recv():
                            to_client(data, client)
            for data, client in shaper.expired(time.monotonic_ns()):
                shaper.stats.sent += fb.send([(data, client)])
    except SystemExit:
        pass
    finally:
        conn.send(shaper.stats)
        conn.close()
        front.close()
        for bs in backs.values():
            bs.sock.close()


class Forwarder:
    """Handle of a running forwarder process: `.address`, `.stop() -> ForwarderStats`."""

    def __init__(self, proc: Any, conn: Any, address: tuple[str, int]) -> None:
        self.proc, self.conn, self.address = proc, conn, address

    def stop(self) -> ForwarderStats:
        try:
            self.conn.send("stop")
            stats: ForwarderStats = self.conn.recv() if self.conn.poll(5.0) else ForwarderStats()
        finally:
            self.proc.join(timeout=2.0)
            if self.proc.is_alive():
                self.proc.kill()
            self.conn.close()
        return stats

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.is_alive():
            self.stop()


def start_forwarder(
    listen: tuple[str, int] = ("127.0.0.1", 0),
    upstream: tuple[str, int] | None = None,
    *,
    swap_every: int = 0,
    dup_every: int = 0,
    delay_us: float = 0.0,
    hold_ms: float = 5.0,
) -> Forwarder:
    """Start the forwarder in its own process; returns once it listens."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_serve, args=(child, listen, upstream, swap_every, dup_every, delay_us, hold_ms), daemon=True
    )
    proc.start()
    child.close()
    if not parent.poll(5.0):
        proc.kill()
        raise RuntimeError("forwarder did not start")
    address = parent.recv()
    return Forwarder(proc, parent, (str(address[0]), int(address[1])))


__all__ = ["Forwarder", "ForwarderStats", "start_forwarder"]
