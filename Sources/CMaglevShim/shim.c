#define _GNU_SOURCE
#include "CMaglevShim.h"
#include <stdio.h>

unsigned int cmaglev_iosqe_fixed_file(void) { return IOSQE_FIXED_FILE; }
unsigned int cmaglev_iosqe_buffer_select(void) { return IOSQE_BUFFER_SELECT; }
unsigned int cmaglev_iosqe_io_link(void) { return IOSQE_IO_LINK; }

unsigned int cmaglev_peek_cqes(struct io_uring *ring, struct io_uring_cqe **out, unsigned int max) {
    unsigned int n = 0, head;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
        if (n == max) break;
        out[n++] = cqe;
    }
    return n;
}

int cmaglev_io_uring_disabled_sysctl(void) {
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (!f) return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
    return v;
}

int cmaglev_recvmmsg(int fd, struct cmaglev_mmsghdr *messages, unsigned int count, int flags) {
    _Static_assert(sizeof(struct cmaglev_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

int cmaglev_sendmmsg(int fd, struct cmaglev_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}
// ---- Live forwarding ----
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

void cmaglev_sqe_set_buf_group(struct io_uring_sqe *sqe, uint16_t group) { sqe->buf_group = group; }

int cmaglev_eth_p_all(void) { return ETH_P_ALL; }
int cmaglev_packet_fanout(void) { return PACKET_FANOUT; }
int cmaglev_packet_fanout_hash(void) { return PACKET_FANOUT_HASH; }
int cmaglev_packet_ignore_outgoing(void) { return PACKET_IGNORE_OUTGOING; }
int cmaglev_packet_outgoing(void) { return PACKET_OUTGOING; }
int cmaglev_skf_ad_pkttype(void) { return SKF_AD_OFF + SKF_AD_PKTTYPE; }
int cmaglev_sock_nonblock(void) { return SOCK_NONBLOCK; }
int cmaglev_msg_trunc(void) { return MSG_TRUNC; }
int cmaglev_msg_dontwait(void) { return MSG_DONTWAIT; }

_Static_assert(sizeof(struct cmaglev_bpf_insn) == sizeof(struct sock_filter), "sock_filter layout");

int cmaglev_attach_filter(int fd, const struct cmaglev_bpf_insn *insns, unsigned short count) {
    struct sock_fprog prog = {.len = count, .filter = (struct sock_filter *)insns};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

int cmaglev_packet_bind(int fd, int ifindex, int protocol) {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons((unsigned short)protocol);
    sll.sll_ifindex = ifindex;
    return bind(fd, (struct sockaddr *)&sll, sizeof(sll));
}

int cmaglev_packet_statistics(int fd, unsigned int *packets, unsigned int *drops) {
    struct tpacket_stats st;
    socklen_t len = sizeof(st);
    int rc = getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len);
    if (rc == 0) {
        *packets = st.tp_packets;
        *drops = st.tp_drops;
    }
    return rc;
}

unsigned int cmaglev_sockaddr_ll_size(void) { return sizeof(struct sockaddr_ll); }

int cmaglev_packet_auxdata(void) { return PACKET_AUXDATA; }
unsigned int cmaglev_packet_auxdata_space(void) { return CMSG_SPACE(sizeof(struct tpacket_auxdata)); }

int cmaglev_packet_checksum_not_ready(const void *control, size_t length) {
    // A msghdr only so that CMSG_FIRSTHDR / CMSG_NXTHDR can walk the area with their own
    // bounds checks; nothing is received through it.
    struct msghdr m;
    memset(&m, 0, sizeof(m));
    m.msg_control = (void *)control;
    m.msg_controllen = length;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
        if (c->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata))) return 0;
        struct tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        return (aux.tp_status & TP_STATUS_CSUMNOTREADY) != 0;
    }
    return 0;
}

int cmaglev_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

int cmaglev_allowed_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int cmaglev_allowed_cpu(int n) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set)) {
            if (n == 0) return cpu;
            n--;
        }
    }
    return -1;
}

int cmaglev_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }


