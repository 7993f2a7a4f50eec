"""The reflector: UDP echo (`iovkit relay --mode echo`) and sockperf's server rule (`--mode sockperf`).

Why its own module: the reflector is a policy over the batched socket layer, not socket code. It answers one
datagram at a time while they come one by one (each reply waits for one wake-up, so the pass is kept short), and
whole batches while a queue stands (the per-call cost is then shared by up to `batch` datagrams). The batched step
is BatchSocket.echo_batch (mmsg); the one-datagram loop is here, in Python, and in C in _fastpath.c
(echo_plain), which must agree with it (tests/traffic/test_mmsg.py checks both on random datagrams).

The reply rule `match=(index, require, clear)`: only datagrams whose byte `index` has all the `require` bits go
back, with the `clear` bits cleared first; None answers every datagram unchanged. (9, 2, 1) is sockperf's server
rule (reply to pong requests only, as a server, i.e. client flag cleared; the sockperf client ignores its own flag).
"""

from __future__ import annotations

import time
from typing import Any

from iovkit.traffic.mmsg import HAVE_FASTPATH, BatchSocket
from iovkit.traffic.mmsg.abi import MSG_DONTWAIT, fastpath_c
from iovkit.traffic.mmsg.batch import SinglesPolicy
from iovkit.traffic.relaystats import INDEX
from iovkit.traffic.sockaddr import Address

Match = tuple[int, int, int] | None
# sockperf's wire header: seq u64 | flags u16 | len u32 (network order); flags byte 9: 1 = from client, 2 = pong
# request. Its server replies to pong requests only, with the client bit cleared; its client ignores replies that
# still carry the client bit, so a byte-for-byte echo never counts as a reply.
SOCKPERF_MATCH = (9, 2, 1)
_now_ns = time.perf_counter_ns


