// Helper of `Tools/bench live` (built there with cc; run only inside its mgbench-* namespaces).
//
//   bench-live blast VIP RATE COUNT MAX_SECONDS [PROBE_PORT PROBE_EVERY_US]
//     Sends up to COUNT UDP datagrams (18-byte payload, destination ports cycling over 1024
//     values from 10000) to VIP at RATE packets per second, paced against CLOCK_MONOTONIC, in
//     sendmmsg batches of at most 64 (only what is due; it sleeps while ahead of schedule, so
//     its CPU time is its own work, and full batches at the limit); stops after COUNT packets or
//     MAX_SECONDS, whichever comes first. With BENCH_TICK_US=T in the environment it wakes only
//     every T microseconds and sends what is due (rate x T packets), so its own cost per packet
//     does not depend on what the receiving side does inline. With PROBE_PORT,
//     also sends one probe datagram to that port every PROBE_EVERY_US microseconds, carrying
//     "MGPROBE", a sequence number and CLOCK_REALTIME nanoseconds taken just before its sendto.
//     Prints: sent N probes P seconds S cpu_ns C (C: the blaster's own CPU time,
//     CLOCK_PROCESS_CPUTIME_ID, which on this kernel includes the softirq work that runs in its
//     context: the veth receive on the other side of its socket runs inline in the sender).
//
//   bench-live probes IFACE PORT MAX_SECONDS MAX_COUNT
//     An AF_PACKET socket on IFACE with a classic BPF filter for UDP to PORT, plain
//     (Ethernet+IPv4+UDP) or GRE-encapsulated (Ethernet+IPv4+GRE+IPv4+UDP), with SO_TIMESTAMPNS:
//     prints one line per probe, the kernel's receive timestamp minus the probe's send
//     timestamp, in nanoseconds. Stops after MAX_SECONDS or MAX_COUNT probes.
//
//   bench-live feature IFACE gro|tso [on|off]
//     Shows (and with on/off sets) generic receive offload or TCP segmentation offload on IFACE
//     through the legacy ETHTOOL_G/S{GRO,TSO} ioctls (no ethtool needed). Prints: IFACE gro on.
//     On veth, GRO on switches the receiving side to NAPI (frames queued and received in
//     batches of up to 64 instead of one by one inline in the sender's call), but veth hands a
//     frame to NAPI only when the *sending* side has TSO off (or the frame is socket-owned and
//     the receiver has rx-gro-list / rx-udp-gro-forwarding): so both are set.
//
//   bench-live stat IFACE NAME
//     Prints one `ethtool -S` statistic of IFACE (ETHTOOL_GSTATS), e.g. veth's
//     rx_queue_0_xdp_packets, which counts the frames its NAPI path received.
//
// The first two are bounded in count and time; limits are checked before anything is sent.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <math.h>
#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int64_t realtime_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

struct probe {
    char magic[8];
    uint64_t seq;
    int64_t sent_ns;
};

