// AF_XDP for `maglev forward --io xdp`: the XDP program that steers VIP traffic to the
// workers' XSK sockets (hand-assembled, loaded and attached through libbpf), and each worker's
// UMEM and rings (libxdp's xsk API). Swift sees only these batch-level calls: nothing here is
// called per packet. Each returns 0 (or a descriptor / count) on success and -errno on failure.
#ifndef CMAGLEV_XDP_H
#define CMAGLEV_XDP_H
#include <stddef.h>
#include <stdint.h>

/// What the program's VIP maps say about a destination.
enum {
    /// Any packet to it is ours (a VIP prefix).
    CMAGLEV_XDP_VIP = 1,
    /// Only GRE to it is ours (this forwarder's address in its group: redirected fragments).
    CMAGLEV_XDP_GRE = 2,
};

/// The program and its maps, for one interface.
struct cmaglev_xdp_program {
    int prog_fd;
    /// LPM tries: key {u32 prefix length, address bytes}, value u32 (CMAGLEV_XDP_*).
    int v4_map_fd;
    int v6_map_fd;
    /// XSKMAP: receive queue -> XSK socket.
    int xsk_map_fd;
    /// bpf_link of the attachment (closing it detaches), -1 before `attach`.
    int link_fd;
    /// 1: native (driver) mode, 0: generic (skb) mode.
    int native;
};

/// Creates the maps (room for `max_prefixes` per family and `max_queues` sockets) and loads the
/// program. The verifier's log (or the failing step) goes to `log`.
int cmaglev_xdp_load(struct cmaglev_xdp_program *p, unsigned int max_prefixes, unsigned int max_queues, char *log,
                     size_t log_size);
/// Attaches the program to `ifindex` through a bpf_link (detached when it closes, also when the
/// process dies). `mode` 0: native (driver) mode, else generic (skb) mode; 1: native only;
/// 2: generic only.
int cmaglev_xdp_attach(struct cmaglev_xdp_program *p, int ifindex, int mode);
/// Closes every descriptor of the program (detaching it).
void cmaglev_xdp_close(struct cmaglev_xdp_program *p);
/// Sets (inserts or replaces) one prefix. `address` has 4 or 16 bytes, network order.
int cmaglev_xdp_set_prefix(const struct cmaglev_xdp_program *p, int ipv6, const uint8_t *address,
                           unsigned int prefix_length, uint32_t kind);
/// Deletes one prefix.
int cmaglev_xdp_delete_prefix(const struct cmaglev_xdp_program *p, int ipv6, const uint8_t *address,
                              unsigned int prefix_length);
/// The keys of a family's map: each 4 bytes of prefix length (host order) then the address
/// (4 or 16 bytes), packed into `keys`; returns how many (at most `max`).
int cmaglev_xdp_list_prefixes(const struct cmaglev_xdp_program *p, int ipv6, uint8_t *keys, unsigned int max);
/// The interface's receive queues in use (ethtool channels: rx + combined; 1 when the driver
/// does not say).
int cmaglev_xdp_rx_queues(const char *ifname);
/// 1 when the interface merges received frames (GRO), 0 when not, -errno when it cannot say.
int cmaglev_xdp_gro_enabled(const char *ifname);
/// Puts a socket in the XSKMAP at `queue`.
int cmaglev_xdp_register_socket(const struct cmaglev_xdp_program *p, unsigned int queue, int xsk_fd);

/// One worker's AF_XDP socket and its UMEM (opaque).
struct cmaglev_xsk;

/// A received frame or a frame to send: its address in the UMEM and its length.
struct cmaglev_xsk_frame {
    uint64_t address;
    uint32_t length;
    uint32_t options;
};

struct cmaglev_xsk_counters {
    uint64_t rx_dropped;
    uint64_t rx_invalid;
    uint64_t tx_invalid;
    uint64_t rx_ring_full;
    uint64_t fill_ring_empty;
    uint64_t tx_ring_empty;
};

/// Maps a UMEM of `frame_count` frames of `frame_size` bytes (a power of two, 2048 or 4096)
/// and binds an XSK socket to `ifname`'s receive queue `queue`: zero-copy when the driver
/// offers it and `copy_only` is 0, else copy mode. Every frame starts in the fill ring. On
/// failure, `*out` is NULL and the failing step is written to `step`.
int cmaglev_xsk_open(struct cmaglev_xsk **out, const char *ifname, unsigned int queue, unsigned int frame_size,
                     unsigned int frame_count, int copy_only, char *step, size_t step_size);
/// A transmit-only socket on another interface's queue `queue`, sharing `owner`'s UMEM (its
/// own completion ring; frames sent through it come back there). Close it before its owner.
int cmaglev_xsk_open_transmit(struct cmaglev_xsk **out, const struct cmaglev_xsk *owner, const char *ifname,
                              unsigned int queue, char *step, size_t step_size);
void cmaglev_xsk_close(struct cmaglev_xsk *x);
int cmaglev_xsk_fd(const struct cmaglev_xsk *x);
/// Start of the UMEM (frame addresses are offsets from it).
void *cmaglev_xsk_umem(const struct cmaglev_xsk *x);
/// 1 when bound in zero-copy mode.
int cmaglev_xsk_zerocopy(const struct cmaglev_xsk *x);

/// Takes up to `max` received frames off the RX ring (their UMEM frames are the caller's until
/// given back with `refill` or sent).
unsigned int cmaglev_xsk_receive(struct cmaglev_xsk *x, struct cmaglev_xsk_frame *frames, unsigned int max);
/// Whether the RX ring has frames waiting.
int cmaglev_xsk_rx_ready(const struct cmaglev_xsk *x);
/// Gives frames (any address inside each frame) back to the fill ring; returns how many fit.
/// Wakes a zero-copy driver that asks for it.
unsigned int cmaglev_xsk_refill(struct cmaglev_xsk *x, const uint64_t *addresses, unsigned int count);
/// Queues frames on the TX ring; returns how many fit (the rest stay the caller's).
unsigned int cmaglev_xsk_queue(struct cmaglev_xsk *x, const struct cmaglev_xsk_frame *frames, unsigned int count);
/// Tells the kernel to send what is queued (copy mode sends in this call, 32 frames per
/// `sendto`, until a call takes nothing; zero-copy: one wake-up if the driver asks): returns the
/// number of `sendto` calls made, or -errno.
int cmaglev_xsk_kick(struct cmaglev_xsk *x);
/// Whether the TX ring holds frames the kernel has not taken yet.
int cmaglev_xsk_tx_pending(const struct cmaglev_xsk *x);
/// Wakes a zero-copy driver that stopped for want of fill frames (when it asks).
void cmaglev_xsk_wake_receive(struct cmaglev_xsk *x);
/// Takes up to `max` completed sends' addresses off the completion ring.
unsigned int cmaglev_xsk_completed(struct cmaglev_xsk *x, uint64_t *addresses, unsigned int max);
/// Waits up to `timeout_ms` for received frames (poll); wakes the driver if the fill ring asks.
void cmaglev_xsk_wait(struct cmaglev_xsk *x, int timeout_ms);
int cmaglev_xsk_counters(const struct cmaglev_xsk *x, struct cmaglev_xsk_counters *out);
#endif
