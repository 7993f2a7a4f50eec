/*
 * iovkit.traffic._datapath: the relay's data path, the counting sink and the batched send of a plan, in C.
 *
 * Why C: a relay in Python spends about 9 us of CPU per datagram it forwards (issue 15), three times a C
 * recvmmsg/sendmmsg reflector. The per-datagram work of relay mode (source lookup, token bucket, header checks,
 * fan-out to the session's members, counters) is done here on the receive ring of mmsg, over a peer table whose
 * memory Python owns and maintains (relaytable.py: joins, leaves, expiry, challenges stay in Python). Python's
 * RelayCore stays the reference and the fallback; tests/traffic/test_relayfast.py checks both on random traffic.
 *
 * UDP GRO and GSO: a receive ring entry may hold several datagrams of one source (UDP_GRO control message:
 * segment size); every segment is handled as its own datagram. Forwards to one destination that follow each
 * other in the plan become one message with several iovecs and a UDP_SEGMENT control message (GSO), which the
 * kernel splits into the same datagrams; the kernel refusing that (EIO, EINVAL: no checksum offload, old kernel)
 * makes send_plan send them one by one and report it, and the caller stops asking for GSO.
 *
 * relay_plan(rx_at, n, i, off, mem, cap, scap, hsize, now, rate, burst, max_datagram, tx, tx_cap, gso, reserve)
 *   -> (i, off, n_tx, status)
 *   Plans forwards for ring entries [i, n) starting at byte `off` of entry i into the tx area. status 0: all
 *   done; 1: stopped at the segment (i, off), from a source not in the table (Python takes it whole);
 *   2: stopped at (i, off) after counting it and taking its token (Python handles the message: LEAVE, JOIN,
 *   ALLOCATE from a member); 3: the tx area is full (nothing of (i, off) consumed: send, then call again).
 * send_plan(fd, tx, n_tx) -> (sent, failed, gso_refused)   datagrams the kernel took / refused
 * sink_batch(fd, hdrs, batch, flags) -> (messages, datagrams, bytes, truncated)   GRO buffers count as segments
 * tx_layout() -> (hdr_size, iov_size, ctrl_size, meta_size, max_segments)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define NAME_SLOT 32
#define MAX_SEGS 64      /* UDP_MAX_SEGMENTS on every kernel with UDP GSO */
#define GSO_BYTES 65000  /* stay under the 64 KiB IP datagram */
#define LOOK_BACK 8      /* plan entries searched for one to the same destination */
#define CTRL_SIZE CMSG_SPACE(sizeof(uint16_t))
#define NCOUNT 16

/* counters, in relaytable.COUNTERS order */
enum { C_PKTS_IN, C_BYTES_IN, C_PKTS_OUT, C_BYTES_OUT, C_RATE_LIMITED, C_OVERSIZED, C_MALFORMED, C_BAD_VERSION,
       C_UNKNOWN_SOURCE, C_NO_TARGET, C_UNKNOWN_TYPE, C_TRUNCATED };

enum { T_ALLOCATE = 1, T_JOIN = 4, T_DATA_ALL = 6, T_DATA_ONE = 7, T_KEEPALIVE = 8, T_LEAVE = 9 };

typedef struct {
    int32_t dest;
    uint32_t seg, count, bytes;
    uint32_t closed, pad[3];
} meta_t;

typedef struct {
    double *tokens, *btime, *last;
    int64_t *counters;
    uint32_t *namelen, *sid, *pid;
    int32_t *sess, *next, *head, *index;
    unsigned char *names;
    Py_ssize_t cap, scap, hsize;
} table_t;

static int layout(table_t *t, unsigned char *mem, Py_ssize_t len, Py_ssize_t cap, Py_ssize_t scap, Py_ssize_t hsize)
{
    Py_ssize_t need = 24 * cap + 8 * NCOUNT + 20 * cap + 4 * scap + 4 * hsize + NAME_SLOT * cap;
    if (cap <= 0 || scap <= 0 || hsize <= 0 || (hsize & (hsize - 1)) || len < need)
        return -1;
    t->tokens = (double *)mem;
    t->btime = t->tokens + cap;
    t->last = t->btime + cap;
    t->counters = (int64_t *)(t->last + cap);
    t->namelen = (uint32_t *)(t->counters + NCOUNT);
    t->sid = t->namelen + cap;
    t->pid = t->sid + cap;
    t->sess = (int32_t *)(t->pid + cap);
    t->next = t->sess + cap;
    t->head = t->next + cap;
    t->index = t->head + scap;
    t->names = (unsigned char *)(t->index + hsize);
    t->cap = cap, t->scap = scap, t->hsize = hsize;
    return 0;
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static int32_t lookup(const table_t *t, const unsigned char *name, uint32_t nl)
{
    if (nl == 0 || nl > NAME_SLOT)
        return -1;
    uint32_t mask = (uint32_t)t->hsize - 1, h = fnv1a(name, nl) & mask;
    for (Py_ssize_t probes = 0; probes < t->hsize; probes++, h = (h + 1) & mask) {
        int32_t s = t->index[h];
        if (s == -1)
            return -1;
        if (s >= 0 && t->namelen[s] == nl && memcmp(t->names + (size_t)s * NAME_SLOT, name, nl) == 0)
            return s;
    }
    return -1;
}

static unsigned int gro_size(struct msghdr *m)
{
    if (m->msg_control == NULL || m->msg_controllen < sizeof(struct cmsghdr))
        return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            return v > 0 ? (unsigned int)v : 0;
        }
    }
    return 0;
}

