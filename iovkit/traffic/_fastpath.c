/*
 * iovkit.traffic._fastpath: the echo loops of Reflector.echo_plain and BatchSocket.echo_batch, in C.
 *
 * Why C: at ping-pong and game-tick rates every reply waits for one wake-up of the server, and each wake-up of
 * the Python loop adds interpreter work: 1.6-2.8 us of the median half round trip on the test VM, 7-11 % of it
 * (bench/RESULTS.md), which left the reflector just outside 1.1x of sockperf's server. This loop does the same
 * work with two system calls and two clock reads per datagram, holding no GIL, and returns to Python at the same
 * points the Python loop would (a deadline, a receive that timed out or was interrupted, a backlog).
 * echo_batch does in C what mmsg/batch.py does with ctypes for a queue that stands: one recvmmsg, the reply rule over
 * the batch, and one sendmmsg over the same entries, so a full queue costs no Python per datagram either.
 * reflector.py and mmsg/batch.py keep the pure-Python loops as the reference and the fallback where this module was not built.
 *
 * echo_plain(fd, buf, limit, match_idx, match_req, match_clr, until_ns, spin_ns, quick_run)
 *   -> (received, sent, bytes_received, backlog, truncated, send_errors)
 * buf: a writable buffer of limit + 1 bytes or more (a datagram of more than limit bytes is truncated: counted,
 * not answered). match_idx < 0: answer every datagram; else only those whose byte match_idx has all match_req
 * bits, with the match_clr bits cleared first (sockperf's server rule is 9, 2, 1). until_ns is on the
 * CLOCK_MONOTONIC scale (time.perf_counter_ns() on Linux). OSError (ConnectionRefusedError included) as the
 * socket module would raise it; a signal's Python handler runs before the call returns.
 *
 * echo_batch(fd, hdrs, batch, flags, match_idx, match_req, match_clr)
 *   -> (received, sent, bytes_received, truncated, send_errors)
 * hdrs: the address of mmsghdr[batch] set up by mmsg._Ring (one iovec and one name slot each). The received
 * entries to answer are compacted to the front in place (their iov_len set to the datagram's length, no control
 * data) and sent with sendmmsg, resuming after partial sends; the caller restores the ring afterwards (reset).
 * flags: recvmmsg flags (MSG_WAITFORONE or MSG_DONTWAIT). EAGAIN or EINTR on receive: (0, 0, 0, 0, 0).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

static inline long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int again(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}


#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#define UDP_SEGMENT_OPT 103
#define UDP_GRO_OPT 104

/* recvfrom, or with `gro` recvmsg that also reads the UDP_GRO segment size (0: one datagram) */
static ssize_t rx(int fd, unsigned char *buf, size_t cap, int flags, struct sockaddr_storage *addr, socklen_t *alen,
                  int gro, unsigned int *seg)
{
    *seg = 0;
    if (!gro)
        return recvfrom(fd, buf, cap, flags, (struct sockaddr *)addr, alen);
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctrl;
    struct iovec v = {buf, cap};
    struct msghdr m = {0};
    m.msg_name = addr;
    m.msg_namelen = *alen;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = ctrl.b;
    m.msg_controllen = sizeof ctrl.b;
    ssize_t n = recvmsg(fd, &m, flags);
    if (n >= 0) {
        *alen = m.msg_namelen;
        if (m.msg_flags & MSG_TRUNC)
            n = (ssize_t)cap; /* longer than the buffer: reported as truncated */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO_OPT) {
                int g;
                memcpy(&g, CMSG_DATA(c), sizeof g);
                *seg = g > 0 && g < n ? (unsigned int)g : 0;
            }
        }
    }
    return n;
}

/* The reply rule over each `seg`-byte segment of buf[0, n) (the last may be shorter): the answered ones are
 * compacted to the front with the clear bits cleared. Returns the bytes kept; *kept: segments kept. */
static size_t match_segments(unsigned char *buf, size_t n, size_t seg, Py_ssize_t idx, unsigned char req,
                             unsigned char keep, long long *kept)
{
    size_t out = 0;
    *kept = 0;
    for (size_t off = 0; off < n; off += seg) {
        size_t len = n - off < seg ? n - off : seg;
        if (idx >= 0) {
            if (len <= (size_t)idx || (buf[off + idx] & req) != req)
                continue;
            buf[off + idx] &= keep;
        }
        if (out != off)
            memmove(buf + out, buf + off, len);
        out += len;
        (*kept)++;
    }
    return out;
}

