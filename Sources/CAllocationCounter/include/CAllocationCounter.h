// Counts heap allocations of the whole process by interposing malloc and friends (glibc), so
// that `maglev bench` and the tests can prove that the per-packet path allocates nothing.
// Forwards every call to glibc's own allocator. Linked into the tests; for the bench, built as
// libMaglevAllocationCounter.so and preloaded (LD_PRELOAD) by `maglev bench` itself. Never
// linked into `maglev`: production keeps glibc's malloc untouched.
#ifndef CALLOCATION_COUNTER_H
#define CALLOCATION_COUNTER_H
#include <stdint.h>

/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) so far.
uint64_t cmaglev_allocation_count(void);
/// Allocations made by the calling thread so far (other threads' never show here): what a
/// test of a synchronous loop counts, whatever else the process runs beside it.
uint64_t cmaglev_thread_allocation_count(void);
#endif
