// Next-hop resolution for the AF_PACKET send path: route lookups, the neighbour table and
// interface MAC addresses over rtnetlink. Control side only (never per packet).
#define _GNU_SOURCE
#include "CMaglevShim.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/fib_rules.h>

#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif

int cmaglev_packet_qdisc_bypass(void) { return PACKET_QDISC_BYPASS; }

int cmaglev_netlink_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -errno;
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    // Replies wait at most a second: a kernel that never answers must not hang the control loop.
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// Shared by every resolver in the process (several forwarders may run in one test process).
static unsigned int next_sequence = 1;

static void add_attribute(struct nlmsghdr *n, unsigned short type, const void *data, int length) {
    struct rtattr *a = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
    a->rta_type = type;
    a->rta_len = RTA_LENGTH(length);
    memcpy(RTA_DATA(a), data, length);
    n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int send_request(int fd, struct nlmsghdr *n) {
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    n->nlmsg_seq = __atomic_fetch_add(&next_sequence, 1, __ATOMIC_RELAXED);
    if (sendto(fd, n, n->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
    return (int)n->nlmsg_seq;
}

static int address_length(int family) { return family == AF_INET6 ? 16 : 4; }

int cmaglev_route_get(int fd, int family, const uint8_t *destination, int *oif, uint8_t *gateway, int *has_gateway) {
    struct {
        struct nlmsghdr n;
        struct rtmsg r;
        char attributes[64];
    } request;
    memset(&request, 0, sizeof request);
    request.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    request.n.nlmsg_type = RTM_GETROUTE;
    request.n.nlmsg_flags = NLM_F_REQUEST;
    request.r.rtm_family = (unsigned char)family;
    request.r.rtm_dst_len = (unsigned char)(address_length(family) * 8);
    add_attribute(&request.n, RTA_DST, destination, address_length(family));
    int seq = send_request(fd, &request.n);
    if (seq < 0) return seq;

    char buffer[8192] __attribute__((aligned(4)));
    *oif = 0;
    *has_gateway = 0;
    for (;;) {
        ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (unsigned int)got); h = NLMSG_NEXT(h, got)) {
            if ((int)h->nlmsg_seq != seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error ? e->error : -ENOENT;
            }
            if (h->nlmsg_type != RTM_NEWROUTE) continue;
            struct rtmsg *r = NLMSG_DATA(h);
            if (r->rtm_type != RTN_UNICAST) return -EHOSTUNREACH;
            int length = RTM_PAYLOAD(h);
            for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, length); a = RTA_NEXT(a, length)) {
                if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int)) memcpy(oif, RTA_DATA(a), sizeof(int));
                if (a->rta_type == RTA_GATEWAY && (int)RTA_PAYLOAD(a) == address_length(family)) {
                    memcpy(gateway, RTA_DATA(a), address_length(family));
                    *has_gateway = 1;
                }
            }
            return *oif > 0 ? 0 : -ENOENT;
        }
    }
}

int cmaglev_neighbour_dump(int fd, int family, struct cmaglev_neighbour *out, int max) {
    struct {
        struct nlmsghdr n;
        struct ndmsg m;
    } request;
    memset(&request, 0, sizeof request);
    request.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
    request.n.nlmsg_type = RTM_GETNEIGH;
    request.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.m.ndm_family = (unsigned char)family;
    int seq = send_request(fd, &request.n);
    if (seq < 0) return seq;

    char buffer[32768] __attribute__((aligned(4)));
    int count = 0;
    for (;;) {
        ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (unsigned int)got); h = NLMSG_NEXT(h, got)) {
            if ((int)h->nlmsg_seq != seq) continue;
            if (h->nlmsg_type == NLMSG_DONE) return count;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error ? e->error : count;
            }
            if (h->nlmsg_type != RTM_NEWNEIGH || count >= max) continue;
            struct ndmsg *m = NLMSG_DATA(h);
            if (m->ndm_family != family) continue;
            struct cmaglev_neighbour entry;
            memset(&entry, 0, sizeof entry);
            entry.ifindex = m->ndm_ifindex;
            entry.state = m->ndm_state;
            int length = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(struct ndmsg));
            int has_address = 0;
            for (struct rtattr *a = (struct rtattr *)((char *)m + NLMSG_ALIGN(sizeof(struct ndmsg))); RTA_OK(a, length);
                 a = RTA_NEXT(a, length)) {
                if (a->rta_type == NDA_DST && (int)RTA_PAYLOAD(a) == address_length(family)) {
                    memcpy(entry.address, RTA_DATA(a), address_length(family));
                    has_address = 1;
                }
                if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
                    memcpy(entry.mac, RTA_DATA(a), 6);
                    entry.has_mac = 1;
                }
            }
            if (has_address) out[count++] = entry;
        }
    }
}

