// udp-blast VIP COUNT [PAYLOAD=18] [FLOWS=1024] [MAX_SECONDS=30]
// Sends COUNT UDP datagrams to VIP (IPv4), destination ports cycling over FLOWS values, in
// sendmmsg batches of 64; stops after COUNT packets or MAX_SECONDS, whichever comes first.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s VIP COUNT [PAYLOAD] [FLOWS] [MAX_SECONDS]\n", argv[0]); return 2; }
    long count = atol(argv[2]);
    int payload = argc > 3 ? atoi(argv[3]) : 18, flows = argc > 4 ? atoi(argv[4]) : 1024;
    double limit = argc > 5 ? atof(argv[5]) : 30;
    if (count <= 0 || count > 100000000L || payload < 0 || payload > 1400 || flows < 1 || flows > 60000 || limit <= 0 || limit > 600) {
        fprintf(stderr, "out of range (COUNT <= 1e8, PAYLOAD <= 1400, FLOWS <= 60000, MAX_SECONDS <= 600)\n"); return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int sndbuf = 4 << 20; setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    enum { B = 64 };
    static char data[1400];
    struct sockaddr_in to[B]; struct iovec iov[B]; struct mmsghdr m[B];
    memset(m, 0, sizeof m);
    for (int i = 0; i < B; i++) {
        memset(&to[i], 0, sizeof to[i]); to[i].sin_family = AF_INET;
        if (inet_pton(AF_INET, argv[1], &to[i].sin_addr) != 1) { fprintf(stderr, "bad VIP\n"); return 2; }
        iov[i].iov_base = data; iov[i].iov_len = payload;
        m[i].msg_hdr.msg_name = &to[i]; m[i].msg_hdr.msg_namelen = sizeof to[i];
        m[i].msg_hdr.msg_iov = &iov[i]; m[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = 0, port = 0; double start = now(), end = start + limit;
    while (sent < count && now() < end) {
        int n = count - sent < B ? (int)(count - sent) : B;
        for (int i = 0; i < n; i++) to[i].sin_port = htons(10000 + (port++ % flows));
        int r = sendmmsg(fd, m, n, 0);
        if (r > 0) sent += r;
    }
    double el = now() - start;
    printf("sent %ld packets in %.3f s: %.0f pps\n", sent, el, sent / el);
    return 0;
}
