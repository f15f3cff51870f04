/*
 * coordinator/store.c — opening, creating and closing storage.dat for the
 * coordinator, plus the small queries of coordinator/store.h (stats, sync
 * state, the commit history walk).
 *
 * A new file is built whole in memory (header, meta slot 0, the first hash
 * table and node chunk), written beside its final name, synced, renamed and
 * the directory synced, so a crash during creation never leaves a
 * half-written storage.dat.  An existing file is mapped once over its whole
 * map_reserve range; recover.c validates what the meta names and repairs
 * the in-place words after an unclean stop.
 *
 * Concurrency: committer thread only, except coord_store_stats_get().
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/log.h"
#include "sutra/sutra.h"

int coord_fail(coord_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

uint64_t coord_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Mirror the published state into the words stats readers load.  Relaxed:
 * the numbers are informative and need not be mutually consistent. */
void coord_stat_publish(coord_store *s)
{
    coord_stat_words *w = &s->stat;
    __atomic_store_n(&w->generation, s->roots.generation, __ATOMIC_RELAXED);
    __atomic_store_n(&w->last_seq, s->roots.last_seq, __ATOMIC_RELAXED);
    __atomic_store_n(&w->committed_end, s->roots.committed_end, __ATOMIC_RELAXED);
    __atomic_store_n(&w->file_size, s->file_size, __ATOMIC_RELAXED);
    __atomic_store_n(&w->node_count, s->roots.node_count, __ATOMIC_RELAXED);
    __atomic_store_n(&w->concept_count, s->roots.concept_count, __ATOMIC_RELAXED);
    __atomic_store_n(&w->version_count, s->roots.version_count, __ATOMIC_RELAXED);
    __atomic_store_n(&w->tombstone_count, s->roots.tombstone_count,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&w->assoc_count, s->roots.assoc_count, __ATOMIC_RELAXED);
    __atomic_store_n(&w->read_only, (uint32_t)s->read_only, __ATOMIC_RELAXED);
}

void coord_count_sync(coord_store *s)
{
    __atomic_fetch_add(&s->stat.syncs, 1, __ATOMIC_RELAXED);
}

/* F-HDR-7, F-HDR-8: stored only after the sync returned, so whatever value
 * of either word reaches the disk was true when it was stored, whichever
 * order the two reach it in.  A failed store (a simulated crash) only makes
 * the next recovery scan further back. */
int coord_store_durable_words(coord_store *s, const layout_roots *r)
{
    /* the value stored before the sync that precedes this call is durable */
    if (__atomic_load_n(&s->hdr->durable_commit, __ATOMIC_RELAXED) >=
        LAYOUT_DATA_START)
        s->checkpointed = true;
    int rc = s->io->store64(s->io, &s->hdr->durable_commit, r->last_commit);
    return rc ? rc : s->io->store64(s->io, &s->hdr->durable_end, r->committed_end);
}

void coord_note_durable(coord_store *s)
{
    s->synced = true;
    s->log_durable_end = s->roots.committed_end;
    coord_count_sync(s);
    (void)coord_store_durable_words(s, &s->roots);
}

/* ---- creation --------------------------------------------------------- */

static void init_region(uint8_t *file, uint64_t off, uint16_t type,
                        uint64_t arg0, uint64_t arg1, uint64_t arg2,
                        uint64_t body_len)
{
    layout_region *r = (layout_region *)(file + off);
    r->rec.type = type;
    r->rec.flags = LAYOUT_REC_F_REGION;
    r->rec.length = layout_region_length(LAYOUT_REGION_BODY + body_len);
    r->arg0 = arg0;
    r->arg1 = arg1;
    r->arg2 = arg2;
    layout_rec_seal(&r->rec);
}

/* Lay out a fresh file image: header, meta slot 0 (slot 1 stays zero and
 * so invalid), hash table and node chunk 0 at the data start. */
