// Macros and enum-defined flags that Swift cannot import from liburing and glibc,
// wrapped as prefixed functions. Keep this file tiny.
#ifndef CMAGLEV_SHIM_H
#define CMAGLEV_SHIM_H
#include <liburing.h>

/// IOSQE_* flags are enum-defined macros in liburing; Swift sees none of them.
unsigned int cmaglev_iosqe_fixed_file(void);
unsigned int cmaglev_iosqe_buffer_select(void);
unsigned int cmaglev_iosqe_io_link(void);

/// io_uring_for_each_cqe is a function-like macro; this walks the ready CQEs into `out`
/// (at most `max`) and returns how many it stored, without advancing the ring.
unsigned int cmaglev_peek_cqes(struct io_uring *ring, struct io_uring_cqe **out, unsigned int max);

/// The kernel's io_uring_disabled sysctl (0 enabled, 1 root only, 2 disabled); -1 if unreadable.
int cmaglev_io_uring_disabled_sysctl(void);
#endif