static inline uint16_t be16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct {
    struct mmsghdr *hdrs;
    struct iovec *iovs;
    unsigned char *ctrl;
    meta_t *meta;
    Py_ssize_t cap, n;
    int gso;
} plan_t;

static int plan_layout(plan_t *pl, unsigned char *buf, Py_ssize_t len, Py_ssize_t cap)
{
    Py_ssize_t need = cap * ((Py_ssize_t)sizeof(struct mmsghdr) + MAX_SEGS * (Py_ssize_t)sizeof(struct iovec) +
                             (Py_ssize_t)CTRL_SIZE + (Py_ssize_t)sizeof(meta_t));
    if (cap <= 0 || len < need)
        return -1;
    pl->hdrs = (struct mmsghdr *)buf;
    pl->iovs = (struct iovec *)(pl->hdrs + cap);
    pl->meta = (meta_t *)(pl->iovs + cap * MAX_SEGS);
    pl->ctrl = (unsigned char *)(pl->meta + cap);
    pl->cap = cap;
    return 0;
}

/* Add one datagram to the plan; the caller made sure there is room for a new entry. */
static void emit(plan_t *pl, const table_t *t, int32_t dest, unsigned char *data, uint32_t len)
{
    if (pl->gso) {
        for (Py_ssize_t k = pl->n - 1, seen = 0; k >= 0 && seen < LOOK_BACK; k--, seen++) {
            meta_t *m = &pl->meta[k];
            if (m->dest != dest)
                continue;
            if (!m->closed && len <= m->seg && m->count < MAX_SEGS && m->bytes + len <= GSO_BYTES) {
                struct iovec *v = &pl->iovs[k * MAX_SEGS + m->count];
                v->iov_base = data;
                v->iov_len = len;
                m->count++;
                m->bytes += len;
                if (len < m->seg)
                    m->closed = 1; /* a shorter segment ends a GSO message */
                return;
            }
            break; /* the latest message to this destination cannot take it: keep the order */
        }
    }
    Py_ssize_t k = pl->n++;
    meta_t *m = &pl->meta[k];
    m->dest = dest, m->seg = len, m->count = 1, m->bytes = len, m->closed = 0;
    pl->iovs[k * MAX_SEGS].iov_base = data;
    pl->iovs[k * MAX_SEGS].iov_len = len;
    (void)t;
}

static void finish_plan(plan_t *pl, const table_t *t)
{
    for (Py_ssize_t k = 0; k < pl->n; k++) {
        meta_t *m = &pl->meta[k];
        struct msghdr *h = &pl->hdrs[k].msg_hdr;
        memset(&pl->hdrs[k], 0, sizeof pl->hdrs[k]);
        h->msg_name = t->names + (size_t)m->dest * NAME_SLOT;
        h->msg_namelen = t->namelen[m->dest];
        h->msg_iov = &pl->iovs[k * MAX_SEGS];
        h->msg_iovlen = m->count;
        if (m->count > 1) {
            unsigned char *c = pl->ctrl + (size_t)k * CTRL_SIZE;
            memset(c, 0, CTRL_SIZE);
            h->msg_control = c;
            h->msg_controllen = CTRL_SIZE;
            struct cmsghdr *cm = CMSG_FIRSTHDR(h);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)m->seg;
            memcpy(CMSG_DATA(cm), &seg, sizeof seg);
        }
    }
}

