/*
 * coordinator/prefault.h — a helper thread that faults pages of the
 * writable mapping in, for writing, ahead of the log.
 *
 * The committer stages a group's records directly in the mapping past the
 * committed end (F-REC-1: those bytes are logically absent) when the pages
 * there are already resident and writable.  Faulting them in
 * (MADV_POPULATE_WRITE: page-cache allocation, ext4's block reservation,
 * the mapping's page tables) is most of what a buffered write of the same
 * bytes costs; done here, on another thread, it is off the commit path.
 *
 * The helper keeps one range [lo, hi) populated and grows hi towards the
 * end the committer asks for, in chunks.  It never touches the bytes, only
 * the kernel's view of the pages, so it needs no part of the io seam: the
 * file's content does not change.  When populating fails (EFAULT past the
 * end of the file, ENOMEM, EIO, a kernel without MADV_POPULATE_WRITE) it
 * stops for good and the committer stages in memory as before.
 *
 * Thread rules: coord_prefault_want() and coord_prefault_ready() are called
 * by the committer thread only; the helper thread is the object's own.
 */
#ifndef SUTRA_COORD_PREFAULT_H
#define SUTRA_COORD_PREFAULT_H

#include <stdint.h>

typedef struct coord_prefault coord_prefault;

/**
 * Start the helper for the mapping at `map`.  `map` must stay mapped until
 * coord_prefault_stop() returns.  Returns 0 or an errno (ENOMEM, or
 * pthread_create's error); *out is NULL on failure.
 */
int coord_prefault_start(uint8_t *map, coord_prefault **out);

/**
 * Ask for [from, to) to be populated (offsets in the mapping; `to` must not
 * pass the end of the file).  A `from` outside the populated range starts a
 * new one there.  The helper is woken only when less than half of
 * [from, to) is ready, and then fills all of it.  Never blocks on the
 * helper's work.
 */
void coord_prefault_want(coord_prefault *p, uint64_t from, uint64_t to);

/**
 * The end of the populated range when it contains `from`, else `from`
 * (nothing ready there).  The pages below the returned offset may be
 * written through the mapping without a page fault that could fail —
 * unless the kernel wrote them back and dropped them since, which is why
 * the committer keeps the range short (see store_apply.c).
 */
uint64_t coord_prefault_ready(coord_prefault *p, uint64_t from);

/** Stop and join the helper and free it.  NULL is a no-op. */
void coord_prefault_stop(coord_prefault *p);

#endif
