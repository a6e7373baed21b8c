// The XDP program of `maglev forward --io xdp` and each worker's AF_XDP socket. See the header.
#include "CMaglevXDP.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

// ---- A small eBPF assembler: instructions with jumps to labels, resolved at the end.

enum { MAX_INSNS = 96, MAX_LABELS = 8 };

struct assembler {
    struct bpf_insn insns[MAX_INSNS];
    int count;
    int label_at[MAX_LABELS];
    int jump_label[MAX_INSNS];  // label + 1 for a jump to resolve, else 0
};

static void emit(struct assembler *a, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    struct bpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
    a->jump_label[a->count] = 0;
    a->insns[a->count++] = i;
}

/// A conditional (or, with BPF_JA, unconditional) jump on `dst` against `imm` to `label`.
static void jump(struct assembler *a, uint8_t op, uint8_t dst, int32_t imm, int label) {
    emit(a, BPF_JMP | op | BPF_K, dst, 0, 0, imm);
    a->jump_label[a->count - 1] = label + 1;
}

/// `if dst > src goto label` (packet bounds checks).
static void jump_greater_reg(struct assembler *a, uint8_t dst, uint8_t src, int label) {
    emit(a, BPF_JMP | BPF_JGT | BPF_X, dst, src, 0, 0);
    a->jump_label[a->count - 1] = label + 1;
}

static void mark(struct assembler *a, int label) { a->label_at[label] = a->count; }

/// `dst = map` (a 64-bit immediate holding the map's descriptor).
static void load_map(struct assembler *a, uint8_t dst, int map_fd) {
    emit(a, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd);
    emit(a, 0, 0, 0, 0, 0);
}

static void resolve(struct assembler *a) {
    for (int i = 0; i < a->count; i++) {
        if (a->jump_label[i]) a->insns[i].off = (int16_t)(a->label_at[a->jump_label[i] - 1] - (i + 1));
    }
}

enum { L_PASS, L_V4, L_V6, L_LOOKED, L_REDIRECT };
enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

