// features.h first, before liburing.h defines _XOPEN_SOURCE and _GNU_SOURCE: glibc then
// declares its types (fd_set's fields among them) exactly as Swift's own Glibc module sees
// them. Otherwise clang finds two different definitions of fd_set and fails the build
// ("fds_bits ... is not present in definition of fd_set"), depending on build order.
#include <features.h>
#include <liburing.h>
