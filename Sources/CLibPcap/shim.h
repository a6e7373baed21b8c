#include <pcap/pcap.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/// Maps the file at `path` read-only (sequential access advised; prefaulted up to 1 GiB) and stores its size in
/// `size`; NULL when it cannot be opened, is empty or cannot be mapped (the caller then reads
/// through libpcap alone). Used by the capture reader to take classic pcap records in place.
static inline const void *maglev_pcap_map(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | (st.st_size <= ((off_t)1 << 30) ? MAP_POPULATE : 0), fd, 0);
    close(fd);
    if (p == MAP_FAILED) return NULL;
    (void)madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
    *size = (size_t)st.st_size;
    return p;
}

/// A hint to fetch the cache line at `p` for reading; never faults, never waits. The replay's
/// batches use it to start the analysis's cache misses for many packets at once (a load would
/// hold the core until its line came).
static inline void maglev_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Undoes `maglev_pcap_map`.
static inline void maglev_pcap_unmap(const void *p, size_t size) { (void)munmap((void *)p, size); }