/// Untagged IPv4 / IPv6 whose destination is in a VIP prefix (or GRE to a group address) goes to
/// the XSK socket of the receive queue (XDP_PASS when that queue has none); everything else
/// passes to the kernel untouched.
static void assemble(struct assembler *a, const struct cmaglev_xdp_program *p) {
    memset(a, 0, sizeof *a);
    emit(a, BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0);       // r6 = ctx
    emit(a, BPF_LDX | BPF_MEM | BPF_W, R2, R6, 0, 0);         // r2 = data
    emit(a, BPF_LDX | BPF_MEM | BPF_W, R3, R6, 4, 0);         // r3 = data_end
    emit(a, BPF_ALU64 | BPF_MOV | BPF_X, R4, R2, 0, 0);
    emit(a, BPF_ALU64 | BPF_ADD | BPF_K, R4, 0, 0, 14);
    jump_greater_reg(a, R4, R3, L_PASS);                       // no Ethernet header
    emit(a, BPF_LDX | BPF_MEM | BPF_H, R5, R2, 12, 0);        // ethertype (network order)
    jump(a, BPF_JEQ, R5, 0x0008, L_V4);
    jump(a, BPF_JEQ, R5, 0xDD86, L_V6);
    jump(a, BPF_JA, 0, 0, L_PASS);

    mark(a, L_V4);
    emit(a, BPF_ALU64 | BPF_MOV | BPF_X, R4, R2, 0, 0);
    emit(a, BPF_ALU64 | BPF_ADD | BPF_K, R4, 0, 0, 34);
    jump_greater_reg(a, R4, R3, L_PASS);                       // no IPv4 header
    emit(a, BPF_LDX | BPF_MEM | BPF_B, R7, R2, 23, 0);        // r7 = protocol
    emit(a, BPF_LDX | BPF_MEM | BPF_W, R5, R2, 30, 0);        // destination
    emit(a, BPF_STX | BPF_MEM | BPF_W, R10, R5, -4, 0);
    emit(a, BPF_ST | BPF_MEM | BPF_W, R10, 0, -8, 32);        // key: /32, destination
    load_map(a, R1, p->v4_map_fd);
    emit(a, BPF_ALU64 | BPF_MOV | BPF_X, R2, R10, 0, 0);
    emit(a, BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, -8);
    emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
    jump(a, BPF_JA, 0, 0, L_LOOKED);

    mark(a, L_V6);
    emit(a, BPF_ALU64 | BPF_MOV | BPF_X, R4, R2, 0, 0);
    emit(a, BPF_ALU64 | BPF_ADD | BPF_K, R4, 0, 0, 54);
    jump_greater_reg(a, R4, R3, L_PASS);                       // no IPv6 header
    emit(a, BPF_LDX | BPF_MEM | BPF_B, R7, R2, 20, 0);        // r7 = next header
    for (int w = 0; w < 4; w++) {
        emit(a, BPF_LDX | BPF_MEM | BPF_W, R5, R2, (int16_t)(38 + 4 * w), 0);
        emit(a, BPF_STX | BPF_MEM | BPF_W, R10, R5, (int16_t)(-16 + 4 * w), 0);
    }
    emit(a, BPF_ST | BPF_MEM | BPF_W, R10, 0, -20, 128);      // key: /128, destination
    load_map(a, R1, p->v6_map_fd);
    emit(a, BPF_ALU64 | BPF_MOV | BPF_X, R2, R10, 0, 0);
    emit(a, BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, -20);
    emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);

    mark(a, L_LOOKED);
    jump(a, BPF_JEQ, R0, 0, L_PASS);                           // not ours
    emit(a, BPF_LDX | BPF_MEM | BPF_W, R1, R0, 0, 0);         // kind
    jump(a, BPF_JSET, R1, CMAGLEV_XDP_VIP, L_REDIRECT);
    jump(a, BPF_JNE, R7, 47, L_PASS);                          // GRE only from here
    jump(a, BPF_JSET, R1, CMAGLEV_XDP_GRE, L_REDIRECT);
    jump(a, BPF_JA, 0, 0, L_PASS);

    mark(a, L_REDIRECT);
    emit(a, BPF_LDX | BPF_MEM | BPF_W, R2, R6, 16, 0);        // rx_queue_index
    load_map(a, R1, p->xsk_map_fd);
    emit(a, BPF_ALU64 | BPF_MOV | BPF_K, R3, 0, 0, XDP_PASS); // no socket on this queue: pass
    emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect_map);
    emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

    mark(a, L_PASS);
    emit(a, BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, XDP_PASS);
    emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    resolve(a);
}

static int quiet(enum libbpf_print_level level, const char *format, va_list args) {
    (void)level;
    (void)format;
    (void)args;
    return 0;
}

static void say(char *log, size_t size, const char *what, int err) {
    if (log && size) snprintf(log, size, "%s: %s", what, strerror(err));
}

int cmaglev_xdp_load(struct cmaglev_xdp_program *p, unsigned int max_prefixes, unsigned int max_queues, char *log,
                     size_t log_size) {
    libbpf_set_print(quiet);
    p->prog_fd = p->v4_map_fd = p->v6_map_fd = p->xsk_map_fd = p->link_fd = -1;
    p->native = 0;
    LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
    int r = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "maglev_vips4", 8, 4, max_prefixes, &lpm);
    if (r < 0) goto fail_map;
    p->v4_map_fd = r;
    r = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "maglev_vips6", 20, 4, max_prefixes, &lpm);
    if (r < 0) goto fail_map;
    p->v6_map_fd = r;
    r = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "maglev_xsks", 4, 4, max_queues, NULL);
    if (r < 0) goto fail_map;
    p->xsk_map_fd = r;

    struct assembler a;
    assemble(&a, p);
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = (unsigned int)log_size, .log_level = 0);
    r = bpf_prog_load(BPF_PROG_TYPE_XDP, "maglev_vips", "GPL", a.insns, (size_t)a.count, &opts);
    if (r < 0 && log && log_size) {
        // Again with the verifier's log, for the error message.
        opts.log_level = 1;
        log[0] = 0;
        int again = bpf_prog_load(BPF_PROG_TYPE_XDP, "maglev_vips", "GPL", a.insns, (size_t)a.count, &opts);
        if (again >= 0) close(again);
        if (!log[0]) say(log, log_size, "bpf_prog_load(XDP)", -r);
    }
    if (r < 0) {
        cmaglev_xdp_close(p);
        return r;
    }
    p->prog_fd = r;
    return 0;