/* Send buf[0, n) as datagrams of `seg` bytes to addr: one GSO sendmsg, or one by one if the kernel refuses GSO.
 * Returns the datagrams sent, or -1 with errno set (ECONNREFUSED, EINTR) for the caller. */
static long long send_segments(int fd, unsigned char *buf, size_t n, size_t seg, struct sockaddr_storage *addr,
                               socklen_t alen, long long *errors)
{
    long long count = (long long)((n + seg - 1) / seg);
    if (count > 1) {
        union {
            char b[CMSG_SPACE(sizeof(uint16_t))];
            struct cmsghdr align;
        } ctrl;
        memset(&ctrl, 0, sizeof ctrl);
        struct iovec v = {buf, n};
        struct msghdr m = {0};
        m.msg_name = addr;
        m.msg_namelen = alen;
        m.msg_iov = &v;
        m.msg_iovlen = 1;
        m.msg_control = ctrl.b;
        m.msg_controllen = sizeof ctrl.b;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT_OPT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t s16 = (uint16_t)seg;
        memcpy(CMSG_DATA(c), &s16, sizeof s16);
        if (sendmsg(fd, &m, 0) >= 0)
            return count;
        if (errno != EIO && errno != EINVAL && errno != ENOPROTOOPT)
            return again(errno) ? 0 : (errno == EINTR || errno == ECONNREFUSED ? -1 : ((*errors) += count, 0));
    }
    long long sent = 0;
    for (size_t off = 0; off < n; off += seg) {
        size_t len = n - off < seg ? n - off : seg;
        if (sendto(fd, buf + off, len, 0, (struct sockaddr *)addr, alen) >= 0)
            sent++;
        else if (errno == ECONNREFUSED)
            return -1;
        else if (!again(errno) && errno != EINTR)
            (*errors)++;
    }
    return sent;
}

static PyObject *echo_plain(PyObject *self, PyObject *args)
{
    int fd, match_req, match_clr, quick_run, gro = 0;
    Py_buffer view;
    Py_ssize_t limit, match_idx;
    long long until_ns, spin_ns;
    (void)self;
    if (!PyArg_ParseTuple(args, "iw*nniiLLi|p", &fd, &view, &limit, &match_idx, &match_req, &match_clr, &until_ns,
                          &spin_ns, &quick_run, &gro))
        return NULL;
    if (limit < 0 || view.len < limit + 1 || match_idx >= view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "echo_plain: the buffer must hold limit + 1 bytes and the match index");
        return NULL;
    }
    unsigned char *buf = (unsigned char *)view.buf;
    size_t cap = (size_t)limit + 1;
    unsigned char req = (unsigned char)match_req, keep = (unsigned char)~match_clr;
    long long n_in = 0, n_out = 0, nbytes = 0, truncated = 0, send_errors = 0;
    int quick = 0, backlog = 0, fail = 0, interrupted = 0;

    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t alen = sizeof addr;
        ssize_t n;
        unsigned int seg = 0;
        int queued;
        long long t0, t1;
        if (spin_ns > 0) {
            /* Busy-poll: try without sleeping for up to spin_ns, then sleep in the kernel until a datagram. */
            queued = 1;
            t0 = now_ns();
            for (;;) {
                alen = sizeof addr;
                n = rx(fd, buf, cap, MSG_DONTWAIT, &addr, &alen, gro, &seg);
                if (n >= 0 || !(again(errno) || errno == EINTR))
                    break;
                queued = 0;
                if (now_ns() - t0 > spin_ns)
                    break;
            }
            if (n < 0 && (again(errno) || errno == EINTR)) {
                alen = sizeof addr;
                n = rx(fd, buf, cap, 0, &addr, &alen, gro, &seg);
            }
        } else {
            /* Queued means found by a receive that does not wait: a fact, not a time (a loaded machine can make a
             * queued datagram's receive slow, and a woken one fast). */
            n = rx(fd, buf, cap, MSG_DONTWAIT, &addr, &alen, gro, &seg);
            queued = n >= 0;
            if (n < 0 && (again(errno) || errno == EINTR)) {
                alen = sizeof addr;
                n = rx(fd, buf, cap, 0, &addr, &alen, gro, &seg);
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                interrupted = 1;
            else if (!again(errno)) /* EAGAIN: SO_RCVTIMEO passed, or a non-blocking socket is empty */
                fail = errno;
            break;
        }
        t1 = now_ns();
        nbytes += n;
        quick = queued ? quick + 1 : 0;
        if ((size_t)n > (size_t)limit) {
            n_in++;
            truncated++;
        } else if (seg) { /* GRO: several datagrams of one source; answered with one GSO send */
            long long kept;
            n_in += (n + seg - 1) / seg;
            size_t out = match_segments(buf, (size_t)n, seg, match_idx, req, keep, &kept);
            if (kept) {
                long long r = send_segments(fd, buf, out, seg, &addr, alen, &send_errors);
                if (r < 0) {
                    if (errno == EINTR)
                        interrupted = 1;
                    else
                        fail = errno;
                } else {
                    n_out += r;
                }
            }
            if (fail)
                break;
        } else if (match_idx < 0 || (n > match_idx && (buf[match_idx] & req) == req)) {
            n_in++;
            if (match_idx >= 0)
                buf[match_idx] &= keep;
            for (;;) {
                if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&addr, alen) >= 0) {
                    n_out++;
                } else if (errno == EINTR) {
                    interrupted = 1;
                    continue;
                } else if (errno == ECONNREFUSED) {
                    fail = errno;
                } else if (!again(errno)) {
                    send_errors++;
                }
                break;
            }
            if (fail)
                break;
        } else {
            n_in++;
        }
        if (quick >= quick_run) {
            backlog = 1;
            break;
        }
        if (t1 >= until_ns || interrupted)
            break;
    }
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&view);
    if (interrupted && PyErr_CheckSignals() < 0)
        return NULL;
    if (fail) {
        errno = fail;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("LLLOLL", n_in, n_out, nbytes, backlog ? Py_True : Py_False, truncated, send_errors);
}