static uint8_t *build_new_file(uint32_t dim, uint64_t map_reserve,
                               uint64_t *size_out, coord_error *err)
{
    uint8_t uuid[16];
    if (getrandom(uuid, sizeof(uuid), 0) != (ssize_t)sizeof(uuid)) {
        coord_fail(err, errno ? errno : EIO, "getrandom failed");
        return NULL;
    }
    uint64_t now = coord_now_ns();
    uint64_t hash_off = LAYOUT_DATA_START;
    uint64_t hash_body = (uint64_t)LAYOUT_HASH_MIN_SLOTS * sizeof(uint64_t);
    uint64_t chunk_off = layout_align_up(hash_off + LAYOUT_REGION_BODY + hash_body,
                                         LAYOUT_REGION_ALIGN);
    uint64_t chunk_body = (uint64_t)LAYOUT_NODE_CHUNK0 * sizeof(layout_node);
    uint64_t end = layout_align_up(chunk_off + LAYOUT_REGION_BODY + chunk_body,
                                   LAYOUT_RECORD_ALIGN);
    uint64_t size = layout_align_up(end, LAYOUT_PAGE_SIZE);
    if (size > map_reserve) {
        coord_fail(err, SUTRA_EINVAL, "map reserve %llu too small for a file",
                   (unsigned long long)map_reserve);
        return NULL;
    }
    uint8_t *file = calloc(1, size);
    if (!file) {
        coord_fail(err, ENOMEM, "no memory for a new file");
        return NULL;
    }
    layout_header *h = (layout_header *)file;
    layout_header_init(h, dim, map_reserve, uuid, now);
    h->clean_shutdown = 1; /* nothing to recover; open clears it */
    h->node_chunk[0] = chunk_off;
    h->durable_end = end; /* the whole file is synced before it is renamed */
    init_region(file, hash_off, LAYOUT_REC_HASH_TABLE, LAYOUT_HASH_MIN_SLOTS,
                0, 0, hash_body);
    init_region(file, chunk_off, LAYOUT_REC_NODE_CHUNK, 0, LAYOUT_NODE_CHUNK0,
                0, chunk_body);
    layout_meta *m = (layout_meta *)(file + LAYOUT_META_OFFSET_0);
    m->roots.committed_end = end;
    m->roots.commit_ns = now;
    m->roots.hash_root = hash_off;
    m->roots.hash_slots = LAYOUT_HASH_MIN_SLOTS;
    m->file_size = size;
    layout_meta_seal(m);
    *size_out = size;
    return file;
}

/* Write the new file beside `path`, make it durable, rename it into place
 * and sync the directory (F-GEN-4: a storage.dat is always complete). */
static int create_file(coord_io *io, const char *path, uint32_t dim,
                       uint64_t map_reserve, coord_error *err)
{
    uint64_t size;
    uint8_t *file = build_new_file(dim, map_reserve, &size, err);
    if (!file)
        return err ? err->code : ENOMEM;
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp)) {
        free(file);
        return coord_fail(err, ENAMETOOLONG, "path too long");
    }
    int fd, rc = io->open(io, tmp, O_RDWR | O_CREAT | O_TRUNC, 0640, &fd);
    if (rc) {
        free(file);
        return coord_fail(err, rc, "cannot create %s: %s", tmp, strerror(rc));
    }
    rc = io->pwrite(io, fd, file, size, 0);
    if (!rc)
        rc = io->sync(io, fd);
    io->close(io, fd);
    free(file);
    if (!rc && rename(tmp, path) != 0)
        rc = errno;
    if (!rc)
        rc = io->sync_dir(io, path);
    if (rc) {
        unlink(tmp);
        return coord_fail(err, rc, "cannot create %s: %s", path, strerror(rc));
    }
    return 0;
}

/* ---- opening ---------------------------------------------------------- */

static int check_options(const coord_store_options *o, coord_error *err)
{
    if (o->vector_dim > LAYOUT_MAX_DIM)
        return coord_fail(err, SUTRA_EINVAL, "vector dimension %u over %u",
                          o->vector_dim, LAYOUT_MAX_DIM);
    if (o->map_reserve && (o->map_reserve % LAYOUT_PAGE_SIZE != 0 ||
                           o->map_reserve < LAYOUT_DATA_START))
        return coord_fail(err, SUTRA_EINVAL,
                          "map reserve must be a page multiple");
    return 0;
}

/* Read and check the header with pread: the mapping's size comes from it. */
static int read_header(coord_store *s, uint64_t *map_reserve, coord_error *err)
{
    layout_header h;
    if (s->file_size < sizeof(h))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-HDR-2: file shorter than its header page");
    ssize_t n = pread(s->fd, &h, sizeof(h), 0);
    if (n != (ssize_t)sizeof(h))
        return coord_fail(err, n < 0 ? errno : EIO, "cannot read the header");
    const char *why;
    int rc = layout_header_check(&h, s->file_size, &why);
    if (rc)
        return coord_fail(err, rc, "%s", why);
    if (s->file_size > h.map_reserve)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-HDR-2: file larger than its map reserve");
    if (h.format_minor > LAYOUT_FORMAT_MINOR)
        return coord_fail(err, SUTRA_EVERSION,
                          "F-HDR-4: format 1.%u is newer than this writer",
                          h.format_minor);
    s->dim = h.vector_dim;
    *map_reserve = h.map_reserve;
    return 0;
}