static int blast(int argc, char **argv) {
    if (argc < 6) return 2;
    double rate = atof(argv[3]);
    long count = atol(argv[4]);
    double limit = atof(argv[5]);
    int probe_port = argc > 7 ? atoi(argv[6]) : 0;
    double probe_every = argc > 7 ? atof(argv[7]) / 1e6 : 0;
    if (!(rate >= 1 && rate <= 20e6) || count <= 0 || count > 200000000L || !(limit > 0 && limit <= 120) ||
        probe_port < 0 || probe_port > 65535 || (probe_port && !(probe_every >= 1e-4))) {
        fprintf(stderr, "out of range (RATE <= 2e7, COUNT <= 2e8, MAX_SECONDS <= 120, PROBE_EVERY_US >= 100)\n");
        return 2;
    }
    // BENCH_TICK_US > 0: wake only on a fixed tick and send what is due then, so that the
    // blaster sleeps and wakes the same number of times whatever the receiver costs inline
    // (with per-packet pacing, a receiver that slows each send saves the blaster sleeps, and
    // its own cost per packet drops: the calibration would no longer match).
    const char *tick_env = getenv("BENCH_TICK_US");
    double tick = tick_env ? atof(tick_env) / 1e6 : 0;
    if (!(tick >= 0 && tick <= 0.01)) { fprintf(stderr, "BENCH_TICK_US: 0..10000\n"); return 2; }
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);  // 1 us: sleeps end close to when asked
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    enum { B = 64, FLOWS = 1024 };
    static char data[18];
    struct sockaddr_in to[B];
    struct iovec iov[B];
    struct mmsghdr m[B];
    memset(m, 0, sizeof m);
    for (int i = 0; i < B; i++) {
        memset(&to[i], 0, sizeof to[i]);
        to[i].sin_family = AF_INET;
        if (inet_pton(AF_INET, argv[2], &to[i].sin_addr) != 1) { fprintf(stderr, "bad VIP\n"); return 2; }
        iov[i].iov_base = data;
        iov[i].iov_len = sizeof data;
        m[i].msg_hdr.msg_name = &to[i];
        m[i].msg_hdr.msg_namelen = sizeof to[i];
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    struct sockaddr_in probe_to = to[0];
    probe_to.sin_port = htons(probe_port);
    long sent = 0, probes = 0, port = 0;
    double start = mono(), end = start + limit, next_probe = start + probe_every;
    for (;;) {
        double now = mono();
        if (now >= end || sent >= count) break;
        if (probe_port && now >= next_probe) {
            struct probe p = {.magic = "MGPROBE", .seq = (uint64_t)probes};
            p.sent_ns = realtime_ns();
            if (sendto(fd, &p, sizeof p, 0, (struct sockaddr *)&probe_to, sizeof probe_to) == sizeof p) probes++;
            next_probe += probe_every;
            if (next_probe < now) next_probe = now + probe_every;
        }
        long due = (long)((now - start) * rate) + 1;
        if (due > count) due = count;
        long n = due - sent;
        if (n <= 0) {
            // Ahead of schedule: sleep until the next packet (or probe) is due, so that the
            // blaster's CPU time is its work, not spinning (the bench subtracts it).
            double due_at = (sent + 1) / rate;
            if (tick > 0) due_at = ceil(due_at / tick) * tick;
            double wait = due_at - (now - start);
            if (probe_port && next_probe - now < wait) wait = next_probe - now;
            if (wait > 2e-6) {
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(wait * 1e9)};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (n > B) n = B;
        for (long i = 0; i < n; i++) to[i].sin_port = htons(10000 + (port++ % FLOWS));
        int r = sendmmsg(fd, m, (unsigned)n, 0);
        if (r > 0) sent += r;
    }
    double el = mono() - start;
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    printf("sent %ld probes %ld seconds %.6f cpu_ns %lld\n", sent, probes, el,
           (long long)cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
    return 0;
}

static int probes(int argc, char **argv) {
    if (argc < 6) return 2;
    int port = atoi(argv[3]);
    double limit = atof(argv[4]);
    long max_count = atol(argv[5]);
    if (port <= 0 || port > 65535 || port == 0x0800 || !(limit > 0 && limit <= 120) || max_count <= 0 || max_count > 10000000) {
        fprintf(stderr, "out of range\n");
        return 2;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) { perror("socket(AF_PACKET)"); return 1; }
    // Plain: UDP destination port at 14 + 20 + 2. GRE (4-byte header, IPv4 inner): at
    // 14 + 20 + 4 + 20 + 2. The GRE case has the GRE protocol (0x0800) at offset 36, never PORT.
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 36),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)port, 2, 0),
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 60),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)port, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xFFFF),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) { perror("SO_ATTACH_FILTER"); return 1; }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) { perror("SO_TIMESTAMPNS"); return 1; }
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex(argv[2])};
    if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0) { perror("bind"); return 1; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    fflush(stdout);
    double end = mono() + limit;
    long got = 0;
    unsigned char frame[256];
    char control[256];
    while (got < max_count) {
        double left = end - mono();
        if (left <= 0) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0) continue;
        struct iovec iov = {.iov_base = frame, .iov_len = sizeof frame};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n <= 0) continue;
        int64_t rx = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                rx = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            }
        }
        unsigned char *hit = memmem(frame, (size_t)n, "MGPROBE", 8);
        if (!hit || rx < 0 || hit + sizeof(struct probe) > frame + n) continue;
        struct probe pr;
        memcpy(&pr, hit, sizeof pr);
        printf("%lld\n", (long long)(rx - pr.sent_ns));
        got++;
    }
    return 0;
}

