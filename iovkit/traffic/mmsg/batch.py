"""BatchSocket: recvmmsg/sendmmsg over one UDP socket through the ring in abi.py. See the package docstring."""

from __future__ import annotations

import ctypes
import errno
import select
import socket
from collections.abc import Sequence
from typing import Any

import numpy as np

from iovkit.traffic.mmsg.abi import (
    AGAIN,
    CMSG,
    CTRL_SLOT,
    GRO_CTRL_SLOT,
    HAVE_FASTPATH,
    HAVE_MMSG,
    HDR_SIZE,
    INT,
    MSG_DONTWAIT,
    MSG_TRUNC,
    MSG_WAITFORONE,
    NAME_SLOT,
    OFF_CTRLLEN,
    OFF_FLAGS,
    OFF_LEN,
    OFF_NAMELEN,
    SCM_TIMESTAMPNS,
    SO_TIMESTAMPNS,
    SOL_UDP,
    TIMESPEC,
    UDP_GRO,
    UIO_MAXIOV,
    Ring,
    fastpath_c,
    libc_recvmmsg,
    libc_sendmmsg,
    set_gro,
)
from iovkit.traffic.sockaddr import Address, decode_sockaddr, encode_sockaddr


class SinglesPolicy:
    """When to receive one datagram with the stdlib calls instead of a batch (BatchSocket.recv, Reflector.echo).

    After a receive that found at most one datagram, the next SINGLES receives use plain recvfrom/sendto: for one
    datagram the stdlib call costs about half of a ctypes recvmmsg, which is what ping-pong latency sees. Every
    SINGLES+1-th receive is batched again, so a queue that builds up is drained in batches; 256 keeps that slower
    probe out of the p99 of a ping-pong run. ...unless QUICK_RUN plain receives in a row each found a datagram
    already queued (a receive that does not wait found it): then a backlog stands, and the next receive is
    batched at once. One queued datagram proves little (a fast ping-pong client's next request can beat the server
    back into recvfrom); a run of them is a queue. Queued is decided by MSG_DONTWAIT, not by timing the call: a
    loaded machine slows a queued receive.
    """

    SINGLES = 256
    QUICK_RUN = 8
    _singles = 0  # plain receives left before the next batch
    _quick = 0  # plain receives in a row that found a datagram already queued

    def _batched(self, n: int) -> None:
        """A batched receive found n datagrams: at most one sends the next receives back to single ones."""
        if n <= 1:
            self._singles = self.SINGLES

    def _saw_queue(self, queued: bool) -> None:
        """Count plain receives in a row that found a datagram already queued; a run of QUICK_RUN ends singles."""
        if queued:
            self._quick += 1
            if self._quick >= self.QUICK_RUN:
                self._singles = self._quick = 0
        else:
            self._quick = 0