/* The UDP_GRO segment size of a received message, or 0 when it holds one datagram. */
static unsigned int gro_seg(struct msghdr *m, unsigned int len)
{
    if (m->msg_control == NULL || m->msg_controllen < sizeof(struct cmsghdr))
        return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO_OPT) {
            int g;
            memcpy(&g, CMSG_DATA(c), sizeof g);
            return g > 0 && (unsigned int)g < len ? (unsigned int)g : 0;
        }
    }
    return 0;
}

/* The UDP_SEGMENT size a message to send carries, or 0. */
static unsigned int segment_size(struct msghdr *m)
{
    if (m->msg_control == NULL || m->msg_controllen < sizeof(struct cmsghdr))
        return 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(m);
    if (c == NULL || c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_SEGMENT_OPT)
        return 0;
    uint16_t s16;
    memcpy(&s16, CMSG_DATA(c), sizeof s16);
    return s16;
}

static long long segments_of(struct msghdr *m)
{
    unsigned int seg = segment_size(m);
    size_t len = m->msg_iov->iov_len;
    return seg ? (long long)((len + seg - 1) / seg) : 1;
}

static long long send_segments_plain(int fd, unsigned char *buf, size_t n, size_t seg, struct sockaddr_storage *addr,
                                     socklen_t alen, long long *errors)
{
    long long sent = 0;
    for (size_t off = 0; off < n; off += seg) {
        size_t len = n - off < seg ? n - off : seg;
        if (sendto(fd, buf + off, len, 0, (struct sockaddr *)addr, alen) >= 0)
            sent++;
        else if (!again(errno) && errno != EINTR)
            (*errors)++;
    }
    return sent;
}

