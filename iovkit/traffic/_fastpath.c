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

static PyObject *echo_plain(PyObject *self, PyObject *args)
{
    int fd, match_req, match_clr, quick_run;
    Py_buffer view;
    Py_ssize_t limit, match_idx;
    long long until_ns, spin_ns;
    (void)self;
    if (!PyArg_ParseTuple(args, "iw*nniiLLi", &fd, &view, &limit, &match_idx, &match_req, &match_clr, &until_ns,
                          &spin_ns, &quick_run))
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
        int queued;
        long long t0, t1;
        if (spin_ns > 0) {
            /* Busy-poll: try without sleeping for up to spin_ns, then sleep in the kernel until a datagram. */
            queued = 1;
            t0 = now_ns();
            for (;;) {
                alen = sizeof addr;
                n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&addr, &alen);
                if (n >= 0 || !(again(errno) || errno == EINTR))
                    break;
                queued = 0;
                if (now_ns() - t0 > spin_ns)
                    break;
            }
            if (n < 0 && (again(errno) || errno == EINTR)) {
                alen = sizeof addr;
                n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&addr, &alen);
            }
        } else {
            /* Queued means found by a receive that does not wait: a fact, not a time (a loaded machine can make a
             * queued datagram's receive slow, and a woken one fast). */
            n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&addr, &alen);
            queued = n >= 0;
            if (n < 0 && (again(errno) || errno == EINTR)) {
                alen = sizeof addr;
                n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&addr, &alen);
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
        n_in++;
        nbytes += n;
        quick = queued ? quick + 1 : 0;
        if ((size_t)n > (size_t)limit) {
            truncated++;
        } else if (match_idx < 0 || (n > match_idx && (buf[match_idx] & req) == req)) {
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
    for (int i = 0; i < n; i++) {
        struct mmsghdr *h = &hdrs[i];
        unsigned int len = h->msg_len;
        total += len;
        if (h->msg_hdr.msg_flags & MSG_TRUNC) {
            truncated++;
            continue;
        }
        if (match_idx >= 0) {
            unsigned char *data = (unsigned char *)h->msg_hdr.msg_iov->iov_base;
            if (len <= (size_t)match_idx || (data[match_idx] & req) != req)
                continue;
            data[match_idx] &= keep;
        }
        h->msg_hdr.msg_iov->iov_len = len;
        if (j != i)
            hdrs[j] = *h;
        hdrs[j].msg_hdr.msg_control = NULL;
        hdrs[j].msg_hdr.msg_controllen = 0;
        hdrs[j].msg_hdr.msg_flags = 0;
        j++;
    }
    int start = 0;
    while (start < j && !fail) {
        int r = sendmmsg(fd, hdrs + start, (unsigned int)(j - start), 0);
        if (r >= 0) {
            sent += r;
            start += r;
        } else if (errno == EINTR) {
            interrupted = 1;
        } else if (again(errno)) {
            break; /* a non-blocking socket's send buffer is full: the rest are not sent */
        } else if (errno == ECONNREFUSED) {
            fail = errno;
        } else {
            send_errors++; /* this datagram is refused (EMSGSIZE, ENETUNREACH, EPERM...): skip it */
            start++;
        }
    }
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
