// Linux calls that Swift's Glibc module does not expose (they need _GNU_SOURCE).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <linux/falloc.h>

// Frees the disk space and cached pages of [offset, offset + length) of an open file, which then reads as
// zeros; the file keeps its size. 0, or -1 with errno (EOPNOTSUPP where the file system cannot).
static inline int contingency_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}