class BatchSocket(SinglesPolicy):
    """recvmmsg/sendmmsg over one UDP socket; see the module docstring for the contract."""

    _ADDR_CACHE_MAX = 65536

    def __init__(
        self,
        sock: socket.socket,
        batch: int = 64,
        bufsize: int = 2048,
        timestamps: bool = False,
        native: bool | None = None,
        fastpath: bool | None = None,
        gro: bool = False,
    ) -> None:
        if not 1 <= batch <= UIO_MAXIOV:
            raise ValueError(f"batch must be 1..{UIO_MAXIOV}, not {batch}")
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self.batch = batch
        self.bufsize = bufsize
        self.timestamps = timestamps
        self.native = HAVE_MMSG if native is None else (native and HAVE_MMSG)
        self.fastpath = HAVE_FASTPATH if fastpath is None else (fastpath and HAVE_FASTPATH)
        self.truncated = 0
        self.send_errors = 0
        self._tables: dict[int, bytes] = {}
        self._rx_names: dict[bytes, Address] = {}
        self._tx_names: dict[Address, bytes] = {}
        self._ring_np: Any = None
        if timestamps:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # GRO: the kernel may hand over several datagrams of one source in one buffer (their segment size in a
        # control message); receives split them again. Only with recvmmsg (the fallback cannot read the size).
        self.gro = bool(gro and self.native and set_gro(sock, True))
        self.ctrl_slot = GRO_CTRL_SLOT if self.gro else CTRL_SLOT if timestamps else 0
        if self.native:
            self._rx = Ring(batch, bufsize, self.ctrl_slot)
            self._tx = Ring(batch, bufsize, 0)
        self._poller = select.poll()
        self._poller.register(self.fd, select.POLLIN)
        self._out_poller = select.poll()
        self._out_poller.register(self.fd, select.POLLOUT)

    # -- helpers -------------------------------------------------------------------------------------------
    def _blocking_fd(self) -> bool:
        return self.sock.gettimeout() is None

    def wait_in(self, timeout: float) -> bool:
        return bool(self._poller.poll(max(0.0, timeout) * 1000.0))

    def _name(self, raw: bytes) -> Address:
        addr = self._rx_names.get(raw)
        if addr is None:
            if len(self._rx_names) >= self._ADDR_CACHE_MAX:
                self._rx_names.clear()
            addr = self._rx_names[raw] = decode_sockaddr(raw)
        return addr

    def _raw(self, addr: Address) -> bytes:
        raw = self._tx_names.get(addr)
        if raw is None:
            if len(self._tx_names) >= self._ADDR_CACHE_MAX:
                self._tx_names.clear()
            raw = self._tx_names[addr] = encode_sockaddr(addr, self.family)
        return raw

    def recv_flags(self, timeout: float | None) -> int | None:
        """recvmmsg flags for a receive under `timeout` (polled here first); None if nothing came in time."""
        if timeout is not None:
            return MSG_DONTWAIT if self.wait_in(timeout) else None
        return MSG_WAITFORONE if self._blocking_fd() else MSG_DONTWAIT

    def _recv_native(self, timeout: float | None) -> int:
        """recvmmsg into the rx ring; the count received (0 on EAGAIN/EINTR/SO_RCVTIMEO)."""
        flags = self.recv_flags(timeout)
        if flags is None:
            return 0
        n: int = libc_recvmmsg(self.fd, self._rx.at, self.batch, flags, None)
        if n < 0:
            e = ctypes.get_errno()
            if e in AGAIN:
                return 0
            if e == errno.ECONNREFUSED:
                raise ConnectionRefusedError(e, "connection refused (ICMP port unreachable)")
            raise OSError(e, f"recvmmsg: {errno.errorcode.get(e, e)}")
        return n

    def _collect(self, n: int, with_ts: bool) -> list[Any]:
        ring, u32, bs = self._rx, self._rx.u32, self.bufsize
        out: list[Any] = []
        data, names = ring.data_mv, ring.names_mv
        stride = HDR_SIZE // 4
        for i in range(n):
            b = i * stride
            if u32[b + OFF_FLAGS] & MSG_TRUNC:
                self.truncated += 1
                continue
            ln = u32[b + OFF_LEN]
            addr = self._name(bytes(names[i * NAME_SLOT : i * NAME_SLOT + u32[b + OFF_NAMELEN]]))
            seg, ts = self.control(i) if self.ctrl_slot else (0, 0)
            at = i * bs
            if seg and seg < ln:  # GRO: one buffer, several datagrams of one source
                for off in range(at, at + ln, seg):
                    end = min(off + seg, at + ln)
                    out.append((bytes(data[off:end]), addr, ts) if with_ts else (bytes(data[off:end]), addr))
                continue
            payload = bytes(data[at : at + ln])
            if with_ts:
                out.append((payload, addr, ts))
            else:
                out.append((payload, addr))
        ring.reset(n)
        return out

    def control(self, i: int) -> tuple[int, int]:
        """(GRO segment size or 0, kernel receive time ns or 0) from ring entry i's control messages."""
        ring, slot = self._rx, self.ctrl_slot
        size = ring.szt[(i * HDR_SIZE) // ctypes.sizeof(ctypes.c_size_t) + OFF_CTRLLEN]
        at, end = i * slot, i * slot + min(size, slot)
        seg = ts = 0
        while at + CMSG.size <= end:
            clen, level, kind = CMSG.unpack_from(ring.ctrl, at)
            if clen < CMSG.size:
                break
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and clen >= CMSG.size + 16:
                sec, nsec = TIMESPEC.unpack_from(ring.ctrl, at + CMSG.size)
                ts = int(sec * 1_000_000_000 + nsec)
            elif level == SOL_UDP and kind == UDP_GRO and clen >= CMSG.size + 4:
                seg = INT.unpack_from(ring.ctrl, at + CMSG.size)[0]
            at += (clen + 7) & ~7
        return seg, ts

    def raw_recv(self, timeout: float | None = None) -> int:
        """recvmmsg into the receive ring and leave the datagrams there (for a C path that reads the ring in place:
        `ring_at`, then release(n)); the count of ring entries filled. Native only."""
        return self._recv_native(timeout)

    @property
    def ring_at(self) -> int:
        return int(self._rx.at)

    def entry(self, i: int) -> tuple[memoryview, Address, int]:
        """Ring entry i after raw_recv: (its bytes, its source, GRO segment size or 0)."""
        u32, stride = self._rx.u32, HDR_SIZE // 4
        b = i * stride
        ln = u32[b + OFF_LEN]
        addr = self._name(bytes(self._rx.names_mv[i * NAME_SLOT : i * NAME_SLOT + u32[b + OFF_NAMELEN]]))
        seg = self.control(i)[0] if self.ctrl_slot else 0
        return self._rx.data_mv[i * self.bufsize : i * self.bufsize + ln], addr, seg

    def entry_len(self, i: int) -> int:
        """Bytes in ring entry i after raw_recv; -1 if the datagram was longer than the slot (truncated)."""
        b = i * (HDR_SIZE // 4)
        return -1 if self._rx.u32[b + OFF_FLAGS] & MSG_TRUNC else int(self._rx.u32[b + OFF_LEN])

    def recv_segments(self, timeout: float | None = None) -> tuple[int, Any, Any, Any] | None:
        """recvmmsg into the ring and describe every datagram in it as numpy int64 arrays, GRO buffers cut into
        their segments: (ring entries filled, offsets into `ring_data`, lengths, kernel receive time ns or 0);
        None if nothing came.
        Nothing per datagram runs in Python. The bytes stay valid until the next receive. Native only."""
        n = self._recv_native(timeout)
        if not n:
            return None
        return self.segments(n)

    def segments(self, n: int) -> tuple[int, Any, Any, Any]:
        """recv_segments for ring entries [0, n) already received with raw_recv (then released)."""
        ring, words = self._rx, HDR_SIZE // 4
        hdr = np.frombuffer(ring.hdr_ba, dtype=np.uint32).reshape(-1, words)[:n]
        lens = hdr[:, OFF_LEN].astype(np.int64)
        ok = (hdr[:, OFF_FLAGS] & MSG_TRUNC) == 0
        self.truncated += int(n - ok.sum())
        seg = np.zeros(n, dtype=np.int64)
        ts = np.zeros(n, dtype=np.int64)
        if self.ctrl_slot:
            ctrllen = np.frombuffer(ring.hdr_ba, dtype=np.uint64).reshape(-1, HDR_SIZE // 8)[:n, OFF_CTRLLEN]
            c = np.frombuffer(ring.ctrl, dtype=np.uint8).reshape(-1, self.ctrl_slot)[:n]
            rows = np.arange(n)[:, None]

            last = self.ctrl_slot - 8

            def field(at: Any, width: int, dtype: Any) -> Any:
                if not (at != at[0]).any():  # the usual case: one layout for the whole batch, a column slice
                    a = min(max(int(at[0]), 0), last)
                    return np.ascontiguousarray(c[:, a : a + width]).view(dtype).ravel()
                at = np.clip(at, 0, last)  # a stale length cannot index past the slot (ctrllen decides validity)
                return c[rows, at[:, None] + np.arange(width)].copy().view(dtype).ravel()

            # up to two control messages, in whichever order the kernel wrote them: UDP_GRO (24 bytes with
            # padding) and SO_TIMESTAMPNS (32)
            first = np.zeros(n, dtype=np.int64)
            clen0 = field(first, 8, np.int64)
            second = first + ((np.clip(clen0, 0, self.ctrl_slot) + 7) & ~7)
            for at in (first, second):
                inside = ctrllen >= at + 20
                level, kind = field(at + 8, 4, np.int32), field(at + 12, 4, np.int32)
                if self.gro:
                    is_gro = inside & (level == SOL_UDP) & (kind == UDP_GRO)
                    seg = np.where(is_gro, field(at + 16, 4, np.int32), seg).astype(np.int64)
                if self.timestamps:
                    is_ts = (ctrllen >= at + 32) & (level == socket.SOL_SOCKET) & (kind == SCM_TIMESTAMPNS)
                    stamp = field(at + 16, 8, np.int64) * 1_000_000_000 + field(at + 24, 8, np.int64)
                    ts = np.where(is_ts, stamp, ts)
        seg = np.where((seg > 0) & (seg < lens), seg, np.maximum(lens, 1))
        counts = np.where(ok & (lens > 0), (lens + seg - 1) // seg, 0)
        entry = np.repeat(np.arange(n), counts)
        k = np.arange(int(counts.sum())) - (np.cumsum(counts) - counts)[entry]
        step = seg[entry]
        offs = entry * self.bufsize + k * step
        sizes = np.minimum(step, lens[entry] - k * step)
        ring.reset(n)  # headers only: the data stays until the next receive
        return n, offs, sizes, ts[entry]

    @property
    def ring_data(self) -> Any:
        """The receive ring's bytes as a numpy uint8 array (for recv_segments' offsets)."""
        if self._ring_np is None:
            self._ring_np = np.frombuffer(self._rx.data, dtype=np.uint8)
        return self._ring_np

    def release(self, n: int) -> None:
        """Restore the first n ring entries after raw_recv (lengths the kernel overwrote)."""
        self._rx.reset(n)

    # -- receive -------------------------------------------------------------------------------------------
    def recv(self, timeout: float | None = None) -> list[tuple[bytes, Address]]:
        """Up to `batch` datagrams as (payload, address); [] when nothing arrived in time."""
        if self.native:
            if self._singles > 0 and self.plain_ok():
                self._singles -= 1
                one = self._recv_one(timeout)
                return [] if one is None else [one]
            n = self._recv_native(timeout)
            self._batched(n)
            return self._collect(n, False) if n else []
        return [(d, a) for d, a, _ in self._recv_fallback(timeout, False)]

    def recv_ts(self, timeout: float | None = None) -> list[tuple[bytes, Address, int]]:
        """Like recv, plus the kernel receive time (CLOCK_REALTIME ns; 0 if the kernel gave none)."""
        if not self.timestamps:
            raise ValueError("recv_ts needs BatchSocket(..., timestamps=True)")
        if self.native:
            n = self._recv_native(timeout)
            return self._collect(n, True) if n else []
        return self._recv_fallback(timeout, True)

    def plain_ok(self) -> bool:
        """The stdlib calls match recvmmsg semantics only when Python adds no timeout polling of its own."""
        t = self.sock.gettimeout()
        return (t is None or t == 0.0) and not self.timestamps

    def _recv_one(self, timeout: float | None) -> tuple[bytes, Address] | None:
        """One datagram with recvfrom; notes whether it was queued already (see QUICK_RUN)."""
        size = self.bufsize + 1
        try:
            data, addr = self.sock.recvfrom(size, MSG_DONTWAIT)
            queued = True
        except (BlockingIOError, InterruptedError):
            if timeout is not None and not self.wait_in(timeout):
                return None
            try:
                data, addr = self.sock.recvfrom(size, 0 if timeout is None else MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError, TimeoutError):
                return None
            queued = False
        self._saw_queue(queued)
        if len(data) > self.bufsize:
            self.truncated += 1
            return None
        return data, addr

    def _recv_fallback(self, timeout: float | None, with_ts: bool) -> list[tuple[bytes, Address, int]]:
        out: list[tuple[bytes, Address, int]] = []
        if timeout is not None and not self.wait_in(timeout):
            return out
        flags = 0 if (timeout is None and self._blocking_fd()) else int(MSG_DONTWAIT)
        ctrl = socket.CMSG_SPACE(16) if with_ts else 0
        while len(out) < self.batch:
            try:
                data, anc, mflags, addr = self.sock.recvmsg(self.bufsize, ctrl, flags)
            except (BlockingIOError, InterruptedError, TimeoutError):
                break
            flags = MSG_DONTWAIT
            if mflags & MSG_TRUNC:
                self.truncated += 1
                continue
            ts = 0
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(blob) >= 16:
                    sec, nsec = TIMESPEC.unpack_from(blob)
                    ts = sec * 1_000_000_000 + nsec
            out.append((data, addr, ts))
        return out

    # -- send ----------------------------------------------------------------------------------------------
    def send(self, items: Sequence[tuple[bytes, Address | None]], timeout: float | None = None) -> int:
        """Send every (payload, address) (address None on a connected socket); the count the kernel took."""
        if not self.native or len(items) == 1:
            return self._send_fallback(items, timeout)  # one datagram: sendto is cheaper than ctypes sendmmsg
        ring, bs, sent, i, n = self._tx, self.bufsize, 0, 0, len(items)
        u32, iov_len, data, names = ring.u32, ring.iov_len, ring.data, ring.names
        stride = HDR_SIZE // 4
        while i < n:
            k = 0
            while i + k < n and k < self.batch:
                payload, addr = items[i + k]
                ln = len(payload)
                if ln > bs:
                    break
                data[k * bs : k * bs + ln] = payload
                iov_len[k * 2 + 1] = ln
                if addr is None:
                    u32[k * stride + OFF_NAMELEN] = 0
                else:
                    raw = self._raw(addr)
                    names[k * NAME_SLOT : k * NAME_SLOT + len(raw)] = raw
                    u32[k * stride + OFF_NAMELEN] = len(raw)
                k += 1
            if k == 0:  # one datagram bigger than a slot: plain sendto keeps the order
                sent += self._send_fallback([items[i]], timeout)
                i += 1
                continue
            done, stop = self._sendmmsg(ring, k, timeout)
            sent += done
            i += k
            ring.reset(k)
            if stop:
                break
        return sent

    def _sendmmsg(self, ring: Ring, k: int, timeout: float | None) -> tuple[int, bool]:
        """sendmmsg entries [0, k) of `ring`, resuming after partial sends; (sent, stopped on EAGAIN)."""
        start, sent = 0, 0
        while start < k:
            r: int = libc_sendmmsg(self.fd, ring.at + start * HDR_SIZE, k - start, 0)
            if r >= 0:
                sent += r
                start += r
                continue
            e = ctypes.get_errno()
            if e == errno.EINTR:
                continue
            if e in (errno.EAGAIN, errno.EWOULDBLOCK):
                if timeout is not None and self._out_poller.poll(timeout * 1000.0):
                    continue
                return sent, True
            if e == errno.ECONNREFUSED:
                raise ConnectionRefusedError(e, "connection refused (ICMP port unreachable)")
            self.send_errors += 1  # this datagram is refused (EMSGSIZE, ENETUNREACH, EPERM...): skip it
            start += 1
        return sent, False

    def _send_fallback(self, items: Sequence[tuple[bytes, Address | None]], timeout: float | None) -> int:
        sent = 0
        for payload, addr in items:
            while True:
                try:
                    if addr is None:
                        self.sock.send(payload)
                    else:
                        self.sock.sendto(payload, addr)
                    sent += 1
                except (BlockingIOError, TimeoutError):
                    if timeout is not None and self._out_poller.poll(timeout * 1000.0):
                        continue
                    return sent
                except InterruptedError:
                    continue
                except ConnectionRefusedError:
                    raise
                except OSError:
                    self.send_errors += 1
                break
        return sent

    # -- echo (the reflector's batched step; its policy is in reflector.py) ----------------------------------
    def echo_batch(
        self, timeout: float | None = None, match: tuple[int, int, int] | None = None, fastpath: bool | None = None
    ) -> tuple[int, int, int]:
        """Receive a batch and send each datagram back to its sender with one recvmmsg and one sendmmsg (native
        only); (received, sent, bytes received). The reply rule `match` is the reflector's (reflector.py).
        Natively the received entries are compacted in place and handed to sendmmsg: no payload copy. With
        `fastpath` (this socket's setting by default), in C (the same steps, no Python per datagram)."""
        if self.fastpath if fastpath is None else fastpath and HAVE_FASTPATH:
            return self._echo_batch_c(timeout, match)
        n = self._recv_native(timeout)
        if not n:
            return 0, 0, 0
        ring = self._rx
        u32, iov_len, stride, data, bs = ring.u32, ring.iov_len, HDR_SIZE // 4, ring.data, self.bufsize
        end = n * stride
        total = sum(u32[OFF_LEN:end:stride])  # strided views: C loops, not per-entry bytecode
        mflags = u32[OFF_FLAGS:end:stride]
        trunc = any(mflags) and any(f & MSG_TRUNC for f in mflags)
        if trunc:
            self.truncated += sum(1 for f in mflags if f & MSG_TRUNC)
        keep: Any = range(n)
        if match is not None:
            idx, req, clr = match
            # One byte per entry, mapped to 1 where all `req` bits are set: a sockperf throughput batch (no pong
            # requests) costs no per-datagram Python at all.
            sel = data[idx : n * bs : bs].translate(self._match_table(req))
            keep = []
            i = sel.find(1)
            while i >= 0:
                keep.append(i)
                i = sel.find(1, i + 1)
        j = 0  # entries kept so far, compacted to the front
        for i in keep:
            b = i * stride
            if trunc and u32[b + OFF_FLAGS] & MSG_TRUNC:
                continue
            ln = u32[b + OFF_LEN]
            if match is not None:
                if ln <= idx:  # the byte came from an earlier, longer datagram in this slot
                    continue
                data[i * bs + idx] &= ~clr & 0xFF
            iov_len[i * 2 + 1] = ln
            if j != i:
                ring.hdr_ba[j * HDR_SIZE : (j + 1) * HDR_SIZE] = ring.hdr_ba[i * HDR_SIZE : (i + 1) * HDR_SIZE]
            j += 1
        if self.timestamps:
            for k in range(j):
                ring.szt[(k * HDR_SIZE) // ctypes.sizeof(ctypes.c_size_t) + OFF_CTRLLEN] = 0
        sent = self._sendmmsg(ring, j, None)[0] if j else 0
        ring.reset(n)
        return n, sent, total

    def _echo_batch_c(self, timeout: float | None, match: tuple[int, int, int] | None) -> tuple[int, int, int]:
        flags = self.recv_flags(timeout)
        if flags is None:
            return 0, 0, 0
        idx, req, clr = match if match is not None else (-1, 0, 0)
        n, sent, total, trunc, errs = fastpath_c.echo_batch(self.fd, self._rx.at, self.batch, flags, idx, req, clr)
        self.truncated += trunc
        self.send_errors += errs
        if n:
            self._rx.reset(n)
        return n, sent, total

    def _match_table(self, req: int) -> bytes:
        tbl = self._tables.get(req)
        if tbl is None:
            tbl = self._tables[req] = bytes(1 if b & req == req else 0 for b in range(256))
        return tbl
