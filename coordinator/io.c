/*
 * coordinator/io.c — the POSIX implementation of the coordinator's I/O seam
 * (coordinator/io.h): plain open/pwrite/fallocate/fdatasync, pwritev2 with
 * RWF_DSYNC for a write synced by itself, msync for a range synced as it
 * is, and atomic release stores into the shared mapping.  It holds no state, so one static
 * table serves every store.
 */
#include "coordinator/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static int posix_open(coord_io *io, const char *path, int flags,
                      unsigned mode, int *fd)
{
    (void)io;
    int f;
    do {
        f = open(path, flags | O_CLOEXEC, (mode_t)mode);
    } while (f < 0 && errno == EINTR);
    if (f < 0)
        return errno;
    *fd = f;
    return 0;
}

/* Write all `len` bytes at `offset` with pwritev2 `flags` (0: a plain
 * pwrite), looping on short writes and EINTR; *done counts the bytes
 * written, also when it fails. */
static int write_all(int fd, const void *buf, size_t len, uint64_t offset,
                     int flags, size_t *done)
{
    const uint8_t *p = buf;
    *done = 0;
    while (*done < len) {
        size_t left = len - *done;
        struct iovec v = { (void *)(p + *done), left > (1u << 30) ? (1u << 30) : left };
        ssize_t n = pwritev2(fd, &v, 1, (off_t)(offset + *done), flags);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return EIO; /* no progress: never spin */
        *done += (size_t)n;
    }
    return 0;
}

static int posix_pwrite(coord_io *io, int fd, const void *buf, size_t len,
                        uint64_t offset)
{
    (void)io;
    size_t done;
    return write_all(fd, buf, len, offset, 0, &done);
}

/* Where fallocate is unsupported (some filesystems), write real zeros so the
 * blocks exist: a later commit must never fail with ENOSPC halfway through
 * writing records into space it believed it had. */
static int extend_by_writing(int fd, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[1u << 16];
    while (from < to) {
        uint64_t n = to - from < sizeof(zeros) ? to - from : sizeof(zeros);
        int rc = posix_pwrite(NULL, fd, zeros, (size_t)n, from);
        if (rc)
            return rc;
        from += n;
    }
    return 0;
}

static int posix_extend(coord_io *io, int fd, uint64_t old_size,
                        uint64_t new_size)
{
    (void)io;
    if (new_size <= old_size)
        return 0;
    int rc;
    do {
        rc = posix_fallocate(fd, (off_t)old_size, (off_t)(new_size - old_size));
    } while (rc == EINTR);
    if (rc == EOPNOTSUPP || rc == EINVAL)
        return extend_by_writing(fd, old_size, new_size);
    return rc;
}

static int posix_sync(coord_io *io, int fd)
{
    (void)io;
    int rc;
    do {
        rc = fdatasync(fd);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? errno : 0;
}

/* RWF_DSYNC syncs each write's own range (generic_write_sync), so the
 * dirty index pages elsewhere in the file are not written with it. */
static int posix_pwrite_sync(coord_io *io, int fd, const void *buf,
                             size_t len, uint64_t offset)
{
    size_t done;
    int rc = write_all(fd, buf, len, offset, RWF_DSYNC, &done);
    if (rc != EOPNOTSUPP && rc != EINVAL && rc != ENOSYS)
        return rc;
    /* no RWF_DSYNC here: the rest, then the whole file */
    rc = posix_pwrite(io, fd, (const uint8_t *)buf + done, len - done,
                      offset + done);
    return rc ? rc : posix_sync(io, fd);
}

/* msync(MS_SYNC) syncs the mapped range of the mapping's file
 * (vfs_fsync_range with datasync), so only those pages are written. */
static int posix_sync_range(coord_io *io, int fd, const void *addr,
                            uint64_t offset, uint64_t len)
{
    (void)io;
    (void)fd;
    (void)offset;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)addr & ~(page - 1);
    if (len == 0)
        return 0;
    return msync((void *)start, (size_t)((uintptr_t)addr - start + len),
                 MS_SYNC) < 0 ? errno : 0;
}

static int posix_sync_dir(coord_io *io, const char *path)
{
    (void)io;
    char copy[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(copy))
        return ENAMETOOLONG;
    memcpy(copy, path, len + 1);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno;
    int rc = fsync(dfd) < 0 ? errno : 0;
    close(dfd);
    return rc;
}

static int posix_store64(coord_io *io, uint64_t *word, uint64_t value)
{
    (void)io;
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
    return 0;
}

static int posix_store32(coord_io *io, uint32_t *word, uint32_t value)
{
    (void)io;
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
    return 0;
}

static void posix_close(coord_io *io, int fd)
{
    (void)io;
    close(fd); /* EINTR: on Linux the descriptor is closed anyway */
}

static coord_io posix_io = {
    .open = posix_open,
    .pwrite = posix_pwrite,
    .extend = posix_extend,
    .sync = posix_sync,
    .pwrite_sync = posix_pwrite_sync,
    .sync_range = posix_sync_range,
    .sync_dir = posix_sync_dir,
    .store64 = posix_store64,
    .store32 = posix_store32,
    .close = posix_close,
    .ctx = NULL,
};

coord_io *coord_io_posix(void)
{
    return &posix_io;
}