int cmaglev_neighbour_use(int fd, int family, int ifindex, const uint8_t *address) {
    struct {
        struct nlmsghdr n;
        struct ndmsg m;
        char attributes[64];
    } request;
    memset(&request, 0, sizeof request);
    request.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
    request.n.nlmsg_type = RTM_NEWNEIGH;
    request.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
    request.m.ndm_family = (unsigned char)family;
    request.m.ndm_ifindex = ifindex;
    request.m.ndm_state = NUD_NONE;
    request.m.ndm_flags = NTF_USE;
    add_attribute(&request.n, NDA_DST, address, address_length(family));
    int seq = send_request(fd, &request.n);
    if (seq < 0) return seq;
    char buffer[4096] __attribute__((aligned(4)));
    for (;;) {
        ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (unsigned int)got); h = NLMSG_NEXT(h, got)) {
            if ((int)h->nlmsg_seq != seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
        }
    }
}

int cmaglev_interface_mac(int fd, int ifindex, uint8_t *mac, char *name) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_ifindex = ifindex;
    if (ioctl(fd, SIOCGIFNAME, &request) < 0) return -errno;
    memcpy(name, request.ifr_name, IFNAMSIZ);
    if (ioctl(fd, SIOCGIFHWADDR, &request) < 0) return -errno;
    if (request.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */) return -EAFNOSUPPORT;
    memcpy(mac, request.ifr_hwaddr.sa_data, 6);
    return 0;
}

void cmaglev_packet_address(void *out, int ifindex, int ipv6) {
    struct sockaddr_ll *a = out;
    memset(a, 0, sizeof *a);
    a->sll_family = AF_PACKET;
    a->sll_ifindex = ifindex;
    a->sll_protocol = htons(ipv6 ? ETH_P_IPV6 : ETH_P_IP);
}

// ---- Policy routing for GRE health probes (control side only).

// Waits for the kernel's acknowledgement of request `seq`: 0, or -errno.
static int wait_ack(int fd, int seq) {
    char buffer[4096] __attribute__((aligned(4)));
    for (;;) {
        ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (unsigned int)got); h = NLMSG_NEXT(h, got)) {
            if ((int)h->nlmsg_seq != seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error;
            }
        }
    }
}

int cmaglev_route_replace_dev(int fd, int family, const uint8_t *destination, int prefix_length, int ifindex, int table) {
    struct {
        struct nlmsghdr n;
        struct rtmsg r;
        char attributes[128];
    } request;
    memset(&request, 0, sizeof request);
    request.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    request.n.nlmsg_type = RTM_NEWROUTE;
    request.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    request.r.rtm_family = (unsigned char)family;
    request.r.rtm_dst_len = (unsigned char)prefix_length;
    request.r.rtm_table = RT_TABLE_UNSPEC;
    request.r.rtm_protocol = RTPROT_STATIC;
    request.r.rtm_scope = RT_SCOPE_LINK;
    request.r.rtm_type = RTN_UNICAST;
    add_attribute(&request.n, RTA_DST, destination, address_length(family));
    add_attribute(&request.n, RTA_OIF, &ifindex, sizeof ifindex);
    uint32_t t = (uint32_t)table;
    add_attribute(&request.n, RTA_TABLE, &t, sizeof t);
    int seq = send_request(fd, &request.n);
    if (seq < 0) return seq;
    return wait_ack(fd, seq);
}

int cmaglev_rule_fwmark(int fd, int add, int family, uint32_t mark, int table, int priority) {
    struct {
        struct nlmsghdr n;
        struct fib_rule_hdr r;
        char attributes[128];
    } request;
    memset(&request, 0, sizeof request);
    request.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct fib_rule_hdr));
    request.n.nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
    request.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
    request.r.family = (unsigned char)family;
    request.r.table = RT_TABLE_UNSPEC;
    request.r.action = FR_ACT_TO_TBL;
    uint32_t t = (uint32_t)table, p = (uint32_t)priority;
    add_attribute(&request.n, FRA_FWMARK, &mark, sizeof mark);
    add_attribute(&request.n, FRA_TABLE, &t, sizeof t);
    add_attribute(&request.n, FRA_PRIORITY, &p, sizeof p);
    int seq = send_request(fd, &request.n);
    if (seq < 0) return seq;
    return wait_ack(fd, seq);
}