static int map_file(coord_store *s, const char *path,
                    const coord_store_options *o, coord_error *err)
{
    int rc = s->io->open(s->io, path, O_RDWR, 0, &s->fd);
    if (!rc)
        rc = s->io->open(s->io, path, O_RDWR, 0, &s->sync_fd);
    if (rc)
        return coord_fail(err, rc, "cannot open %s: %s", path, strerror(rc));
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return coord_fail(err, errno, "cannot stat %s", path);
    s->file_size = (uint64_t)st.st_size;
    s->dirty_end = s->file_size; /* a torn tail may hold anything */
    uint64_t reserve = 0; /* set when read_header() returns 0 */
    rc = read_header(s, &reserve, err);
    if (rc)
        return rc;
    if (o->vector_dim && o->vector_dim != s->dim)
        return coord_fail(err, SUTRA_EDIM,
                          "the file's vector dimension is %u, not %u", s->dim,
                          o->vector_dim);
    /* The whole reserve is only address space, but an RLIMIT_AS limit or a
     * sanitizer's layout may refuse it: then map as much as is allowed (at
     * least the file) and treat that as the file's size limit (EFULL past
     * it), rather than refusing to start on a healthy file. */
    uint64_t len = reserve, floor = layout_align_up(s->file_size, LAYOUT_PAGE_SIZE);
    void *map;
    while ((map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_NORESERVE, s->fd, 0)) == MAP_FAILED &&
           errno == ENOMEM && len > floor) {
        len = layout_align_up(len / 2, LAYOUT_PAGE_SIZE);
        if (len < floor)
            len = floor;
    }
    if (map == MAP_FAILED)
        return coord_fail(err, errno, "cannot map %llu bytes: %s",
                          (unsigned long long)len, strerror(errno));
    s->map = map;
    s->map_reserve = len; /* the limit this process can grow the file to */
    s->hdr = (layout_header *)map;
    /* msync syncs through the mapping's file: this one reports writeback
     * errors to sync_fd's description, like every sync beside the writer
     * (store.h).  Without it, syncs beside are whole-file ones. */
    map = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_NORESERVE, s->sync_fd,
               0);
    s->sync_map = map == MAP_FAILED ? NULL : map;
    return 0;
}

static int mark_open(coord_store *s, coord_error *err);

/* F-REC-8: one sync per commit (F-COM-4) lets the newest meta slot reach
 * the disk without the records it names.  When recovery from it fails its
 * checks, the other slot, if valid and older, is tried before a rebuild:
 * its generation was synced, and roll-forward (F-REC-7) and F-REC-5 do the
 * rest.  It need not be the generation just before: groups synced by
 * range (F-COM-6) leave their slots unsynced, so after a power cut the
 * other slot may hold any generation since the last checkpoint, or one
 * before it.  Returns 0 (recovered from `older`; *meta becomes it) or
 * `failed` (the caller rebuilds, reporting the newer slot's generation). */
static int recover_from_older_slot(coord_store *s, layout_meta *meta,
                                   const layout_meta *older, int failed)
{
    if (!layout_meta_valid(older) ||
        older->roots.generation >= meta->roots.generation ||
        older->roots.generation % 2 == meta->roots.generation % 2)
        return failed;
    layout_meta m = *older;
    coord_error why = { 0 };
    memset(s->chunk, 0, sizeof(s->chunk)); /* attached for the newer slot */
    if (coord_recover(s, &m, true, true, &why) != 0)
        return failed;
    *meta = m;
    return 0;
}

static const layout_commit *commit_below(const coord_store *s, uint64_t off,
                                         uint64_t limit);

/* The COMMIT record at `off` if it is whole, checksummed and names itself
 * as its generation's last commit; read up to the file size, since no
 * roots bound the log yet. */
static const layout_commit *checkpoint_commit(const coord_store *s,
                                              uint64_t off)
{
    const layout_commit *c = commit_below(s, off, s->file_size);
    if (!c || c->roots.last_commit != off ||
        c->roots.committed_end !=
            layout_align_up(off + c->rec.length, LAYOUT_RECORD_ALIGN))
        return NULL;
    return c;
}

