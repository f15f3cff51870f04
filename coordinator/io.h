/*
 * coordinator/io.h — the one seam through which the coordinator changes
 * storage.dat.
 *
 * Every write, extension and sync of the file, and every in-place word
 * stored through the writable mapping, goes through a coord_io vtable (in
 * the spirit of Redis' `rio` and SQLite's VFS).  coord_io_posix() is the real
 * implementation.  Tests substitute their own table — usually one that
 * forwards to the POSIX one — to inject ENOSPC, EIO, short or torn writes,
 * or a "crash" at a chosen point: a hook that returns an error makes the
 * store stop exactly there, as if the process had died, and the file is
 * left as a real crash would leave it (see coord_store_commit()).
 * One exception: the slots of a hash table that no roots name yet, which
 * a helper thread fills with plain stores (store_grow.c).  Nothing reads
 * them before the commit that names the table, and recovery fills such a
 * table again when its slots may not be durable (F-REC-5).  The commit
 * that names it reports them through `changed`, so that a fault table
 * can lose them at a power cut.
 *
 * Conventions: every int-returning hook returns 0 or a positive errno.
 * Hooks are called by the committer thread, except `sync`, which the
 * thread of syncs beside the committer (the interval policy's syncs, the
 * commit policy's checkpoints) also calls, at the same time as the
 * committer's other hooks: a table that keeps state in `ctx` must guard
 * it (io_fault.c holds a mutex).  A table is borrowed by the store: it
 * must outlive every store opened with it.
 */
#ifndef SUTRA_COORD_IO_H
#define SUTRA_COORD_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct coord_io coord_io;

struct coord_io {
    /* open(2) `path` with `flags` and `mode`; *fd on success. */
    int (*open)(coord_io *io, const char *path, int flags, unsigned mode,
                int *fd);
    /* Write all `len` bytes at `offset`, looping on short writes and EINTR. */
    int (*pwrite)(coord_io *io, int fd, const void *buf, size_t len,
                  uint64_t offset);
    /* Grow the file from `old_size` to `new_size` bytes of zeros
     * (fallocate; writes zeros where fallocate is unsupported).  Never
     * shrinks. */
    int (*extend)(coord_io *io, int fd, uint64_t old_size, uint64_t new_size);
    /* fdatasync(2): makes written bytes and stored words durable. */
    int (*sync)(coord_io *io, int fd);
    /* Write all `len` bytes at `offset` and make them durable before
     * returning: the pages that hold them and the file size, and nothing
     * else of the file (POSIX synchronized I/O data integrity for this one
     * write: pwritev2 with RWF_DSYNC, which syncs only the written range;
     * pwrite then fdatasync where the kernel lacks it).  An error leaves
     * the bytes in an unknown state, as a failed pwrite or a failed
     * fdatasync would. */
    int (*pwrite_sync)(coord_io *io, int fd, const void *buf, size_t len,
                       uint64_t offset);
    /* Make the `len` bytes at `offset` durable as they are now, however
     * they were written (pwrite or stores through a mapping): the pages
     * that hold them and what is needed to read them back, and nothing
     * else of the file, as pwrite_sync does for its own write.  `addr`
     * maps the file at `offset`; it must be a shared mapping made from
     * `fd`, whose open file description is the one a writeback error is
     * reported to (msync(2) with MS_SYNC syncs through the mapping's
     * file).  An error means the same as a failed fdatasync. */
    int (*sync_range)(coord_io *io, int fd, const void *addr, uint64_t offset,
                      uint64_t len);
    /* fsync the directory holding `path`, so a new file's name is durable. */
    int (*sync_dir)(coord_io *io, const char *path);
    /* Store an in-place word in the shared mapping with release ordering
     * (F-HDR-6, F-HASH-2, F-NODE-1).  `word` is naturally aligned.  The
     * POSIX table always returns 0; a fault table returns an error to stop
     * the store at this point (a simulated crash). */
    int (*store64)(coord_io *io, uint64_t *word, uint64_t value);
    int (*store32)(coord_io *io, uint32_t *word, uint32_t value);
    /* close(2). */
    void (*close)(coord_io *io, int fd);
    /* Optional (NULL: nothing to do; the POSIX table has none).  The
     * `len` bytes at `offset` of the file were zero and have been changed
     * through the mapping by plain stores outside this table (the slots a
     * helper thread filled, store_grow.c), and are about to be named: a
     * fault table counts them among the writes since the last sync, which
     * a power cut may lose.  Never fails. */
    void (*changed)(coord_io *io, int fd, uint64_t offset, uint64_t len);
    void *ctx; /* the table's own state; NULL for the POSIX table */
};

/** The real POSIX table.  A static object shared by every store: never
 * modify it; copy it and override hooks to build a fault-injecting table. */
coord_io *coord_io_posix(void);

#endif
