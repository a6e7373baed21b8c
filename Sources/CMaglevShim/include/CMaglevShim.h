// Macros and enum-defined flags that Swift cannot import from liburing and glibc,
// wrapped as prefixed functions. Keep this file tiny.
#ifndef CMAGLEV_SHIM_H
#define CMAGLEV_SHIM_H
// features.h first, before liburing.h defines _XOPEN_SOURCE and _GNU_SOURCE: glibc then
// declares its types (fd_set's fields among them) exactly as Swift's own Glibc module sees
// them. Otherwise clang finds two different definitions of fd_set and fails the build
// ("fds_bits ... is not present in definition of fd_set"), depending on build order.
#include <features.h>
#include <liburing.h>
#include <sys/socket.h>

/// `struct mmsghdr` and `recvmmsg` are GNU extensions, hidden from Swift by the strict feature
/// set above: the same layout, and a wrapper compiled with _GNU_SOURCE.
struct cmaglev_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
int cmaglev_recvmmsg(int fd, struct cmaglev_mmsghdr *messages, unsigned int count, int flags);
/// `sendmmsg` (GNU-only as well); returns how many messages the kernel took, or -1 with errno.
int cmaglev_sendmmsg(int fd, struct cmaglev_mmsghdr *messages, unsigned int count, int flags);
#include <stdint.h>

/// IOSQE_* flags are enum-defined macros in liburing; Swift sees none of them.
unsigned int cmaglev_iosqe_fixed_file(void);
unsigned int cmaglev_iosqe_buffer_select(void);
unsigned int cmaglev_iosqe_io_link(void);

/// io_uring_for_each_cqe is a function-like macro; this walks the ready CQEs into `out`
/// (at most `max`) and returns how many it stored, without advancing the ring.
unsigned int cmaglev_peek_cqes(struct io_uring *ring, struct io_uring_cqe **out, unsigned int max);

/// The kernel's io_uring_disabled sysctl (0 enabled, 1 root only, 2 disabled); -1 if unreadable.
int cmaglev_io_uring_disabled_sysctl(void);
/// Backend-side GRE decapsulator (`maglev decap`): TUN device, link flags, stop signals.
/// Each returns 0 or a file descriptor on success and -errno on failure.

/// Opens /dev/net/tun and attaches it to the TUN device `name` (IFF_TUN | IFF_NO_PI), creating
/// the device in the caller's network namespace. The kernel's chosen name is written to
/// `name_out` (at least 16 bytes).
int cmaglev_decap_tun_open(const char *name, char *name_out);

/// Sets IFF_UP on the interface `name` (SIOCGIFFLAGS / SIOCSIFFLAGS through a datagram socket).
int cmaglev_decap_link_up(const char *name);

/// Installs SIGINT and SIGTERM handlers (no SA_RESTART, so blocking calls return EINTR) that set
/// a flag; a second signal restores the default action and re-raises it.
int cmaglev_decap_install_stop_handlers(void);

/// Whether SIGINT or SIGTERM arrived since the handlers were installed.
int cmaglev_decap_stop_requested(void);

/// Moves the calling thread into the network namespace at `path` (e.g. /var/run/netns/NAME).
int cmaglev_decap_enter_netns(const char *path);


// ---- Live forwarding: constants, struct layouts and _GNU_SOURCE-only calls that Swift's Glibc
// module does not expose. MaglevLinux wraps each of these with errno handling.

/// sqe->buf_group sits in a packed anonymous union that Swift does not import.
void cmaglev_sqe_set_buf_group(struct io_uring_sqe *sqe, uint16_t group);

/// Kernel constants (linux/if_ether.h, linux/if_packet.h, linux/filter.h, sched.h).
int cmaglev_eth_p_all(void);
int cmaglev_packet_fanout(void);
int cmaglev_packet_fanout_hash(void);
int cmaglev_packet_ignore_outgoing(void);
int cmaglev_packet_outgoing(void);
int cmaglev_skf_ad_pkttype(void);
int cmaglev_sock_nonblock(void);
int cmaglev_msg_trunc(void);
int cmaglev_msg_dontwait(void);

/// One classic BPF instruction and a program, laid out as `struct sock_filter` / `sock_fprog`.
struct cmaglev_bpf_insn {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
};
/// Attaches a classic BPF program (SO_ATTACH_FILTER); returns setsockopt's result (errno set).
int cmaglev_attach_filter(int fd, const struct cmaglev_bpf_insn *insns, unsigned short count);