static PyObject *relay_plan(PyObject *self, PyObject *args)
{
    unsigned long long rx_at;
    Py_ssize_t n, i, off, cap, scap, hsize, tx_cap, max_datagram;
    double now, rate, burst;
    Py_ssize_t reserve;
    int gso;
    Py_buffer mem, tx;
    (void)self;
    if (!PyArg_ParseTuple(args, "Knnnw*nnndddnw*npn", &rx_at, &n, &i, &off, &mem, &cap, &scap, &hsize, &now, &rate,
                          &burst, &max_datagram, &tx, &tx_cap, &gso, &reserve))
        return NULL;
    table_t t;
    plan_t pl;
    if (layout(&t, mem.buf, mem.len, cap, scap, hsize) < 0 || plan_layout(&pl, tx.buf, tx.len, tx_cap) < 0 ||
        reserve < 1 || reserve > tx_cap) {
        PyBuffer_Release(&mem);
        PyBuffer_Release(&tx);
        PyErr_SetString(PyExc_ValueError, "relay_plan: a buffer is too small for its layout");
        return NULL;
    }
    pl.n = 0;
    pl.gso = gso;
    struct mmsghdr *rx = (struct mmsghdr *)(uintptr_t)rx_at;
    int64_t *ct = t.counters;
    int status = 0;

    for (; i < n; i++, off = 0) {
        struct msghdr *mh = &rx[i].msg_hdr;
        unsigned int total = rx[i].msg_len;
        if (mh->msg_flags & MSG_TRUNC) {
            if (off == 0)
                ct[C_TRUNCATED]++;
            continue;
        }
        unsigned int seg = gro_size(mh);
        if (seg == 0 || seg > total)
            seg = total ? total : 1;
        unsigned char *base = (unsigned char *)mh->msg_iov->iov_base;
        int32_t src = lookup(&t, (unsigned char *)mh->msg_name, mh->msg_namelen);
        for (; off < (Py_ssize_t)total || (total == 0 && off == 0); off += seg) {
            if (src < 0) {
                status = 1;
                goto out;
            }
            if (pl.cap - pl.n < reserve) { /* room for the widest fan-out */
                status = 3;
                goto out;
            }
            unsigned char *d = base + off;
            uint32_t len = total == 0 ? 0 : (uint32_t)((Py_ssize_t)total - off < (Py_ssize_t)seg ? total - off : seg);
            ct[C_PKTS_IN]++;
            ct[C_BYTES_IN] += len;
            double tokens = t.tokens[src] + (now - t.btime[src]) * rate;
            if (tokens > burst)
                tokens = burst;
            t.btime[src] = now;
            if (tokens < 1.0) {
                t.tokens[src] = tokens;
                ct[C_RATE_LIMITED]++;
                if (total == 0)
                    break;
                continue;
            }
            t.tokens[src] = tokens - 1.0;
            if ((Py_ssize_t)len > max_datagram) {
                ct[C_OVERSIZED]++;
            } else if (len < 32 || be16(d) != 0x4956) {
                ct[C_MALFORMED]++;
            } else if (d[2] != 1) {
                ct[C_BAD_VERSION]++;
            } else {
                int kind = d[3];
                uint32_t sid = be32(d + 8), pid = be32(d + 12);
                if (kind == T_DATA_ALL || kind == T_DATA_ONE || kind == T_KEEPALIVE || kind == T_LEAVE) {
                    if (t.sid[src] != sid || t.pid[src] != pid) {
                        ct[C_UNKNOWN_SOURCE]++;
                    } else if (kind == T_LEAVE) {
                        status = 2; /* Python removes the member (the last use counts there) */
                        goto out;
                    } else {
                        t.last[src] = now;
                        int32_t sx = t.sess[src];
                        if (kind == T_DATA_ALL) {
                            for (int32_t m = t.head[sx]; m >= 0; m = t.next[m]) {
                                if (m != src) {
                                    emit(&pl, &t, m, d, len);
                                    ct[C_PKTS_OUT]++;
                                    ct[C_BYTES_OUT] += len;
                                }
                            }
                        } else if (kind == T_DATA_ONE) {
                            if (len < 36) {
                                ct[C_MALFORMED]++;
                            } else {
                                uint32_t to = be32(d + 32);
                                int32_t m = t.head[sx];
                                while (m >= 0 && t.pid[m] != to)
                                    m = t.next[m];
                                if (m < 0) {
                                    ct[C_NO_TARGET]++;
                                } else {
                                    emit(&pl, &t, m, d, len);
                                    ct[C_PKTS_OUT]++;
                                    ct[C_BYTES_OUT] += len;
                                }
                            }
                        } else {
                            emit(&pl, &t, src, d, len);
                            ct[C_PKTS_OUT]++;
                            ct[C_BYTES_OUT] += len;
                        }
                    }
                } else if (kind == T_ALLOCATE || kind == T_JOIN) {
                    status = 2;
                    goto out;
                } else {
                    ct[C_UNKNOWN_TYPE]++;
                }
            }
            if (total == 0)
                break;
        }
    }
out:
    finish_plan(&pl, &t);
    PyBuffer_Release(&mem);
    PyBuffer_Release(&tx);
    return Py_BuildValue("nnni", i, off, pl.n, status);
}

