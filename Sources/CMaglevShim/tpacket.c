// TPACKET_V3 receive ring: set-up and the header fields the worker reads (linux/if_packet.h).
#include "CMaglevShim.h"
#include <errno.h>
#include <linux/if_packet.h>
#include <sys/mman.h>
#include <sys/socket.h>

void *cmaglev_tpacket_v3_rx_ring(int fd, unsigned int block_size, unsigned int block_count, unsigned int frame_size,
                                 unsigned int retire_ms, unsigned int reserve) {
    int version = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) return NULL;
    if (setsockopt(fd, SOL_PACKET, PACKET_RESERVE, &reserve, sizeof reserve) != 0) return NULL;
    struct tpacket_req3 req = {0};
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_count;
    req.tp_retire_blk_tov = retire_ms;
    req.tp_feature_req_word = 0;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) return NULL;
    void *ring = mmap(NULL, (size_t)block_size * block_count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (ring == MAP_FAILED) return NULL;
    return ring;
}

void cmaglev_tpacket_unmap(void *ring, size_t bytes) { munmap(ring, bytes); }

int cmaglev_tpacket_block_ready(const void *block) {
    const struct tpacket_block_desc *b = block;
    return (__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
}

unsigned int cmaglev_tpacket_block_packets(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.num_pkts;
}

unsigned int cmaglev_tpacket_block_first(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.offset_to_first_pkt;
}

void cmaglev_tpacket_block_release(void *block) {
    struct tpacket_block_desc *b = block;
    __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

struct cmaglev_tpacket_frame cmaglev_tpacket_frame(const void *packet) {
    const struct tpacket3_hdr *h = packet;
    struct cmaglev_tpacket_frame f = {h->tp_next_offset, h->tp_mac, h->tp_snaplen, h->tp_len,
                                      (h->tp_status & TP_STATUS_CSUMNOTREADY) != 0};
    return f;
}

// A TPACKET_V2 ring (`ring_option`: PACKET_RX_RING or PACKET_TX_RING) of `frame_count` slots of
// `frame_size` bytes, `block_frames` to a block, after `option` = `value` (PACKET_RESERVE or
// PACKET_QDISC_BYPASS); mapped, or NULL with errno set.
static void *tpacket_v2_ring(int fd, int option, unsigned int value, int ring_option, unsigned int frame_size,
                             unsigned int frame_count, unsigned int block_frames) {
    int version = TPACKET_V2;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) return NULL;
    if (setsockopt(fd, SOL_PACKET, option, &value, sizeof value) != 0) return NULL;
    struct tpacket_req req = {0};
    req.tp_block_size = frame_size * block_frames;
    req.tp_block_nr = frame_count / block_frames;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = req.tp_block_nr * block_frames;
    if (setsockopt(fd, SOL_PACKET, ring_option, &req, sizeof req) != 0) return NULL;
    void *ring = mmap(NULL, (size_t)req.tp_block_size * req.tp_block_nr, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, fd, 0);
    if (ring == MAP_FAILED) return NULL;
    return ring;
}

void *cmaglev_tpacket_v2_tx_ring(int fd, unsigned int frame_size, unsigned int frame_count, unsigned int block_frames) {
    return tpacket_v2_ring(fd, PACKET_QDISC_BYPASS, 1, PACKET_TX_RING, frame_size, frame_count, block_frames);
}

unsigned int cmaglev_tpacket2_tx_data_offset(void) { return TPACKET2_HDRLEN - sizeof(struct sockaddr_ll); }

int cmaglev_tpacket2_tx_state(void *slot) {
    struct tpacket2_hdr *h = slot;
    unsigned int status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (status == TP_STATUS_AVAILABLE) return 0;
    if (status & TP_STATUS_WRONG_FORMAT) {
        __atomic_store_n(&h->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
        return 2;
    }
    return 1;
}

void cmaglev_tpacket2_tx_queue(void *slot, unsigned int length) {
    struct tpacket2_hdr *h = slot;
    h->tp_len = length;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
}

void *cmaglev_tpacket_v2_rx_ring(int fd, unsigned int frame_size, unsigned int frame_count, unsigned int block_frames,
                                 unsigned int reserve) {
    return tpacket_v2_ring(fd, PACKET_RESERVE, reserve, PACKET_RX_RING, frame_size, frame_count, block_frames);
}

int cmaglev_tpacket2_rx_ready(const void *slot) {
    const struct tpacket2_hdr *h = slot;
    return (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
}

int cmaglev_tpacket2_rx_frame(const void *slot, struct cmaglev_tpacket_frame *frame) {
    const struct tpacket2_hdr *h = slot;
    unsigned int status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (!(status & TP_STATUS_USER)) return 0;
    frame->next_offset = 0;
    frame->mac = h->tp_mac;
    frame->snaplen = h->tp_snaplen;
    frame->len = h->tp_len;
    frame->checksum_not_ready = (status & TP_STATUS_CSUMNOTREADY) != 0;
    return 1;
}

void cmaglev_tpacket2_rx_release(void *slot) {
    struct tpacket2_hdr *h = slot;
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}
