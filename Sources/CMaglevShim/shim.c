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