fail_map:
    say(log, log_size, "bpf_map_create", -r);
    cmaglev_xdp_close(p);
    return r;
}

int cmaglev_xdp_attach(struct cmaglev_xdp_program *p, int ifindex, int mode) {
    int r = -EINVAL;
    if (mode != 2) {
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
        r = bpf_link_create(p->prog_fd, ifindex, BPF_XDP, &opts);
        p->native = 1;
    }
    if (r < 0 && mode != 1) {
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_SKB_MODE);
        r = bpf_link_create(p->prog_fd, ifindex, BPF_XDP, &opts);
        p->native = 0;
    }
    if (r < 0) return r;
    p->link_fd = r;
    return 0;
}

void cmaglev_xdp_close(struct cmaglev_xdp_program *p) {
    int *fds[] = {&p->link_fd, &p->prog_fd, &p->xsk_map_fd, &p->v6_map_fd, &p->v4_map_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (*fds[i] >= 0) close(*fds[i]);
        *fds[i] = -1;
    }
}

static void make_key(uint8_t *key, int ipv6, const uint8_t *address, unsigned int prefix_length) {
    uint32_t length = prefix_length;
    memcpy(key, &length, 4);
    memcpy(key + 4, address, ipv6 ? 16 : 4);
}

int cmaglev_xdp_set_prefix(const struct cmaglev_xdp_program *p, int ipv6, const uint8_t *address,
                           unsigned int prefix_length, uint32_t kind) {
    uint8_t key[20];
    make_key(key, ipv6, address, prefix_length);
    return bpf_map_update_elem(ipv6 ? p->v6_map_fd : p->v4_map_fd, key, &kind, BPF_ANY);
}

int cmaglev_xdp_delete_prefix(const struct cmaglev_xdp_program *p, int ipv6, const uint8_t *address,
                              unsigned int prefix_length) {
    uint8_t key[20];
    make_key(key, ipv6, address, prefix_length);
    return bpf_map_delete_elem(ipv6 ? p->v6_map_fd : p->v4_map_fd, key);
}

int cmaglev_xdp_list_prefixes(const struct cmaglev_xdp_program *p, int ipv6, uint8_t *keys, unsigned int max) {
    int fd = ipv6 ? p->v6_map_fd : p->v4_map_fd;
    size_t size = ipv6 ? 20 : 8;
    unsigned int n = 0;
    const void *previous = NULL;
    while (n < max) {
        int r = bpf_map_get_next_key(fd, previous, keys + n * size);
        if (r == -ENOENT) break;
        if (r < 0) return r;
        previous = keys + n * size;
        n++;
    }
    return (int)n;
}

int cmaglev_xdp_register_socket(const struct cmaglev_xdp_program *p, unsigned int queue, int xsk_fd) {
    return bpf_map_update_elem(p->xsk_map_fd, &queue, &xsk_fd, BPF_ANY);
}

// ---- One worker's socket.

struct cmaglev_xsk {
    struct xsk_ring_prod fill;
    struct xsk_ring_cons completion;
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    struct xsk_umem *umem;
    struct xsk_socket *socket;
    void *area;
    size_t area_size;
    uint64_t frame_mask;
    int zerocopy;
    /// A transmit-only socket on another interface shares its owner's UMEM (not its own).
    int shares_umem;
};