/* F-REC-9: under --sync commit a group is durable through its log bytes
 * alone (F-COM-6) and the meta slots reach the disk only with a checkpoint,
 * so a power cut can leave both slots torn.  The last checkpoint's commit
 * record (F-HDR-8) holds the roots of a generation whose records and words
 * are durable: recover from it as from a meta slot (roll-forward, F-REC-5),
 * then give the recovered generation its slot.  Returns 0 (*meta becomes
 * the recovered roots) or `failed` (the caller rebuilds). */
static int recover_from_checkpoint(coord_store *s, layout_meta *meta,
                                   int failed)
{
    uint64_t off = __atomic_load_n(&s->hdr->durable_commit, __ATOMIC_ACQUIRE);
    const layout_commit *c = checkpoint_commit(s, off);
    if (!c)
        return failed;
    layout_meta m = { 0 };
    m.roots = c->roots;
    m.file_size = s->file_size;
    layout_meta_seal(&m);
    coord_error why = { 0 };
    memset(s->chunk, 0, sizeof(s->chunk)); /* attached for a failed slot */
    if (coord_recover(s, &m, true, false, &why) != 0 || coord_write_meta(s) != 0)
        return failed;
    s->from_checkpoint = true;
    m.roots = s->roots;
    layout_meta_seal(&m);
    *meta = m;
    return 0;
}

/* Pick the meta, recover if needed, and mark the file open (clean_shutdown
 * = 0, durable before any write can follow). */
static int attach(coord_store *s, coord_error *err)
{
    const layout_meta *m0 = (const layout_meta *)(s->map + LAYOUT_META_OFFSET_0);
    const layout_meta *m1 = (const layout_meta *)(s->map + LAYOUT_META_OFFSET_1);
    int pick = layout_meta_pick(m0, m1);
    uint32_t clean = __atomic_load_n(&s->hdr->clean_shutdown, __ATOMIC_ACQUIRE);
    int rc;
    if (pick < 0 && !clean) {
        /* F-REC-9, else F-REC-6: a power cut can tear both slots (each
         * written back mid-update); the log still says what was committed.
         * A cleanly closed file with no valid slot is damage. */
        layout_meta from_checkpoint;
        if (recover_from_checkpoint(s, &from_checkpoint, SUTRA_ECORRUPT) == 0)
            return mark_open(s, err);
        coord_error why = { 0 };
        s->rebuilt = true;
        rc = coord_rebuild(s, UINT64_MAX, &why);
        if (rc)
            return coord_fail(err, rc, "F-META-4: neither meta slot is valid, "
                              "and %s", why.message);
        return mark_open(s, err);
    }
    if (pick < 0)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-META-4: neither meta slot is valid; the file "
                          "cannot be recovered automatically");
    layout_meta meta = pick ? *m1 : *m0;
    uint64_t published = __atomic_load_n(&s->hdr->generation, __ATOMIC_ACQUIRE);
    bool repair = !clean || published != meta.roots.generation;
    rc = coord_recover(s, &meta, repair, true, err);
    if (rc == SUTRA_ECORRUPT && repair)
        rc = recover_from_older_slot(s, &meta, pick ? m0 : m1, rc);
    /* F-REC-6: a log that fails its checks (records lost in a power cut, a
     * short copy) is rebuilt from its longest valid prefix, or refused. */
    if (rc == SUTRA_ECORRUPT) {
        s->rebuilt = true;
        rc = coord_rebuild(s, meta.roots.generation, err);
    }
    if (!rc)
        rc = mark_open(s, err);
    /* F-META-6: the next table this slot's writer was filling, unless a
     * rebuild or a roll-forward moved past the slot's generation */
    if (!rc && !s->rebuilt && s->roots.generation == meta.roots.generation)
        coord_grow_resume(s, meta.next_hash_root);
    return rc;
}

/* clean_shutdown = 0, durable before any write can follow. */
static int mark_open(coord_store *s, coord_error *err)
{
    /* F-REC-7: what this open discarded past committed_end stays discarded
     * for every later recovery; durable with the sync below */
    int rc = coord_seal_log_end(s);
    if (!rc)
        rc = s->io->store32(s->io, &s->hdr->clean_shutdown, 0);
    if (!rc)
        rc = s->io->store64(s->io, &s->hdr->writer_pid, (uint64_t)getpid());
    if (!rc)
        rc = s->io->sync(s->io, s->fd);
    if (rc)
        return coord_fail(err, rc, "cannot mark the file open: %s",
                          strerror(rc));
    coord_note_durable(s);
    return 0;
}

