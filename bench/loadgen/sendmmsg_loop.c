/* The kernel's own send limit for the loadgen benchmark: sendmmsg() in batches of 64, nothing else.
 *
 * Usage: sendmmsg_loop HOST PORT SECONDS [PAYLOAD] [BATCH]
 * Sends PAYLOAD-byte datagrams (default 64) shaped like a sockperf client message without a pong request
 * (seq u64, flags u16 = 1, length u32, network order), so `sockperf server` counts them and stays silent.
 * Prints one line: "sent N in S s: R msg/s".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXBATCH 1024

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS [PAYLOAD] [BATCH]\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[3]);
    int payload = argc > 4 ? atoi(argv[4]) : 64;
    int batch = argc > 5 ? atoi(argv[5]) : 64;
    if (payload < 14 || payload > 1472 || batch < 1 || batch > MAXBATCH) {
        fprintf(stderr, "payload 14..1472, batch 1..%d\n", MAXBATCH);
        return 2;
    }
    struct sockaddr_in dst = {0};
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
        fprintf(stderr, "bad IPv4 address %s\n", argv[1]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
        perror("connect");
        return 3;
    }
    static char data[MAXBATCH][1472];
    static struct iovec iov[MAXBATCH];
    static struct mmsghdr msgs[MAXBATCH];
    for (int i = 0; i < batch; i++) {
        memset(data[i], 'x', payload);
        uint16_t flags = htons(1);
        uint32_t len = htonl((uint32_t)payload);
        memcpy(data[i] + 8, &flags, 2);
        memcpy(data[i] + 10, &len, 4);
        iov[i].iov_base = data[i];
        iov[i].iov_len = payload;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t seq = 0, sent = 0;
    double start = now(), end = start + seconds, t = start;
    while (t < end) {
        for (int i = 0; i < batch; i++) {
            uint64_t s = htobe64(seq++);
            memcpy(data[i], &s, 8);
        }
        int r = sendmmsg(fd, msgs, batch, 0);
        if (r > 0) sent += r;
        t = now();
    }
    printf("sent %llu in %.3f s: %.0f msg/s\n", (unsigned long long)sent, t - start, sent / (t - start));
    return 0;
}