int cmaglev_xsk_open(struct cmaglev_xsk **out, const char *ifname, unsigned int queue, unsigned int frame_size,
                     unsigned int frame_count, int copy_only, char *step, size_t step_size) {
    *out = NULL;
    libbpf_set_print(quiet);
    libxdp_set_print((libxdp_print_fn_t)quiet);
    struct cmaglev_xsk *x = calloc(1, sizeof *x);
    if (!x) return -ENOMEM;
    x->area_size = (size_t)frame_size * frame_count;
    x->frame_mask = ~(uint64_t)(frame_size - 1);
    x->area = mmap(NULL, x->area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (x->area == MAP_FAILED) {
        int e = errno;
        free(x);
        say(step, step_size, "mmap(UMEM)", e);
        return -e;
    }
    struct xsk_umem_config umem_config = {
        .fill_size = frame_count, .comp_size = frame_count, .frame_size = frame_size, .frame_headroom = 0, .flags = 0};
    int r = xsk_umem__create(&x->umem, x->area, x->area_size, &x->fill, &x->completion, &umem_config);
    if (r) {
        say(step, step_size, "xsk_umem__create", -r);
        goto fail;
    }
    struct xsk_socket_config config = {
        .rx_size = frame_count / 2,
        .tx_size = frame_count / 2,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = 0,
        .bind_flags = XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY,
    };
    r = copy_only ? -EOPNOTSUPP : xsk_socket__create(&x->socket, ifname, queue, x->umem, &x->rx, &x->tx, &config);
    if (r) {
        config.bind_flags = XDP_USE_NEED_WAKEUP | XDP_COPY;
        r = xsk_socket__create(&x->socket, ifname, queue, x->umem, &x->rx, &x->tx, &config);
        if (r) {
            say(step, step_size, "xsk_socket__create (bind)", -r);
            goto fail;
        }
    }
    struct xdp_options options = {0};
    socklen_t length = sizeof options;
    if (getsockopt(xsk_socket__fd(x->socket), SOL_XDP, XDP_OPTIONS, &options, &length) == 0)
        x->zerocopy = (options.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    // Every frame starts in the fill ring.
    uint32_t index = 0;
    if (xsk_ring_prod__reserve(&x->fill, frame_count, &index) != frame_count) {
        r = -ENOSPC;
        say(step, step_size, "filling the fill ring", ENOSPC);
        goto fail;
    }
    for (unsigned int i = 0; i < frame_count; i++) *xsk_ring_prod__fill_addr(&x->fill, index + i) = (uint64_t)i * frame_size;
    xsk_ring_prod__submit(&x->fill, frame_count);
    *out = x;
    return 0;
fail:
    cmaglev_xsk_close(x);
    return r;
}

int cmaglev_xsk_open_transmit(struct cmaglev_xsk **out, const struct cmaglev_xsk *owner, const char *ifname,
                              unsigned int queue, char *step, size_t step_size) {
    *out = NULL;
    struct cmaglev_xsk *x = calloc(1, sizeof *x);
    if (!x) return -ENOMEM;
    x->shares_umem = 1;
    x->umem = owner->umem;
    x->area = owner->area;
    x->area_size = owner->area_size;
    x->frame_mask = owner->frame_mask;
    // A shared-UMEM bind takes its owner's mode (the kernel refuses flags with XDP_SHARED_UMEM):
    // a zero-copy owner would force zero-copy on the other device, whose TX needs a native XDP
    // program there and whose receive side would draw on this socket's empty fill ring.
    // Copy mode only.
    int r = -EOPNOTSUPP;
    if (owner->zerocopy) {
        say(step, step_size, "transmit sockets sharing a zero-copy UMEM", EOPNOTSUPP);
        free(x);
        return r;
    }
    unsigned int size = (unsigned int)(owner->area_size / (~owner->frame_mask + 1)) / 2;
    struct xsk_socket_config config = {
        .rx_size = 0,
        .tx_size = size,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = 0,
        .bind_flags = XDP_USE_NEED_WAKEUP,
    };
    // Its own fill and completion rings (another device); nothing is received on it, so the
    // fill ring stays empty.
    r = xsk_socket__create_shared(&x->socket, ifname, queue, owner->umem, NULL, &x->tx, &x->fill, &x->completion,
                                  &config);
    if (r) {
        say(step, step_size, "xsk_socket__create_shared (transmit)", -r);
        x->socket = NULL;
        cmaglev_xsk_close(x);
        return r;
    }
    struct xdp_options options = {0};
    socklen_t length = sizeof options;
    if (getsockopt(xsk_socket__fd(x->socket), SOL_XDP, XDP_OPTIONS, &options, &length) == 0)
        x->zerocopy = (options.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    *out = x;
    return 0;
}

void cmaglev_xsk_close(struct cmaglev_xsk *x) {
    if (!x) return;
    if (x->socket) xsk_socket__delete(x->socket);
    if (!x->shares_umem) {
        if (x->umem) xsk_umem__delete(x->umem);
        if (x->area && x->area != MAP_FAILED) munmap(x->area, x->area_size);
    }
    free(x);
}

int cmaglev_xsk_fd(const struct cmaglev_xsk *x) { return xsk_socket__fd(x->socket); }
void *cmaglev_xsk_umem(const struct cmaglev_xsk *x) { return x->area; }
int cmaglev_xsk_zerocopy(const struct cmaglev_xsk *x) { return x->zerocopy; }

unsigned int cmaglev_xsk_receive(struct cmaglev_xsk *x, struct cmaglev_xsk_frame *frames, unsigned int max) {
    uint32_t index = 0;
    unsigned int n = xsk_ring_cons__peek(&x->rx, max, &index);
    for (unsigned int i = 0; i < n; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, index + i);
        frames[i].address = d->addr;
        frames[i].length = d->len;
        frames[i].options = d->options;
    }
    if (n) xsk_ring_cons__release(&x->rx, n);
    return n;
}

int cmaglev_xsk_rx_ready(const struct cmaglev_xsk *x) {
    return __atomic_load_n(x->rx.producer, __ATOMIC_ACQUIRE) != *x->rx.consumer;
}

void cmaglev_xsk_wake_receive(struct cmaglev_xsk *x) {
    // A zero-copy driver that ran out of fill frames stopped and asks to be woken.
    if (x->zerocopy && xsk_ring_prod__needs_wakeup(&x->fill))
        recvfrom(xsk_socket__fd(x->socket), NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

unsigned int cmaglev_xsk_refill(struct cmaglev_xsk *x, const uint64_t *addresses, unsigned int count) {
    if (!count) return 0;
    uint32_t index = 0;
    unsigned int n = xsk_ring_prod__reserve(&x->fill, count, &index);
    if (n != count) {
        // All or nothing (reserve takes all or none): try what fits, one at a time.
        n = 0;
        while (n < count && xsk_ring_prod__reserve(&x->fill, 1, &index) == 1) {
            *xsk_ring_prod__fill_addr(&x->fill, index) = addresses[n] & x->frame_mask;
            xsk_ring_prod__submit(&x->fill, 1);
            n++;
        }
    } else {
        for (unsigned int i = 0; i < n; i++)
            *xsk_ring_prod__fill_addr(&x->fill, index + i) = addresses[i] & x->frame_mask;
        xsk_ring_prod__submit(&x->fill, n);
    }
    cmaglev_xsk_wake_receive(x);
    return n;
}

unsigned int cmaglev_xsk_queue(struct cmaglev_xsk *x, const struct cmaglev_xsk_frame *frames, unsigned int count) {
    if (!count) return 0;
    uint32_t index = 0;
    unsigned int n = xsk_ring_prod__reserve(&x->tx, count, &index);
    if (n != count) {
        n = 0;
        while (n < count && xsk_ring_prod__reserve(&x->tx, 1, &index) == 1) {
            struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, index);
            d->addr = frames[n].address;
            d->len = frames[n].length;
            d->options = 0;
            xsk_ring_prod__submit(&x->tx, 1);
            n++;
        }
        return n;
    }
    for (unsigned int i = 0; i < n; i++) {
        struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, index + i);
        d->addr = frames[i].address;
        d->len = frames[i].length;
        d->options = 0;
    }
    xsk_ring_prod__submit(&x->tx, n);
    return n;
}

/// Descriptors on the TX ring the kernel has not taken yet.
static uint32_t tx_pending(const struct cmaglev_xsk *x) {
    return *x->tx.producer - __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
}

int cmaglev_xsk_tx_pending(const struct cmaglev_xsk *x) { return tx_pending(x) != 0; }

int cmaglev_xsk_kick(struct cmaglev_xsk *x) {
    int fd = xsk_socket__fd(x->socket);
    if (x->zerocopy) {
        // The driver sends on its own; one wake-up when it asks for one.
        if (!tx_pending(x) || !xsk_ring_prod__needs_wakeup(&x->tx)) return 0;
        if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN && errno != EBUSY && errno != ENOBUFS)
            return -errno;
        return 1;
    }
    // Copy mode sends in the call, up to 32 frames each (EAGAIN: more left). A call that took
    // nothing (the device or the completion ring busy) ends the round: the next turn kicks again.
    int calls = 0;
    uint32_t pending = tx_pending(x);
    while (pending && calls < 64) {
        calls++;
        if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
            int e = errno;
            if (e != EAGAIN && e != EBUSY && e != ENOBUFS && e != EINTR) return -e;
        }
        uint32_t left = tx_pending(x);
        if (left == pending) break;
        pending = left;
    }
    return calls;
}