class Reflector(SinglesPolicy):
    """Echo over one BatchSocket: `echo()` picks one-by-one or batches (SinglesPolicy, as BatchSocket.recv does);
    `echo_plain()` is the one-by-one loop."""

    def __init__(self, bs: BatchSocket, fastpath: bool | None = None, gso: bool | None = None) -> None:
        self.bs = bs
        self.sock = bs.sock
        self.fd = bs.fd
        self.bufsize = bs.bufsize
        self.native = bs.native
        self.fastpath = bs.fastpath if fastpath is None else (fastpath and HAVE_FASTPATH)
        # GRO buffers (bs.gro) are answered with one GSO send per buffer: the C loops only (they read the segment
        # size); `gso` only records that choice.
        if bs.gro and not self.fastpath:
            raise ValueError("a GRO socket needs the C echo loops (iovkit.traffic._fastpath)")
        self.gso = bs.gro if gso is None else gso and bs.gro
        self._one_buf = bytearray(bs.bufsize + 1)  # bufsize + 1: a longer datagram shows up as truncated
        self._one_mv = memoryview(self._one_buf)

    @property
    def truncated(self) -> int:
        return self.bs.truncated

    @property
    def send_errors(self) -> int:
        return self.bs.send_errors

    def plain_ok(self) -> bool:
        return self.bs.plain_ok()

    def echo(self, timeout: float | None = None, match: Match = None) -> tuple[int, int, int]:
        """Receive and send back what came (one datagram or a batch); (received, sent, bytes received)."""
        if not self.native:
            got = self.bs.recv(timeout)
            back = got
            if match is not None:
                idx, req, clr = match
                back = [
                    (d[:idx] + bytes([d[idx] & ~clr & 0xFF]) + d[idx + 1 :], a)
                    for d, a in got
                    if len(d) > idx and d[idx] & req == req
                ]
            return len(got), self.bs.send(back), sum(len(d) for d, _ in got)
        if self._singles > 0 and self.plain_ok():
            self._singles -= 1
            return self._echo_one(timeout, match)
        return self.echo_batch(timeout, match)

    def echo_batch(self, timeout: float | None = None, match: Match = None) -> tuple[int, int, int]:
        """One batched step (BatchSocket.echo_batch); after a batch of at most one datagram, echo() goes back to
        single datagrams."""
        n, sent, nbytes = self.bs.echo_batch(timeout, match, fastpath=self.fastpath)
        self._batched(n)
        return n, sent, nbytes

    def echo_plain(self, match: Match, until_ns: int, spin_ns: int = 0) -> tuple[int, int, int, bool]:
        """Echo one datagram at a time with the stdlib calls until `until_ns` (perf_counter), a receive that times
        out, or a backlog; (received, sent, bytes received, backlog seen).

        Why a loop of its own: at ping-pong and game-tick rates every reply waits for one wake-up and one pass of
        Python, so the pass is kept to the system calls, a clock read and the reply rule (_answer_one). A run of
        QUICK_RUN datagrams that were each already queued (a receive that does not wait found it) is a backlog:
        the caller then drains in batches (echo_batch). With `spin_ns`, the socket is polled without sleeping for
        up to that long after each datagram before the next blocking receive (busy-poll: a CPU spent for lower
        latency; on a VM it also saves the halt and wake-up of the virtual CPU). With `fastpath` (the default
        where iovkit.traffic._fastpath was built), the same loop runs in C.
        """
        bs = self.bs
        if self.fastpath:
            idx, req, clr = match if match is not None else (-1, 0, 0)
            n_in, n_out, nbytes, backlog, trunc, errs = fastpath_c.echo_plain(
                self.fd, self._one_buf, self.bufsize, idx, req, clr, until_ns, spin_ns, self.QUICK_RUN, self.bs.gro
            )
            bs.truncated += trunc
            bs.send_errors += errs
            return n_in, n_out, nbytes, backlog
        recv_into, answer, clock = self.sock.recvfrom_into, self._answer_one, _now_ns
        buf, run = self._one_buf, self.QUICK_RUN
        n_in = n_out = nbytes = quick = 0
        while True:
            try:  # queued: found by a receive that does not wait (a fact, not a time)
                n, addr = recv_into(buf, 0, MSG_DONTWAIT)
                queued = True
            except (BlockingIOError, InterruptedError):
                queued, n = False, -1
                if spin_ns:
                    t0 = clock()
                    while True:  # busy-poll until a datagram comes or spin_ns have passed
                        try:
                            n, addr = recv_into(buf, 0, MSG_DONTWAIT)
                            break
                        except (BlockingIOError, InterruptedError):
                            if clock() - t0 > spin_ns:
                                break
                if n < 0:  # nothing came: sleep in the kernel until one does
                    try:
                        n, addr = recv_into(buf)
                    except (BlockingIOError, InterruptedError, TimeoutError):
                        return n_in, n_out, nbytes, False
            t1 = clock()
            n_in += 1
            nbytes += n
            quick = quick + 1 if queued else 0
            n_out += answer(n, addr, match)
            if quick >= run:
                return n_in, n_out, nbytes, True
            if t1 >= until_ns:
                return n_in, n_out, nbytes, False

    def _echo_one(self, timeout: float | None, match: Match) -> tuple[int, int, int]:
        """One datagram with the stdlib calls into a reused buffer (no allocation but the address tuple)."""
        try:
            n, addr = self.sock.recvfrom_into(self._one_buf, 0, MSG_DONTWAIT)
            queued = True
        except (BlockingIOError, InterruptedError):
            if timeout is not None and not self.bs.wait_in(timeout):
                return 0, 0, 0
            try:
                n, addr = self.sock.recvfrom_into(self._one_buf, 0, 0 if timeout is None else MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError, TimeoutError):
                return 0, 0, 0
            queued = False
        self._saw_queue(queued)
        return 1, self._answer_one(n, addr, match), n

    def _answer_one(self, n: int, addr: Address, match: Match) -> int:
        """Send the datagram of n bytes in the single-datagram buffer back to addr, under the `match` rule; 1 if
        it went out. Too long for the buffer (truncated) or not matching: counted or left, 0."""
        bs = self.bs
        if n > self.bufsize:
            bs.truncated += 1
            return 0
        buf = self._one_buf
        if match is not None:
            idx, req, clr = match
            if n <= idx or buf[idx] & req != req:
                return 0
            buf[idx] &= ~clr & 0xFF
        try:
            self.sock.sendto(self._one_mv[:n], addr)
        except (BlockingIOError, InterruptedError):
            return 0
        except ConnectionRefusedError:
            raise
        except OSError:
            bs.send_errors += 1
            return 0
        return 1


def echo_loop(
    refl: Reflector, row: Any, stop_flag: Any, stopping: Any, match: Match, spin_ns: int, every_s: float
) -> None:
    """Reflect until stopped, publishing the counters into the relay's shared stats `row` every `every_s`: one
    datagram at a time while they come one by one, whole batches while a queue stands."""
    pin = pout = bin_ = bout = 0
    i_pin, i_pout, i_bin, i_bout = INDEX["pkts_in"], INDEX["pkts_out"], INDEX["bytes_in"], INDEX["bytes_out"]
    i_fail, i_big = INDEX["drop_send_failed"], INDEX["drop_oversized"]
    clock, every = time.perf_counter_ns, int(every_s * 1e9)
    next_pub = clock() + every
    plain_ok = refl.plain_ok()
    batched = not plain_ok
    while True:
        if batched:
            n, sent, nbytes = refl.echo_batch(None, match) if refl.native else refl.echo(None, match)
            batched = n > 1 or not plain_ok
        else:
            n, sent, nbytes, batched = refl.echo_plain(match, next_pub, spin_ns)
        if n:
            pin += n
            pout += sent
            bin_ += nbytes
            bout += nbytes if sent == n else nbytes * sent // n
        now = clock()
        stop = stop_flag.value or (now >= next_pub and stopping())
        if now >= next_pub or stop:
            row[i_pin], row[i_pout], row[i_bin], row[i_bout] = pin, pout, bin_, bout
            row[i_fail], row[i_big] = refl.send_errors, refl.truncated
            next_pub = now + every
            if stop:
                return