static PyObject *send_plan(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer tx;
    Py_ssize_t n_tx, tx_cap;
    (void)self;
    if (!PyArg_ParseTuple(args, "iw*nn", &fd, &tx, &tx_cap, &n_tx))
        return NULL;
    plan_t pl;
    if (plan_layout(&pl, tx.buf, tx.len, tx_cap) < 0 || n_tx > tx_cap || n_tx < 0) {
        PyBuffer_Release(&tx);
        PyErr_SetString(PyExc_ValueError, "send_plan: the plan does not fit its buffer");
        return NULL;
    }
    long long sent = 0, failed = 0;
    int refused = 0, interrupted = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t start = 0;
    while (start < n_tx) {
        int r = sendmmsg(fd, pl.hdrs + start, (unsigned int)(n_tx - start), 0);
        if (r > 0) {
            for (int k = 0; k < r; k++)
                sent += pl.meta[start + k].count;
            start += r;
            continue;
        }
        if (r < 0 && errno == EINTR) {
            interrupted = 1;
            continue;
        }
        meta_t *m = &pl.meta[start];
        struct msghdr *h = &pl.hdrs[start].msg_hdr;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            for (Py_ssize_t k = start; k < n_tx; k++)
                failed += pl.meta[k].count; /* no room: the rest are lost, as a full queue loses them */
            break;
        }
        if (r < 0 && m->count > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
            /* the kernel will not segment: send this message's datagrams one by one */
            refused = 1;
            struct iovec *v = h->msg_iov;
            for (uint32_t s = 0; s < m->count; s++) {
                struct msghdr one = *h;
                one.msg_iov = &v[s];
                one.msg_iovlen = 1;
                one.msg_control = NULL;
                one.msg_controllen = 0;
                if (sendmsg(fd, &one, 0) >= 0)
                    sent++;
                else
                    failed++;
            }
        } else {
            failed += m->count; /* this message is refused (EMSGSIZE, ENETUNREACH, EPERM...): skip it */
        }
        start++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&tx);
    if (interrupted && PyErr_CheckSignals() < 0)
        return NULL;
    return Py_BuildValue("LLO", sent, failed, refused ? Py_True : Py_False);
}

static PyObject *sink_batch(PyObject *self, PyObject *args)
{
    int fd, flags;
    unsigned int batch;
    unsigned long long at;
    (void)self;
    if (!PyArg_ParseTuple(args, "iKIi", &fd, &at, &batch, &flags))
        return NULL;
    struct mmsghdr *hdrs = (struct mmsghdr *)(uintptr_t)at;
    long long msgs = 0, dgrams = 0, bytes = 0, truncated = 0;
    int n, fail = 0, interrupted = 0;
    Py_BEGIN_ALLOW_THREADS
    n = recvmmsg(fd, hdrs, batch, flags, NULL);
    if (n < 0) {
        if (errno == EINTR)
            interrupted = 1;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            fail = errno;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        unsigned int len = hdrs[i].msg_len, seg = gro_size(&hdrs[i].msg_hdr);
        msgs++;
        if (hdrs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            truncated++;
            continue;
        }
        bytes += len;
        dgrams += (seg == 0 || seg >= len) ? 1 : (len + seg - 1) / seg;
    }
    Py_END_ALLOW_THREADS
    if (interrupted && PyErr_CheckSignals() < 0)
        return NULL;
    if (fail) {
        errno = fail;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("LLLL", msgs, dgrams, bytes, truncated);
}

static PyObject *tx_layout(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return Py_BuildValue("nnnnn", (Py_ssize_t)sizeof(struct mmsghdr), (Py_ssize_t)sizeof(struct iovec),
                         (Py_ssize_t)CTRL_SIZE, (Py_ssize_t)sizeof(meta_t), (Py_ssize_t)MAX_SEGS);
}

static PyObject *name_hash(PyObject *self, PyObject *args)
{
    Py_buffer b;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &b))
        return NULL;
    uint32_t h = fnv1a(b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(h);
}

static PyMethodDef methods[] = {
    {"relay_plan", relay_plan, METH_VARARGS,
     "relay_plan(rx_at, n, i, off, mem, cap, scap, hsize, now, rate, burst, max_datagram, tx, tx_cap, gso, reserve) -> "
     "(i, off, n_tx, status)"},
    {"send_plan", send_plan, METH_VARARGS, "send_plan(fd, tx, tx_cap, n_tx) -> (sent, failed, gso_refused)"},
    {"sink_batch", sink_batch, METH_VARARGS,
     "sink_batch(fd, hdrs, batch, flags) -> (messages, datagrams, bytes, truncated)"},
    {"tx_layout", tx_layout, METH_NOARGS, "tx_layout() -> (hdr, iov, ctrl, meta, max_segments)"},
    {"name_hash", name_hash, METH_VARARGS, "name_hash(sockaddr bytes) -> FNV-1a 32"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_datapath", "The relay's data path, the counting sink and plan sending, in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__datapath(void)
{
    return PyModule_Create(&module);
}
