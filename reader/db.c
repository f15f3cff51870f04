/*
 * reader/db.c — open a data directory read-only, take snapshots, wait for
 * generations, report statistics.
 *
 * Opening is O(1): one pread of the header page, one mmap of the whole
 * address-space reserve (mapping past EOF is legal; those pages are never
 * touched until a committed meta covers them, docs/format.md §3), one
 * snapshot to prove a valid meta exists.  Taking a snapshot is a seqlock
 * over the two meta slots (F-META-2, F-SNAP-2): no lock, no system call
 * unless the file has grown past what this handle last saw.  Waiting for a
 * generation blocks on a futex over the generation word in the shared
 * mapping, so it needs neither NNG nor the coordinator's cooperation beyond
 * its wake-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "reader/reader_internal.h"

/* ---- the known file size --------------------------------------------- */

/* Refresh the known size with fstat.  Returns the (monotonic) known size.
 * Any thread: concurrent refreshes race benignly, each storing a size the
 * file really had, and the max keeps it from moving backwards. */
static uint64_t reader_refresh_size(const sutra_db *db)
{
    /* The handle is never defined const; only this cache is written
     * through the const views that sutra_get() holds. */
    uint64_t *known = (uint64_t *)&((sutra_db *)db)->known_size;
    struct stat st;
    uint64_t seen = __atomic_load_n(known, __ATOMIC_RELAXED);
    if (fstat(db->fd, &st) != 0 || st.st_size < 0)
        return seen;
    uint64_t now = (uint64_t)st.st_size;
    while (now > seen &&
           !__atomic_compare_exchange_n(known, &seen, now, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return now > seen ? now : seen;
}

bool reader_range_readable(const sutra_db *db, uint64_t off, uint64_t len)
{
    if (off > db->map_size || len > db->map_size - off)
        return false;
    uint64_t end = off + len;
    if (end <= __atomic_load_n(&db->known_size, __ATOMIC_RELAXED))
        return true;
    return end <= reader_refresh_size(db);
}

bool reader_beyond_mapping(const sutra_db *db, uint64_t off, uint64_t len)
{
    bool past_map = off > db->map_size || len > db->map_size - off;
    bool in_reserve = off <= db->map_reserve && len <= db->map_reserve - off;
    return past_map && in_reserve;
}

bool reader_record_beyond_mapping(const sutra_db *db, uint64_t off,
                                  uint64_t head_len)
{
    if (off % LAYOUT_RECORD_ALIGN != 0)
        return false; /* no record starts there: damage, or moving words */
    if (reader_beyond_mapping(db, off, head_len))
        return true;
    if (!reader_range_readable(db, off, head_len))
        return false; /* past the file as this handle knows it: moving */
    const layout_rec *rec = (const layout_rec *)(db->map + off);
    return reader_beyond_mapping(db, off, layout_rec_size(rec));
}

/* ---- snapshots -------------------------------------------------------- */

/* Copy a meta slot with relaxed word loads: the writer may be rewriting it
 * (for generation g + 2) while we copy, and the seqlock re-check below
 * discards such a torn copy. */
static void reader_copy_meta(const sutra_db *db, uint64_t generation,
                             layout_meta *out)
{
    uint64_t off = generation % 2 ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0;
    const uint64_t *src = (const uint64_t *)(db->map + off);
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int reader_read_current(const sutra_db *db, layout_roots *roots,
                        uint64_t *file_size)
{
    const layout_header *hdr = reader_header(db);
    for (int attempt = 0; attempt < READER_SNAPSHOT_RETRIES; attempt++) {
        if (__atomic_load_n(&hdr->superseded, __ATOMIC_RELAXED))
            return SUTRA_ESUPERSEDED;
        uint64_t g = reader_load_word(&hdr->generation);
        layout_meta meta;
        reader_copy_meta(db, g, &meta);
        /* F-SNAP-2: the copy is good only if the generation did not move
         * while we copied; the fence orders the copy before the re-check. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&hdr->generation, __ATOMIC_RELAXED) != g)
            continue;
        if (!layout_meta_valid(&meta) || meta.roots.generation != g)
            continue; /* F-META-3: a writer mid-recovery may repair it */
        *roots = meta.roots;
        *file_size = meta.file_size;
        return 0;
    }
    return SUTRA_ECORRUPT;
}

/* F-HASH-1: the id->node table of a snapshot is a region record of type
 * HASH_TABLE whose slots lie inside the snapshot's committed bytes.  Every
 * generation has one, generation 0 included (F-META-5). */
static bool reader_hash_valid(const sutra_db *db, const layout_roots *r)
{
    if (r->hash_root == 0)
        return false;
    uint64_t slots = r->hash_slots;
    if (slots < LAYOUT_HASH_MIN_SLOTS || (slots & (slots - 1)) != 0 ||
        slots > r->committed_end / sizeof(uint64_t))
        return false;
    if (r->hash_root % LAYOUT_REGION_ALIGN != 0 ||
        r->hash_root < LAYOUT_DATA_START || r->hash_root > r->committed_end ||
        slots * sizeof(uint64_t) + LAYOUT_REGION_BODY >
            r->committed_end - r->hash_root)
        return false;
    const layout_region *reg = (const layout_region *)(db->map + r->hash_root);
    return reg->rec.type == LAYOUT_REC_HASH_TABLE &&
           (reg->rec.flags & LAYOUT_REC_F_REGION) &&
           layout_rec_size(&reg->rec) ==
               LAYOUT_REGION_BODY + slots * sizeof(uint64_t) &&
           reg->arg0 == slots;
}

int reader_snapshot_from_roots(const sutra_db *db, const layout_roots *r,
                               uint64_t file_size, struct sutra_snapshot *out)
{
    if (r->committed_end < LAYOUT_DATA_START ||
        r->committed_end % LAYOUT_RECORD_ALIGN != 0 ||
        r->node_count > LAYOUT_MAX_NODES)
        return SUTRA_ECORRUPT;
    /* A writer never grows the file past its reserve (F-HDR), so roots
     * past it are damage, and no reopen would help. */
    if (r->committed_end > db->map_reserve)
        return SUTRA_ECORRUPT;
    /* The file outgrew a mapping that had to be smaller than its reserve
     * (see reader_map): the data is fine, this handle cannot reach it. */
    if (r->committed_end > db->map_size)
        return SUTRA_EMAPFULL;
    /* Everything a snapshot can reach lies below committed_end, so one
     * check here lets lookups read visible records without further
     * size checks. */
    if (!reader_range_readable(db, 0, r->committed_end))
        return SUTRA_ECORRUPT;
    if (!reader_hash_valid(db, r))
        return SUTRA_ECORRUPT;

    struct sutra_snapshot s;
    memset(&s, 0, sizeof(s));
    s.db = db;
    s.generation = r->generation;
    s.last_seq = r->last_seq;
    s.commit_ns = r->commit_ns;
    s.concept_count = r->concept_count;
    s.private_[READER_SNAP_COMMITTED_END] = r->committed_end;
    s.private_[READER_SNAP_NODE_COUNT] = r->node_count;
    s.private_[READER_SNAP_HASH_ROOT] = r->hash_root;
    s.private_[READER_SNAP_HASH_SLOTS] = r->hash_slots;
    s.private_[READER_SNAP_VERSION_COUNT] = r->version_count;
    s.private_[READER_SNAP_TOMBSTONE_COUNT] = r->tombstone_count;
    s.private_[READER_SNAP_ASSOC_COUNT] = r->assoc_count;
    s.private_[READER_SNAP_FILE_SIZE] = file_size;
    *out = s;
    return 0;
}

int sutra_snapshot(sutra_db *db, struct sutra_snapshot *out)
{
    if (!db || !out)
        return SUTRA_EINVAL;
    layout_roots roots;
    uint64_t file_size = 0;
    int rc = reader_read_current(db, &roots, &file_size);
    if (rc != 0)
        return rc;
    return reader_snapshot_from_roots(db, &roots, file_size, out);
}

/* ---- open / close ----------------------------------------------------- */

/* errno after a failed call: never 0, so a failure cannot read as success. */
static int reader_errno(void)
{
    int e = errno;
    return e != 0 ? e : EIO;
}

static int reader_pread_all(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return reader_errno();
        if (n == 0)
            return SUTRA_ECORRUPT; /* shorter than fstat said: truncated */
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Open, size and validate the file; on success *fd_out is open and *hdr
 * holds the validated header page (F-HDR-1..5). */
static int reader_open_file(const char *dir, int *fd_out, uint64_t *size_out,
                            layout_header *hdr)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/storage.dat", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ENAMETOOLONG;
    /* O_NONBLOCK: a FIFO or device in its place must not block the open
     * before the regular-file check below; a regular file ignores it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return reader_errno();
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = reader_errno();
    else if (!S_ISREG(st.st_mode))
        rc = SUTRA_ECORRUPT;
    else if ((uint64_t)st.st_size < LAYOUT_DATA_START)
        rc = SUTRA_ECORRUPT; /* F-HDR-2: truncated or empty */
    else
        rc = reader_pread_all(fd, hdr, sizeof(*hdr), LAYOUT_HEADER_OFFSET);
    if (rc == 0)
        rc = layout_header_check(hdr, (uint64_t)st.st_size, NULL);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *size_out = (uint64_t)st.st_size;
    return 0;
}

/* Map `want` bytes of address space; if the system refuses that much
 * (RLIMIT_AS, a sanitizer's restricted layout) and the caller did not ask
 * for an exact size, halve down to `floor` (the file's current size) rather
 * than fail: such a handle works until the file outgrows it, and then says
 * so with SUTRA_EMAPFULL. */
static void *reader_map(int fd, uint64_t want, uint64_t floor, bool exact,
                        uint64_t *got)
{
    uint64_t len = want;
    for (;;) {
        void *map = mmap(NULL, (size_t)len, PROT_READ,
                         MAP_SHARED | MAP_NORESERVE, fd, 0);
        if (map != MAP_FAILED) {
            *got = len;
            return map;
        }
        if (errno != ENOMEM || exact || len <= floor)
            return MAP_FAILED;
        len = layout_align_up(len / 2, LAYOUT_PAGE_SIZE);
        if (len < floor)
            len = floor;
    }
}

int sutra_open(const char *dir, const sutra_open_options *opts, sutra_db **out)
{
    if (!dir || !out)
        return SUTRA_EINVAL;
    layout_header hdr;
    int fd = -1;
    uint64_t size = 0;
    int rc = reader_open_file(dir, &fd, &size, &hdr);
    if (rc != 0)
        return rc;

    uint64_t map_size = opts && opts->map_size ? opts->map_size : hdr.map_reserve;
    map_size = layout_align_up(map_size, LAYOUT_PAGE_SIZE);
    if (map_size < LAYOUT_DATA_START || map_size > SIZE_MAX) {
        close(fd);
        return SUTRA_EINVAL;
    }
    bool exact = opts && opts->map_size;
    void *map = reader_map(fd, map_size, layout_align_up(size, LAYOUT_PAGE_SIZE),
                           exact, &map_size);
    if (map == MAP_FAILED) {
        rc = errno;
        close(fd);
        return rc;
    }
    sutra_db *db = calloc(1, sizeof(*db));
    if (!db) {
        munmap(map, (size_t)map_size);
        close(fd);
        return ENOMEM;
    }
    db->map = map;
    db->map_size = map_size;
    db->map_reserve = hdr.map_reserve;
    db->fd = fd;
    db->vector_dim = hdr.vector_dim;
    db->format_major = hdr.format_major;
    db->format_minor = hdr.format_minor;
    memcpy(db->uuid, hdr.uuid, sizeof(db->uuid));
    db->created_ns = hdr.created_ns;
    db->known_size = size;

    struct sutra_snapshot snap;
    rc = sutra_snapshot(db, &snap);
    if (rc != 0) {
        sutra_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void sutra_close(sutra_db *db)
{
    if (!db)
        return;
    munmap((void *)db->map, (size_t)db->map_size);
    close(db->fd);
    free(db);
}

/* ---- generations ------------------------------------------------------ */

uint64_t sutra_generation(const sutra_db *db)
{
    return reader_load_word(&reader_header(db)->generation);
}

uint32_t sutra_dim(const sutra_db *db)
{
    return db->vector_dim;
}

#define READER_WAIT_SLICE_NS 1000000000ull

static uint64_t reader_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int sutra_wait_generation(sutra_db *db, uint64_t generation, int timeout_ms)
{
    if (!db)
        return SUTRA_EINVAL;
    const uint64_t *word = &reader_header(db)->generation;
    uint64_t deadline = timeout_ms > 0
                            ? reader_now_ns() + (uint64_t)timeout_ms * 1000000ull
                            : 0;
    for (;;) {
        uint64_t cur = reader_load_word(word);
        if (cur >= generation)
            return 0;
        if (timeout_ms == 0)
            return SUTRA_ETIMEDOUT;
        /* Sleep at most READER_WAIT_SLICE_NS at a time even when waiting
         * forever, so a wake-up lost by a crashing coordinator costs a
         * poll interval, not a hang. */
        uint64_t left = READER_WAIT_SLICE_NS;
        if (timeout_ms > 0) {
            uint64_t now = reader_now_ns();
            if (now >= deadline)
                return SUTRA_ETIMEDOUT;
            if (deadline - now < left)
                left = deadline - now;
        }
        struct timespec rel = {.tv_sec = (time_t)(left / 1000000000ull),
                               .tv_nsec = (long)(left % 1000000000ull)};
        /* F-GEN-3: the coordinator wakes the low 32 bits of the word.  The
         * shared (non-PRIVATE) futex is keyed by the file page, so waiters
         * in any process that maps the file are woken. */
        long r = syscall(SYS_futex, (const uint32_t *)word, FUTEX_WAIT,
                         (uint32_t)cur, &rel, NULL, 0);
        if (r != 0 && errno != EINTR && errno != EAGAIN && errno != ETIMEDOUT)
            return errno;
    }
}

/* ---- statistics ------------------------------------------------------- */

int sutra_stats_get(const struct sutra_snapshot *snap, sutra_stats *out)
{
    if (!snap || !snap->db || !out)
        return SUTRA_EINVAL;
    const sutra_db *db = snap->db;
    sutra_stats s;
    memset(&s, 0, sizeof(s));
    s.generation = snap->generation;
    s.last_seq = snap->last_seq;
    s.committed_end = snap->private_[READER_SNAP_COMMITTED_END];
    s.file_size = snap->private_[READER_SNAP_FILE_SIZE];
    s.map_size = db->map_size;
    s.node_count = snap->private_[READER_SNAP_NODE_COUNT];
    s.concept_count = snap->concept_count;
    s.version_count = snap->private_[READER_SNAP_VERSION_COUNT];
    s.tombstone_count = snap->private_[READER_SNAP_TOMBSTONE_COUNT];
    s.assoc_count = snap->private_[READER_SNAP_ASSOC_COUNT];
    s.hash_slots = snap->private_[READER_SNAP_HASH_SLOTS];
    s.created_ns = db->created_ns;
    s.commit_ns = snap->commit_ns;
    s.vector_dim = db->vector_dim;
    s.format_major = db->format_major;
    s.format_minor = db->format_minor;
    s.clean_shutdown =
        __atomic_load_n(&reader_header(db)->clean_shutdown, __ATOMIC_RELAXED) != 0;
    memcpy(s.uuid, db->uuid, sizeof(s.uuid));
    *out = s;
    return 0;
}