// ethtool ioctl on IFACE with REQ pointing at the request.
static int ethtool(const char *iface, void *req) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, iface, IFNAMSIZ - 1);
    ifr.ifr_data = req;
    int r = ioctl(fd, SIOCETHTOOL, &ifr);
    close(fd);
    return r;
}

static int feature(int argc, char **argv) {
    if (argc < 4 || strlen(argv[2]) >= IFNAMSIZ) return 2;
    unsigned get, set_cmd;
    if (strcmp(argv[3], "gro") == 0) get = ETHTOOL_GGRO, set_cmd = ETHTOOL_SGRO;
    else if (strcmp(argv[3], "tso") == 0) get = ETHTOOL_GTSO, set_cmd = ETHTOOL_STSO;
    else return 2;
    int set = -1;
    if (argc > 4) {
        if (strcmp(argv[4], "on") == 0) set = 1;
        else if (strcmp(argv[4], "off") == 0) set = 0;
        else return 2;
    }
    struct ethtool_value v = {.cmd = set_cmd, .data = (unsigned)set};
    if (set >= 0 && ethtool(argv[2], &v) != 0) { perror("ETHTOOL_S*"); return 1; }
    v.cmd = get;
    v.data = 0;
    if (ethtool(argv[2], &v) != 0) { perror("ETHTOOL_G*"); return 1; }
    printf("%s %s %s\n", argv[2], argv[3], v.data ? "on" : "off");
    if (set >= 0 && (int)!!v.data != set) { fprintf(stderr, "%s: %s is still %s\n", argv[2], argv[3], v.data ? "on" : "off"); return 1; }
    return 0;
}

static int stat(int argc, char **argv) {
    if (argc < 4 || strlen(argv[2]) >= IFNAMSIZ) return 2;
    struct {
        struct ethtool_sset_info hdr;
        uint32_t len;
    } info = {.hdr = {.cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ULL << ETH_SS_STATS}};
    if (ethtool(argv[2], &info) != 0 || !(info.hdr.sset_mask & (1ULL << ETH_SS_STATS))) { perror("ETHTOOL_GSSET_INFO"); return 1; }
    uint32_t n = info.len;
    struct ethtool_gstrings *names = calloc(1, sizeof *names + (size_t)n * ETH_GSTRING_LEN);
    struct ethtool_stats *values = calloc(1, sizeof *values + (size_t)n * sizeof(uint64_t));
    if (!names || !values) return 1;
    names->cmd = ETHTOOL_GSTRINGS, names->string_set = ETH_SS_STATS, names->len = n;
    values->cmd = ETHTOOL_GSTATS, values->n_stats = n;
    if (ethtool(argv[2], names) != 0 || ethtool(argv[2], values) != 0) { perror("ETHTOOL_GSTATS"); return 1; }
    for (uint32_t i = 0; i < n; i++) {
        if (strncmp((char *)names->data + (size_t)i * ETH_GSTRING_LEN, argv[3], ETH_GSTRING_LEN) == 0) {
            printf("%llu\n", (unsigned long long)values->data[i]);
            return 0;
        }
    }
    fprintf(stderr, "%s: no statistic %s\n", argv[2], argv[3]);
    return 1;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc > 1 && strcmp(argv[1], "blast") == 0) rc = blast(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "probes") == 0) rc = probes(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "feature") == 0) rc = feature(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "stat") == 0) rc = stat(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: %s blast VIP RATE COUNT MAX_SECONDS [PROBE_PORT PROBE_EVERY_US]\n"
                        "       %s probes IFACE PORT MAX_SECONDS MAX_COUNT\n"
                        "       %s feature IFACE gro|tso [on|off]\n"
                        "       %s stat IFACE NAME\n", argv[0], argv[0], argv[0], argv[0]);
    return rc;
}