unsigned int cmaglev_xsk_completed(struct cmaglev_xsk *x, uint64_t *addresses, unsigned int max) {
    uint32_t index = 0;
    unsigned int n = xsk_ring_cons__peek(&x->completion, max, &index);
    for (unsigned int i = 0; i < n; i++) addresses[i] = *xsk_ring_cons__comp_addr(&x->completion, index + i);
    if (n) xsk_ring_cons__release(&x->completion, n);
    return n;
}

void cmaglev_xsk_wait(struct cmaglev_xsk *x, int timeout_ms) {
    struct pollfd p = {.fd = xsk_socket__fd(x->socket), .events = POLLIN};
    poll(&p, 1, timeout_ms);
}

int cmaglev_xsk_counters(const struct cmaglev_xsk *x, struct cmaglev_xsk_counters *out) {
    struct xdp_statistics s = {0};
    socklen_t length = sizeof s;
    if (getsockopt(xsk_socket__fd(x->socket), SOL_XDP, XDP_STATISTICS, &s, &length) != 0) return -errno;
    out->rx_dropped = s.rx_dropped;
    out->rx_invalid = s.rx_invalid_descs;
    out->tx_invalid = s.tx_invalid_descs;
    out->rx_ring_full = s.rx_ring_full;
    out->fill_ring_empty = s.rx_fill_ring_empty_descs;
    out->tx_ring_empty = s.tx_ring_empty_descs;
    return 0;
}

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>

/// One SIOCETHTOOL request for `ifname` with `data` (its first word the ethtool command);
/// 0 or -errno.
static int ethtool(const char *ifname, void *data) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    snprintf(request.ifr_name, sizeof request.ifr_name, "%s", ifname);
    request.ifr_data = data;
    int r = ioctl(fd, SIOCETHTOOL, &request);
    int e = errno;
    close(fd);
    return r == 0 ? 0 : -e;
}

int cmaglev_xdp_rx_queues(const char *ifname) {
    struct ethtool_channels channels = {.cmd = ETHTOOL_GCHANNELS};
    int r = ethtool(ifname, &channels);
    if (r != 0) return r == -EOPNOTSUPP ? 1 : r;
    unsigned int n = channels.rx_count + channels.combined_count;
    return n ? (int)n : 1;
}

int cmaglev_xdp_gro_enabled(const char *ifname) {
    struct ethtool_value value = {.cmd = ETHTOOL_GGRO};
    int r = ethtool(ifname, &value);
    if (r != 0) return r;
    return value.data ? 1 : 0;
}