static void store_free(coord_store *s)
{
    coord_grow_abandon(s);
    if (s->map)
        munmap(s->map, s->map_reserve);
    if (s->sync_map)
        munmap((void *)s->sync_map, s->map_reserve);
    if (s->fd >= 0)
        s->io->close(s->io, s->fd);
    if (s->sync_fd >= 0)
        s->io->close(s->io, s->sync_fd);
    coord_group_free(&s->group);
    coord_assoc_free(&s->assoc_index);
    free(s);
}

int coord_store_open(const char *path, const coord_store_options *opts,
                     coord_store **out, coord_error *err)
{
    coord_store_options o = opts ? *opts : (coord_store_options){0};
    int rc = check_options(&o, err);
    if (rc)
        return rc;
    coord_io *io = o.io ? o.io : coord_io_posix();
    if (access(path, F_OK) != 0) {
        if (errno != ENOENT)
            return coord_fail(err, errno, "cannot access %s", path);
        rc = create_file(io, path, o.vector_dim,
                         o.map_reserve ? o.map_reserve
                                       : LAYOUT_DEFAULT_MAP_RESERVE, err);
        if (rc)
            return rc;
    }
    coord_store *s = calloc(1, sizeof(*s));
    if (!s)
        return coord_fail(err, ENOMEM, "no memory for the store");
    s->io = io;
    s->fd = -1;
    s->sync_fd = -1;
    rc = map_file(s, path, &o, err);
    if (!rc)
        rc = attach(s, err);
    if (rc) {
        store_free(s);
        return rc;
    }
    coord_group_reset(s);
    coord_stat_publish(s);
    *out = s;
    return 0;
}

int coord_store_close(coord_store *s, bool clean)
{
    if (!s)
        return 0;
    /* F-HDR-6: clean_shutdown = 1 only once every published word is
     * durable, so an open that trusts it never skips a needed repair. */
    int rc = 0;
    if (clean && s->read_only)
        rc = SUTRA_EREADONLY;
    if (clean && !s->read_only) {
        coord_group_reset(s);
        rc = s->io->sync(s->io, s->fd);
        if (!rc)
            rc = coord_store_durable_words(s, &s->roots);
        if (!rc)
            rc = s->io->store32(s->io, &s->hdr->clean_shutdown, 1);
        if (!rc)
            rc = s->io->sync(s->io, s->fd);
    }
    store_free(s);
    return rc;
}

/* ---- queries ---------------------------------------------------------- */

int coord_store_sync(coord_store *s, coord_error *err)
{
    if (s->read_only)
        return coord_fail(err, SUTRA_EREADONLY, "the store is read-only");
    coord_sync_ticket t;
    coord_store_sync_begin(s, &t);
    return coord_store_sync_end(s, &t, coord_sync_run(&t), err);
}

void coord_store_sync_begin(coord_store *s, coord_sync_ticket *t)
{
    *t = (coord_sync_ticket){ .io = s->io, .fd = s->sync_fd,
                              .committed_end = s->roots.committed_end,
                              .last_commit = s->roots.last_commit };
}

bool coord_store_sync_begin_log(coord_store *s, coord_sync_ticket *t)
{
    coord_store_sync_begin(s, t);
    uint64_t from = s->log_durable_end, to = s->roots.committed_end;
    if (!s->checkpointed || !s->sync_map || from < LAYOUT_DATA_START ||
        from >= to)
        return false;
    /* A node chunk allocated since: its word in the header must reach the
     * disk with it, or a meta slot that outlives a power cut names nodes
     * without a chunk (F-NODE-2) and recovery has to rebuild.  Chunks are
     * few (they double), so such a sync is rare. */
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS && s->chunk[k]; k++)
        if ((uint64_t)((const uint8_t *)s->chunk[k] - s->map) -
                LAYOUT_REGION_BODY >= from)
            return false;
    t->log_from = from;
    t->log_addr = s->sync_map + from;
    return true;
}

bool coord_store_log_durable(const coord_store *s)
{
    return s->synced || s->log_durable_end == s->roots.committed_end;
}

int coord_sync_run(const coord_sync_ticket *t)
{
    if (t->log_addr)
        return t->io->sync_range(t->io, t->fd, t->log_addr, t->log_from,
                                 t->committed_end - t->log_from);
    return t->io->sync(t->io, t->fd);
}