/// Binds an AF_PACKET socket to `ifindex` for `protocol` (host order, e.g. ETH_P_ALL); returns
/// bind's result (errno set).
int cmaglev_packet_bind(int fd, int ifindex, int protocol);
/// PACKET_STATISTICS: frames seen and dropped (receive queue full) since the last call; the
/// kernel resets them on read. Returns getsockopt's result (errno set).
int cmaglev_packet_statistics(int fd, unsigned int *packets, unsigned int *drops);
/// The size of `struct sockaddr_ll`.
unsigned int cmaglev_sockaddr_ll_size(void);

/// PACKET_AUXDATA (SOL_PACKET option): each received frame carries a `struct tpacket_auxdata`
/// control message whose status says, among others, whether the frame's TCP/UDP checksum is
/// unfinished (CHECKSUM_PARTIAL on the sender's side).
int cmaglev_packet_auxdata(void);
/// CMSG_SPACE(sizeof(struct tpacket_auxdata)): control bytes to reserve per frame (40 on 64-bit).
unsigned int cmaglev_packet_auxdata_space(void);
/// Whether the control messages at `control` (`length` bytes, as the kernel wrote them) hold a
/// PACKET_AUXDATA message whose status has TP_STATUS_CSUMNOTREADY. 0 when there is none
/// (auxdata off, or control space cut short). No system call; reads only `control`.
int cmaglev_packet_checksum_not_ready(const void *control, size_t length);

/// Pins the calling thread to one CPU (sched_setaffinity with CPU_SET); 0 or -1 with errno.
int cmaglev_pin_to_cpu(int cpu);
/// How many CPUs this thread may run on (sched_getaffinity + CPU_COUNT), or -1.
int cmaglev_allowed_cpu_count(void);
/// The n-th CPU (0-based) this thread may run on, or -1.
int cmaglev_allowed_cpu(int n);

/// Moves the calling thread into the network namespace `fd` refers to (setns CLONE_NEWNET).
int cmaglev_setns_net(int fd);



// ---- Next hops for the AF_PACKET send path (nexthop.c): control side only.

/// PACKET_QDISC_BYPASS (linux/if_packet.h).
int cmaglev_packet_qdisc_bypass(void);
/// Opens and binds a NETLINK_ROUTE socket in the caller's network namespace (replies wait at
/// most 1 s). Returns the descriptor or -errno.
int cmaglev_netlink_open(void);
/// Adds or replaces the route `destination/prefix_length dev ifindex` in routing table `table`
/// (RTM_NEWROUTE, scope link). 0, or -errno.
int cmaglev_route_replace_dev(int fd, int family, const uint8_t *destination, int prefix_length, int ifindex, int table);
/// Adds (add = 1) or deletes (add = 0) the rule `fwmark MARK lookup TABLE priority PRIORITY`
/// (RTM_NEWRULE / RTM_DELRULE). 0, or -errno (-EEXIST when adding a rule that exists).
int cmaglev_rule_fwmark(int fd, int add, int family, uint32_t mark, int table, int priority);
/// RTM_GETROUTE for one destination (4 or 16 bytes by `family`): the output interface and,
/// when the route has one, the gateway. 0, or -errno (-EHOSTUNREACH for a route that is not
/// unicast: local, blackhole, unreachable).
int cmaglev_route_get(int fd, int family, const uint8_t *destination, int *oif, uint8_t *gateway, int *has_gateway);
/// One entry of the kernel's neighbour table.
struct cmaglev_neighbour {
    int ifindex;
    uint16_t state;  // NUD_* bits
    uint8_t has_mac;
    uint8_t mac[6];
    uint8_t address[16];
};
/// Dumps the neighbour table of `family` (RTM_GETNEIGH, NLM_F_DUMP) into `out` (at most
/// `max` entries). Returns the count or -errno.
int cmaglev_neighbour_dump(int fd, int family, struct cmaglev_neighbour *out, int max);
/// Tells the kernel a neighbour is in use (RTM_NEWNEIGH with NTF_USE): it starts resolving a
/// missing entry and re-confirms a stale one, as if it were sending to it. 0 or -errno.
int cmaglev_neighbour_use(int fd, int family, int ifindex, const uint8_t *address);
/// The interface's name (at least IFNAMSIZ bytes) and Ethernet MAC address (SIOCGIFNAME,
/// SIOCGIFHWADDR through `fd`). 0, or -errno (-EAFNOSUPPORT: not Ethernet).
int cmaglev_interface_mac(int fd, int ifindex, uint8_t *mac, char *name);
/// Fills a `struct sockaddr_ll` (at least 20 bytes at `out`) for sending IPv4 or IPv6 frames out
/// of interface `ifindex`.
void cmaglev_packet_address(void *out, int ifindex, int ipv6);

