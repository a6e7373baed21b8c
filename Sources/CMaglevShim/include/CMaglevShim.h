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

#endif