int coord_store_sync_end(coord_store *s, const coord_sync_ticket *t, int rc,
                         coord_error *err)
{
    if (s->read_only) {
        if (!rc)
            coord_count_sync(s);
        return rc ? coord_fail(err, rc, "fdatasync failed: %s", strerror(rc))
                  : 0;
    }
    if (rc) {
        s->read_only = true;
        coord_stat_publish(s);
        return coord_fail(err, rc, "fdatasync failed: %s", strerror(rc));
    }
    if (t->committed_end > s->log_durable_end)
        s->log_durable_end = t->committed_end;
    coord_count_sync(s);
    if (t->log_addr)
        return 0; /* only the log: the words wait for a checkpoint */
    /* what was published when the sync began is durable, with every word
     * stored before it; generations published since are not known to be */
    s->synced = s->roots.last_commit == t->last_commit;
    layout_roots covered = s->roots;
    covered.committed_end = t->committed_end;
    covered.last_commit = t->last_commit;
    (void)coord_store_durable_words(s, &covered);
    return 0;
}

void coord_store_set_sync_gate(coord_store *s,
                               int (*gate)(void *arg, coord_error *err),
                               void *arg)
{
    s->sync_gate = gate;
    s->sync_gate_arg = arg;
}

bool coord_store_synced(const coord_store *s)
{
    return s->synced;
}

void coord_store_stats_get(const coord_store *s, coord_store_stats *out)
{
    const coord_stat_words *w = &s->stat;
    *out = (coord_store_stats){
        .generation = __atomic_load_n(&w->generation, __ATOMIC_RELAXED),
        .last_seq = __atomic_load_n(&w->last_seq, __ATOMIC_RELAXED),
        .committed_end = __atomic_load_n(&w->committed_end, __ATOMIC_RELAXED),
        .file_size = __atomic_load_n(&w->file_size, __ATOMIC_RELAXED),
        .node_count = __atomic_load_n(&w->node_count, __ATOMIC_RELAXED),
        .concept_count = __atomic_load_n(&w->concept_count, __ATOMIC_RELAXED),
        .version_count = __atomic_load_n(&w->version_count, __ATOMIC_RELAXED),
        .tombstone_count = __atomic_load_n(&w->tombstone_count, __ATOMIC_RELAXED),
        .syncs = __atomic_load_n(&w->syncs, __ATOMIC_RELAXED),
        .assoc_count = __atomic_load_n(&w->assoc_count, __ATOMIC_RELAXED),
        .vector_dim = s->dim,
        .read_only = __atomic_load_n(&w->read_only, __ATOMIC_RELAXED) != 0,
        .rebuilt_at_open = s->rebuilt, /* set before the store is shared */
        .checkpoint_at_open = s->from_checkpoint,
    };
}

uint32_t coord_store_dim(const coord_store *s)
{
    return s->dim;
}

/* The COMMIT record at `off`, whole below `limit` and checksummed
 * (F-COM-1), or NULL. */
static const layout_commit *commit_below(const coord_store *s, uint64_t off,
                                         uint64_t limit)
{
    if (off < LAYOUT_DATA_START || off % LAYOUT_RECORD_ALIGN != 0 ||
        off > limit || limit - off < sizeof(layout_commit))
        return NULL;
    const layout_commit *c = (const layout_commit *)(s->map + off);
    uint64_t body = (uint64_t)c->request_count * sizeof(layout_commit_entry);
    if (c->rec.type != LAYOUT_REC_COMMIT ||
        c->rec.length != sizeof(*c) + body || limit - off < c->rec.length ||
        !layout_rec_verify(&c->rec))
        return NULL;
    return c;
}

const layout_commit *coord_commit_at(const coord_store *s, uint64_t off)
{
    return commit_below(s, off, s->roots.committed_end);
}

int coord_store_recent_commits(const coord_store *s, uint64_t max_entries,
                               coord_commit_visit visit, void *ctx)
{
    uint64_t off = s->roots.last_commit, visited = 0;
    uint64_t expect_gen = s->roots.generation;
    while (off && visited < max_entries) {
        const layout_commit *c = coord_commit_at(s, off);
        /* F-COM-2: each link goes strictly back, one generation at a time. */
        if (!c || c->roots.generation != expect_gen || c->prev_commit >= off)
            return SUTRA_ECORRUPT;
        const layout_commit_entry *e = (const layout_commit_entry *)(c + 1);
        for (uint32_t i = c->request_count; i > 0 && visited < max_entries; i--) {
            visit(ctx, &e[i - 1], c->roots.generation);
            visited++;
        }
        off = c->prev_commit;
        expect_gen--;
    }
    return 0;
}