static PyObject *echo_batch(PyObject *self, PyObject *args)
{
    int fd, flags, match_req, match_clr;
    unsigned int batch;
    unsigned long long at;
    Py_ssize_t match_idx;
    (void)self;
    if (!PyArg_ParseTuple(args, "iKIinii", &fd, &at, &batch, &flags, &match_idx, &match_req, &match_clr))
        return NULL;
    struct mmsghdr *hdrs = (struct mmsghdr *)(uintptr_t)at;
    unsigned char req = (unsigned char)match_req, keep = (unsigned char)~match_clr;
    long long total = 0, truncated = 0, send_errors = 0;
    int n, sent = 0, fail = 0, interrupted = 0;

    Py_BEGIN_ALLOW_THREADS
    n = recvmmsg(fd, hdrs, batch, flags, NULL);
    if (n < 0) {
        if (errno == EINTR)
            interrupted = 1;
        else if (!again(errno))
            fail = errno;
        n = 0;
    }
    int j = 0; /* entries kept so far, compacted to the front */
    long long segs_in = 0;
    for (int i = 0; i < n; i++) {
        struct mmsghdr *h = &hdrs[i];
        unsigned int len = h->msg_len;
        total += len;
        if (h->msg_hdr.msg_flags & MSG_TRUNC) {
            truncated++;
            segs_in++;
            continue;
        }
        unsigned int seg = gro_seg(&h->msg_hdr, len);
        unsigned char *data = (unsigned char *)h->msg_hdr.msg_iov->iov_base;
        long long kept = 1;
        if (seg) { /* GRO: several datagrams of one source, answered with one GSO message */
            segs_in += (len + seg - 1) / seg;
            len = (unsigned int)match_segments(data, len, seg, match_idx, req, keep, &kept);
            if (!kept)
                continue;
        } else {
            segs_in++;
            if (match_idx >= 0) {
                if (len <= (size_t)match_idx || (data[match_idx] & req) != req)
                    continue;
                data[match_idx] &= keep;
            }
        }
        h->msg_hdr.msg_iov->iov_len = len;
        unsigned char *ctrl = (unsigned char *)h->msg_hdr.msg_control;
        if (j != i)
            hdrs[j] = *h;
        hdrs[j].msg_hdr.msg_control = NULL;
        hdrs[j].msg_hdr.msg_controllen = 0;
        hdrs[j].msg_hdr.msg_flags = 0;
        if (seg && kept > 1 && ctrl != NULL) {
            struct msghdr *m = &hdrs[j].msg_hdr;
            memset(ctrl, 0, CMSG_SPACE(sizeof(uint16_t)));
            m->msg_control = ctrl;
            m->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
            struct cmsghdr *c = CMSG_FIRSTHDR(m);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT_OPT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t s16 = (uint16_t)seg;
            memcpy(CMSG_DATA(c), &s16, sizeof s16);
        }
        j++;
    }
    int start = 0;
    while (start < j && !fail) {
        int r = sendmmsg(fd, hdrs + start, (unsigned int)(j - start), 0);
        if (r >= 0) {
            for (int k = start; k < start + r; k++)
                sent += segments_of(&hdrs[k].msg_hdr);
            start += r;
        } else if (errno == EINTR) {
            interrupted = 1;
        } else if (again(errno)) {
            break; /* a non-blocking socket's send buffer is full: the rest are not sent */
        } else if (errno == ECONNREFUSED) {
            fail = errno;
        } else if (hdrs[start].msg_hdr.msg_controllen && (errno == EIO || errno == EINVAL)) {
            /* the kernel will not segment: this message's datagrams one by one */
            struct msghdr *m = &hdrs[start].msg_hdr;
            unsigned int seg = segment_size(m);
            struct sockaddr_storage to;
            memcpy(&to, m->msg_name, m->msg_namelen);
            long long r1 = send_segments_plain(fd, m->msg_iov->iov_base, m->msg_iov->iov_len, seg, &to,
                                               m->msg_namelen, &send_errors);
            if (r1 > 0)
                sent += (int)r1;
            start++;
        } else {
            send_errors++; /* this datagram is refused (EMSGSIZE, ENETUNREACH, EPERM...): skip it */
            start++;
        }
    }
    n = (int)segs_in;
    Py_END_ALLOW_THREADS

    if (interrupted && PyErr_CheckSignals() < 0)
        return NULL;
    if (fail) {
        errno = fail;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("iiLLL", n, sent, total, truncated, send_errors);
}

static PyMethodDef methods[] = {
    {"echo_plain", echo_plain, METH_VARARGS,
     "echo_plain(fd, buf, limit, match_idx, match_req, match_clr, until_ns, spin_ns, quick_run) -> "
     "(received, sent, bytes_received, backlog, truncated, send_errors)"},
    {"echo_batch", echo_batch, METH_VARARGS,
     "echo_batch(fd, hdrs, batch, flags, match_idx, match_req, match_clr) -> "
     "(received, sent, bytes_received, truncated, send_errors)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "The echo loops of Reflector.echo_plain and BatchSocket.echo_batch, in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void)
{
    return PyModule_Create(&module);
}