// ---- TPACKET_V3 receive ring (`maglev forward --io ring`).

/// Puts the packet socket `fd` (not yet bound) in TPACKET_V3 with `reserve` bytes reserved in
/// front of each frame, sets up a receive ring of `block_count` blocks of `block_size` bytes
/// (frames at most `frame_size`, a block retired after `retire_ms` even when not full) and maps
/// it. Returns the mapping (block_count * block_size bytes), or NULL with errno set.
void *cmaglev_tpacket_v3_rx_ring(int fd, unsigned int block_size, unsigned int block_count, unsigned int frame_size,
                                 unsigned int retire_ms, unsigned int reserve);
/// Unmaps a ring from `cmaglev_tpacket_v3_rx_ring`.
void cmaglev_tpacket_unmap(void *ring, size_t bytes);
/// A block's header: whether user space owns it (TP_STATUS_USER, read with acquire order),
/// its packet count and the offset of its first packet; handing it back to the kernel
/// (TP_STATUS_KERNEL, with release order).
int cmaglev_tpacket_block_ready(const void *block);
unsigned int cmaglev_tpacket_block_packets(const void *block);
unsigned int cmaglev_tpacket_block_first(const void *block);
void cmaglev_tpacket_block_release(void *block);
/// One packet's header (`struct tpacket3_hdr` at `packet`): the offset of the next packet in
/// its block, of the frame (tp_mac), its captured and wire lengths, and whether its checksum
/// is not finished (TP_STATUS_CSUMNOTREADY).
struct cmaglev_tpacket_frame {
    uint32_t next_offset;
    uint32_t mac;
    uint32_t snaplen;
    uint32_t len;
    int checksum_not_ready;
};
struct cmaglev_tpacket_frame cmaglev_tpacket_frame(const void *packet);

// ---- TPACKET_V2 transmit ring (`--io ring`, frames path).

/// Puts the packet socket `fd` (not yet bound) in TPACKET_V2 with `PACKET_QDISC_BYPASS`, sets up
/// a transmit ring of `frame_count` frames of `frame_size` bytes (one block per
/// `block_frames` frames) and maps it. Returns the mapping, or NULL with errno set.
void *cmaglev_tpacket_v2_tx_ring(int fd, unsigned int frame_size, unsigned int frame_count, unsigned int block_frames);
/// Where a TX frame's data begins in its slot (TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)).
unsigned int cmaglev_tpacket2_tx_data_offset(void);
/// A TX slot's state: 0 free (TP_STATUS_AVAILABLE), 1 queued or being sent, 2 refused by the
/// kernel (TP_STATUS_WRONG_FORMAT; the slot is freed by this call).
int cmaglev_tpacket2_tx_state(void *slot);
/// Marks the slot's `length` bytes for sending (TP_STATUS_SEND_REQUEST, release order).
void cmaglev_tpacket2_tx_queue(void *slot, unsigned int length);

// ---- TPACKET_V2 receive ring (`--io ring-frames`): one fixed slot per frame.

/// Puts the packet socket `fd` (not yet bound) in TPACKET_V2 with `reserve` bytes reserved in
/// front of each frame and a receive ring of `frame_count` slots of `frame_size` bytes (blocks
/// of `block_frames` slots), and maps it. Returns the mapping, or NULL with errno set.
void *cmaglev_tpacket_v2_rx_ring(int fd, unsigned int frame_size, unsigned int frame_count, unsigned int block_frames,
                                 unsigned int reserve);
/// Slot `slot` of a V2 receive ring: 1 and `*frame` filled when user space owns it (read with
/// acquire order), else 0.
int cmaglev_tpacket2_rx_frame(const void *slot, struct cmaglev_tpacket_frame *frame);
/// Whether user space owns V2 receive slot `slot` (its status only, acquire order).
int cmaglev_tpacket2_rx_ready(const void *slot);
/// Hands a V2 receive slot back to the kernel (release order).
void cmaglev_tpacket2_rx_release(void *slot);

#endif
