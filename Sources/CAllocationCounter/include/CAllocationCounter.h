// Counts heap allocations of the whole process by interposing malloc and friends (glibc):
// linked only into the `maglev` executable and the tests, so `maglev bench` and a test can prove
// that the per-packet path allocates nothing. Forwards every call to glibc's own allocator.
#ifndef CALLOCATION_COUNTER_H
#define CALLOCATION_COUNTER_H
#include <stdint.h>

/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) so far.
uint64_t cmaglev_allocation_count(void);
#endif
