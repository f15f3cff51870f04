/*
 * tests/unit/test_faults.c — disk full, I/O errors, failed fsyncs and power
 * cuts, injected through the fault-injecting io (coordinator/io_fault.h)
 * under the store API and the committer.
 *
 * What each test proves:
 *   - ENOSPC on extend or pwrite, a short write, EIO on pwrite: the commit
 *     fails with a clear error, nothing is published (every byte below the
 *     committed end — header words, meta slots, index words — is unchanged,
 *     so readers see exactly what they saw), the store stays writable, and
 *     later commits succeed once the fault is gone — except when the
 *     failed write was a group's own synced write (F-COM-6): any error of
 *     it, ENOSPC too, may be its sync's, and it is treated as one.
 *   - A failed fsync (a commit's, after its meta slot is written and with
 *     unsynced generations before it, a group's own ranged sync with EIO
 *     or ENOSPC, or an interval sync):
 *     the store turns read-only (SUTRA_EREADONLY) and stays so until
 *     coord_store_reverify() has rewritten and synced what it published;
 *     a power cut after that loses nothing published, and the group whose
 *     sync failed is gone.  The io model keeps what a failed sync covered
 *     lost until it is written again (Linux marks such pages clean).
 *   - Power cuts under --sync none and interval (F-REC-5, F-REC-6): the
 *     recovered state is exactly one of the committed generations, at
 *     least the last one synced, and the file verifies.
 *   - Through the committer: clients get the errno, then SUTRA_EREADONLY,
 *     then success again after re-verification; SUTRA_EFULL when the file
 *     reaches its reserve, without turning read-only.
 * Seeds are printed; SUTRA_FAULT_SEED replays a run, SUTRA_FAULT_CYCLES
 * changes the number of power cuts.
 */
#include "tests/unit/fault_fixture.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "coordinator/committer.h"
#include "tests/unit/committer_fixture.h"
#include "coordinator/dedup.h"

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static uint64_t g_faults; /* injected over the whole run, for the summary */

/* ---- helpers ---------------------------------------------------------- */

static uint8_t *image_of(const char *path, uint64_t len)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, 0), (ssize_t)len);
    close(fd);
    return buf;
}

/* Nothing below `len` changed: no word, no meta slot, no record. */
static void assert_image_same(const char *path, const uint8_t *before,
                              uint64_t len)
{
    uint8_t *now = image_of(path, len);
    for (uint64_t i = 0; i < len; i++) {
        if (now[i] != before[i]) {
            print_error("byte %llu changed: %02x -> %02x\n",
                        (unsigned long long)i, before[i], now[i]);
            fail();
        }
    }
    free(now);
}

static coord_store_stats stats_of(coord_store *s)
{
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    return st;
}

/* F-META-2, checked at every store of the header's generation word: the
 * slot of the generation being published is already valid and holds it,
 * so a reader that sees the word finds the slot.  Forwards everything to
 * `inner`. */
typedef struct gen_watch {
    coord_io io;
    coord_io *inner;
    unsigned published, unslotted;
    atomic_bool hold_syncs;    /* whole-file and ranged syncs of what is
                                  there (not of a write) wait while set */
    atomic_uint syncs_held;    /* how many began waiting                  */
    /* Linux's errseq: a writeback error of the file is reported once to
     * each open file description, by its next sync (fsync, fdatasync or a
     * write with RWF_DSYNC), whichever description the failed writeback
     * came through.  wb_errors counts the errors; wb_seen, per fd, how
     * many that description has reported. */
    atomic_uint wb_errors;
    atomic_uint wb_seen[64];
} gen_watch;

/* The writeback error `fd`'s description has yet to report, or 0. */
static int gw_wb_error(gen_watch *w, int fd)
{
    if (fd < 0 || fd >= 64)
        return 0;
    unsigned now = atomic_load(&w->wb_errors);
    return atomic_exchange(&w->wb_seen[fd], now) != now ? EIO : 0;
}

static int gw_open(coord_io *io, const char *path, int flags, unsigned mode,
                   int *fd)
{
    gen_watch *w = io->ctx;
    int rc = w->inner->open(w->inner, path, flags, mode, fd);
    if (!rc && *fd >= 0 && *fd < 64)
        atomic_store(&w->wb_seen[*fd], atomic_load(&w->wb_errors));
    return rc;
}
static int gw_pwrite(coord_io *io, int fd, const void *buf, size_t len,
                     uint64_t off)
{
    coord_io *in = ((gen_watch *)io->ctx)->inner;
    return in->pwrite(in, fd, buf, len, off);
}
static int gw_extend(coord_io *io, int fd, uint64_t from, uint64_t to)
{
    coord_io *in = ((gen_watch *)io->ctx)->inner;
    return in->extend(in, fd, from, to);
}
static void gw_hold(gen_watch *w)
{
    if (atomic_load(&w->hold_syncs)) {
        atomic_fetch_add(&w->syncs_held, 1);
        while (atomic_load(&w->hold_syncs))
            usleep(1000);
    }
}
static int gw_sync(coord_io *io, int fd)
{
    gen_watch *w = io->ctx;
    gw_hold(w);
    int rc = w->inner->sync(w->inner, fd);
    return rc ? rc : gw_wb_error(w, fd);
}
static int gw_sync_range(coord_io *io, int fd, const void *addr, uint64_t off,
                         uint64_t len)
{
    gen_watch *w = io->ctx;
    gw_hold(w);
    int rc = w->inner->sync_range(w->inner, fd, addr, off, len);
    return rc ? rc : gw_wb_error(w, fd);
}
static int gw_pwrite_sync(coord_io *io, int fd, const void *buf, size_t len,
                          uint64_t off)
{
    gen_watch *w = io->ctx;
    int rc = w->inner->pwrite_sync(w->inner, fd, buf, len, off);
    return rc ? rc : gw_wb_error(w, fd);
}
static int gw_sync_dir(coord_io *io, const char *path)
{
    coord_io *in = ((gen_watch *)io->ctx)->inner;
    return in->sync_dir(in, path);
}
static int gw_store64(coord_io *io, uint64_t *word, uint64_t value)
{
    gen_watch *w = io->ctx;
    const uint8_t *base = (const uint8_t *)word - offsetof(layout_header, generation);
    if ((uintptr_t)base % LAYOUT_PAGE_SIZE == 0 &&
        memcmp(base, LAYOUT_MAGIC, LAYOUT_MAGIC_LEN) == 0) {
        const layout_meta *slot = (const layout_meta *)(
            base + (value % 2 ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0));
        w->published++;
        if (!layout_meta_valid(slot) || slot->roots.generation != value)
            w->unslotted++;
    }
    return w->inner->store64(w->inner, word, value);
}
static int gw_store32(coord_io *io, uint32_t *word, uint32_t value)
{
    coord_io *in = ((gen_watch *)io->ctx)->inner;
    return in->store32(in, word, value);
}
static void gw_close(coord_io *io, int fd)
{
    coord_io *in = ((gen_watch *)io->ctx)->inner;
    in->close(in, fd);
}
static void gw_changed(coord_io *io, int fd, uint64_t off, uint64_t len)
{
    coord_io *in = ((gen_watch *)io->ctx)->inner;
    if (in->changed)
        in->changed(in, fd, off, len);
}

static void gen_watch_init(gen_watch *w, coord_io *inner)
{
    *w = (gen_watch){ .inner = inner };
    w->io = (coord_io){ .open = gw_open, .pwrite = gw_pwrite,
                        .extend = gw_extend, .sync = gw_sync,
                        .pwrite_sync = gw_pwrite_sync,
                        .sync_range = gw_sync_range, .sync_dir = gw_sync_dir,
                        .store64 = gw_store64, .store32 = gw_store32,
                        .close = gw_close, .changed = gw_changed, .ctx = w };
}

typedef struct rig {
    fx_dir d;
    coord_io_fault *f;
    gen_watch w;           /* the fault table, watched (F-META-2)         */
    coord_store *s;
    fx_model *m;
    uint64_t no;
} rig;

/* `gens` synced generations built from `seed`; the fault table's own
 * random choices (power cuts) come from `fault_seed`. */
static void rig_open_seeded(rig *r, uint64_t seed, uint64_t fault_seed,
                            uint32_t gens)
{
    memset(r, 0, sizeof(*r));
    fx_dir_make(&r->d);
    assert_int_equal(coord_io_fault_new(fault_seed, &r->f), 0);
    gen_watch_init(&r->w, coord_io_fault_io(r->f));
    coord_error err = { 0 };
    r->s = fx_open(r->d.path, &r->w.io, NULL, &err);
    r->m = calloc(1, sizeof(*r->m));
    for (uint32_t g = 0; g < gens; g++) {
        fx_req q = { 0 };
        fx_build_group(&q, r->m, seed + g, 12);
        assert_int_equal(fx_commit(r->s, &q, r->m, ++r->no, true, &err), 0);
    }
}

static void rig_open(rig *r, uint64_t seed, uint32_t gens)
{
    rig_open_seeded(r, seed, seed, gens);
}

static void rig_close(rig *r)
{
    assert_int_equal(r->w.unslotted, 0);
    g_faults += coord_io_fault_injected(r->f);
    coord_store_close(r->s, true);
    coord_io_fault_free(r->f);
    fx_dir_remove(&r->d);
    free(r->m);
}

/* A group that commits cleanly once the fault is gone. */
static void commit_next(rig *r, bool sync)
{
    coord_error err = { 0 };
    fx_req q = { 0 };
    fx_build_group(&q, r->m, 1000 + r->no, 10);
    int rc = fx_commit(r->s, &q, r->m, ++r->no, sync, &err);
    if (rc)
        print_error("commit: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
}

/* Try a group (synced when `sync`) that must fail with `want`; the model
 * does not advance. */
static void commit_fails_sync(rig *r, bool sync, int want,
                              const char *in_message)
{
    coord_error err = { 0 };
    fx_req q = { 0 };
    fx_state saved = r->m->open;
    fx_build_group(&q, r->m, 5000 + r->no, 10);
    int rc = fx_commit(r->s, &q, NULL, ++r->no, sync, &err);
    r->m->open = saved;
    if (rc != want)
        print_error("commit: %d (want %d) %s\n", rc, want, err.message);
    assert_int_equal(rc, want);
    if (in_message)
        assert_non_null(strstr(err.message, in_message));
}

static void commit_fails(rig *r, int want, const char *in_message)
{
    commit_fails_sync(r, true, want, in_message);
}

/* ---- disk full and write errors ---------------------------------------- */

static void test_faults_enospc_on_extend(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 11, 3);
    coord_store_stats before = stats_of(r.s);
    uint8_t *img = image_of(r.d.path, before.committed_end);

    /* a concept bigger than the room left forces an extend */
    uint64_t big = before.file_size - before.committed_end + 4096;
    char *content = calloc(1, big);
    memset(content, 'z', big);
    coord_io_fault_fail(r.f, COORD_FAULT_EXTEND, 1, ENOSPC, true);
    for (int attempt = 0; attempt < 2; attempt++) {
        fx_req q = { 0 };
        fx_req_learn_bytes(&q, 1, content, (uint32_t)big);
        coord_error err = { 0 };
        assert_int_equal(fx_commit(r.s, &q, NULL, ++r.no, true, &err), ENOSPC);
        assert_non_null(strstr(err.message, "extend"));
    }
    coord_store_stats after = stats_of(r.s);
    assert_int_equal(after.generation, before.generation);
    assert_int_equal(after.file_size, before.file_size);
    assert_false(after.read_only);
    assert_image_same(r.d.path, img, before.committed_end);
    fx_check_state(r.d.dir, r.m, 3);

    /* space returns: the big write commits (as an item outside the model,
     * checked here and then forgotten), and so do later ones */
    coord_io_fault_disarm(r.f);
    const uint32_t big_item = FX_ITEMS + 1;
    fx_req q = { 0 };
    fx_req_learn_bytes(&q, big_item, content, (uint32_t)big);
    coord_error err = { 0 };
    assert_int_equal(fx_commit(r.s, &q, NULL, ++r.no, true, &err), 0);
    assert_true(stats_of(r.s).file_size > before.file_size);
    sutra_db *db;
    assert_int_equal(sutra_open(r.d.dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    uint8_t id[16];
    fx_item_id(big_item, id);
    sutra_concept c;
    assert_int_equal(sutra_get(&snap, (const sutra_id *)id, &c), 0);
    assert_int_equal(c.content_len, big);
    assert_memory_equal(c.content, content, big);
    sutra_close(db);
    fx_req_forget(&q, NULL, big_item);
    assert_int_equal(fx_commit(r.s, &q, NULL, ++r.no, true, &err), 0);
    r.m->gen[4] = r.m->gen[3];
    r.m->gen[5] = r.m->gen[3];
    r.m->gens = 5;
    commit_next(&r, true);
    fx_check_state(r.d.dir, r.m, 6);
    free(content);
    free(img);
    rig_close(&r);
}

static void check_read_only_until_reverified(rig *r, uint64_t published);

/* A write of the group fails with `err_code` (after a random prefix when
 * `short_write`); the group is synced (by its own write, F-COM-6) when
 * `sync`. */
static void check_write_fault(int err_code, bool short_write, bool sync)
{
    rig r;
    rig_open(&r, 21 + (uint64_t)err_code, 4);
    coord_store_stats before = stats_of(r.s);
    uint8_t *img = image_of(r.d.path, before.committed_end);
    if (short_write)
        coord_io_fault_short_write(r.f, 1, err_code);
    else
        coord_io_fault_fail(r.f, COORD_FAULT_PWRITE, 1, err_code, true);
    commit_fails_sync(&r, sync, err_code, "write");
    if (sync) {
        /* A synced group's write is its sync too (F-COM-6), and whatever
         * the error (ENOSPC too) it may be the sync's, which may have
         * dropped dirty pages, as a failed fdatasync may: nothing was
         * published, and the store refuses writes until what it published
         * is proven on disk again. */
        assert_image_same(r.d.path, img, before.committed_end);
        coord_io_fault_disarm(r.f);
        check_read_only_until_reverified(&r, 4);
        free(img);
        rig_close(&r);
        return;
    }
    if (!short_write) /* still failing: still nothing */
        commit_fails_sync(&r, false, err_code, "write");
    coord_store_stats after = stats_of(r.s);
    assert_int_equal(after.generation, before.generation);
    assert_int_equal(after.last_seq, before.last_seq);
    assert_false(after.read_only);
    assert_image_same(r.d.path, img, before.committed_end);
    fx_check_state(r.d.dir, r.m, 4);
    assert_true(coord_io_fault_injected(r.f) >= 1);

    coord_io_fault_disarm(r.f);
    commit_next(&r, true);
    commit_next(&r, false);
    fx_check_state(r.d.dir, r.m, 6);
    if (short_write) {
        /* the torn bytes past the committed end do not confuse a restart */
        coord_store_close(r.s, false);
        coord_error err = { 0 };
        r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
        fx_check_state(r.d.dir, r.m, 6);
    }
    free(img);
    rig_close(&r);
}

static void test_faults_enospc_on_pwrite(void **state)
{
    (void)state;
    check_write_fault(ENOSPC, false, false);
}

static void test_faults_enospc_on_synced_write(void **state)
{
    (void)state;
    check_write_fault(ENOSPC, false, true);
}

static void test_faults_eio_on_pwrite(void **state)
{
    (void)state;
    check_write_fault(EIO, false, true);
}

static void test_faults_short_write(void **state)
{
    (void)state;
    check_write_fault(ENOSPC, true, false);
}

/* ---- failed fsync ------------------------------------------------------- */

/* After a failed sync: writes refused, reverify refused while the disk still
 * fails, accepted once it works; then a power cut loses nothing published. */
/* A power cut now loses nothing of generation `gen`: after it the file
 * holds exactly that generation, and the store takes the next one. */
static void check_kept_after_power_cut(rig *r, uint64_t gen)
{
    coord_error err = { 0 };
    coord_io_fault_power_loss(r->f, COORD_POWER_NOTHING);
    coord_store_close(r->s, false);
    r->s = fx_open(r->d.path, &r->w.io, NULL, &err);
    assert_int_equal(stats_of(r->s).generation, gen);
    fx_check_state(r->d.dir, r->m, gen);
    r->m->gens = gen;
    commit_next(r, true);
    fx_check_state(r->d.dir, r->m, gen + 1);
}

static void check_read_only_until_reverified(rig *r, uint64_t published)
{
    coord_store_stats st = stats_of(r->s);
    assert_true(st.read_only);
    assert_int_equal(st.generation, published);
    commit_fails(r, SUTRA_EREADONLY, "I/O error");
    coord_error err = { 0 };
    assert_int_equal(coord_store_sync(r->s, &err), SUTRA_EREADONLY);

    coord_io_fault_fail(r->f, COORD_FAULT_SYNC, 1, EIO, true);
    assert_int_equal(coord_store_reverify(r->s, &err), EIO);
    assert_true(stats_of(r->s).read_only);
    commit_fails(r, SUTRA_EREADONLY, NULL);

    coord_io_fault_disarm(r->f);
    int rc = coord_store_reverify(r->s, &err);
    if (rc)
        print_error("reverify: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    assert_false(stats_of(r->s).read_only);
    assert_int_equal(stats_of(r->s).generation, published);
    fx_check_state(r->d.dir, r->m, published);

    /* power cut right after: every published generation is on disk */
    check_kept_after_power_cut(r, published);
}

/* A commit's sync that fails also covered the generations published before
 * it without a sync: they are rewritten and synced by the re-verification,
 * so the power cut in check_read_only_until_reverified keeps them (the io
 * model drops what a failed sync covered). */
static void test_faults_commit_sync_fails_after_unsynced(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 31, 3);
    commit_next(&r, false);
    commit_next(&r, false); /* generations 4 and 5 published, not synced */
    coord_io_fault_fail(r.f, COORD_FAULT_SYNC, 1, EIO, false);
    commit_fails(&r, EIO, "fdatasync");
    assert_false(coord_store_synced(r.s));
    check_read_only_until_reverified(&r, 5);
    rig_close(&r);
}

/* F-COM-6: a group that continues a durable log is synced by its own
 * write, before any word or meta slot names it; when that sync fails the
 * group is reported failed, no slot names it, and its commit record is
 * spoiled so that no recovery rolls forward into it. */
static void check_group_sync_fails(int err_code)
{
    rig r;
    rig_open(&r, 41 + (uint64_t)err_code, 3);
    uint64_t end = stats_of(r.s).committed_end;
    coord_io_fault_fail(r.f, COORD_FAULT_SYNC, 1, err_code, false);
    commit_fails(&r, err_code, "sync");
    const uint64_t slot = (4 % 2) ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0;
    const uint64_t other = (3 % 2) ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0;
    uint8_t *img = image_of(r.d.path, LAYOUT_DATA_START);
    const layout_meta *m4 = (const layout_meta *)(img + slot);
    assert_true(!layout_meta_valid(m4) || m4->roots.generation < 4);
    free(img);
    img = image_of(r.d.path, end + 4096);
    bool commit_left = false; /* a whole COMMIT record past the end */
    for (uint64_t off = end; off + sizeof(layout_commit) <= end + 4096;
         off += LAYOUT_RECORD_ALIGN) {
        const layout_commit *c = (const layout_commit *)(img + off);
        if (c->rec.type == LAYOUT_REC_COMMIT && layout_rec_verify(&c->rec))
            commit_left = true;
    }
    assert_false(commit_left);
    const layout_meta *m3 = (const layout_meta *)(img + other);
    assert_true(layout_meta_valid(m3));
    assert_int_equal(m3->roots.generation, 3);
    assert_int_equal(((const layout_header *)img)->generation, 3);
    free(img);
    fx_check_state(r.d.dir, r.m, 3);
    check_read_only_until_reverified(&r, 3);
    rig_close(&r);
}

static void test_faults_group_sync_fails(void **state)
{
    (void)state;
    check_group_sync_fails(EIO);
}

/* The sync of a write with RWF_DSYNC reports any writeback error of the
 * file, "no space" too, and the write cannot be told from it: ENOSPC from
 * a group's own sync turns the store read-only like EIO, or the pages it
 * may have dropped would be lost at the next power cut although the next
 * fdatasync succeeds. */
static void test_faults_group_sync_enospc(void **state)
{
    (void)state;
    check_group_sync_fails(ENOSPC);
}

static void test_faults_interval_sync_fails(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 51, 2);
    commit_next(&r, false);
    commit_next(&r, false);
    commit_next(&r, false); /* generations 3..5 published, not synced */
    coord_io_fault_fail(r.f, COORD_FAULT_SYNC, 1, EIO, false);
    coord_error err = { 0 };
    assert_int_equal(coord_store_sync(r.s, &err), EIO);
    assert_non_null(strstr(err.message, "fdatasync"));
    assert_false(coord_store_synced(r.s));
    check_read_only_until_reverified(&r, 5);
    rig_close(&r);
}

/* F-HDR-6 at a stop: a close whose sync fails leaves the file unmarked and
 * says so, so the coordinator does not report a clean stop; a read-only
 * store is never marked clean. */
static void test_faults_close_reports_a_failed_clean_mark(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 52, 2);
    commit_next(&r, false);
    coord_io_fault_fail(r.f, COORD_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(coord_store_close(r.s, true), EIO);
    r.s = NULL;
    uint8_t *img = image_of(r.d.path, LAYOUT_PAGE_SIZE);
    assert_int_equal(((const layout_header *)img)->clean_shutdown, 0);
    free(img);
    coord_error err = { 0 };
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    assert_non_null(r.s);
    commit_next(&r, false);
    coord_io_fault_fail(r.f, COORD_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(coord_store_sync(r.s, &err), EIO); /* read-only now */
    assert_int_equal(coord_store_close(r.s, true), SUTRA_EREADONLY);
    r.s = NULL;
    img = image_of(r.d.path, LAYOUT_PAGE_SIZE);
    assert_int_equal(((const layout_header *)img)->clean_shutdown, 0);
    free(img);
    rig_close(&r);
}

/* The io model itself: a failed sync loses its writes until they are
 * written again (what makes the rewrite in coord_store_reverify needed). */
/* The io model, page by page: a lost write is on the disk again where a
 * later successful sync wrote its pages (the kernel writes whole pages, as
 * memory holds them), and only there; a ranged sync counts for its own
 * pages, a whole-file sync for every page written since. */
/* A fresh file under a fault table of its own, for tests of the model. */
static coord_io *model_open(uint64_t seed, fx_dir *d, coord_io_fault **f,
                            int *fd)
{
    fx_dir_make(d);
    assert_int_equal(coord_io_fault_new(seed, f), 0);
    coord_io *io = coord_io_fault_io(*f);
    assert_int_equal(io->open(io, d->path, O_RDWR | O_CREAT, 0640, fd), 0);
    return io;
}

static void test_faults_io_model_lost_write_settles_by_page(void **state)
{
    (void)state;
    fx_dir d;
    coord_io_fault *f;
    int fd;
    coord_io *io = model_open(62, &d, &f, &fd);
    enum { SPAN = 3 * 4096 };
    uint8_t *a = malloc(SPAN), *b = malloc(SPAN), *got = malloc(SPAN);
    memset(a, 'A', SPAN);
    memset(b, 'B', SPAN);
    assert_int_equal(io->pwrite(io, fd, a, SPAN, 0), 0);
    assert_int_equal(io->sync(io, fd), 0);

    /* B over all three pages, lost to a failed sync */
    assert_int_equal(io->pwrite(io, fd, b, SPAN, 0), 0);
    coord_io_fault_fail(f, COORD_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(io->sync(io, fd), EIO);
    coord_io_fault_disarm(f);
    /* a ranged sync of two bytes on page 0, a whole-file sync after a
     * store of two bytes on page 2: pages 0 and 2 reach the disk as
     * memory holds them, B included; page 1 was never written again */
    assert_int_equal(io->pwrite_sync(io, fd, "cc", 2, 100), 0);
    assert_int_equal(io->pwrite(io, fd, "dd", 2, 2 * 4096 + 100), 0);
    assert_int_equal(io->sync(io, fd), 0);
    coord_io_fault_power_loss(f, COORD_POWER_NOTHING);
    assert_int_equal(pread(fd, got, SPAN, 0), SPAN);
    for (size_t i = 0; i < SPAN; i++) {
        uint8_t want = i / 4096 == 1 ? 'A' : 'B';
        if (i == 100 || i == 101)
            want = 'c';
        if (i == 2 * 4096 + 100 || i == 2 * 4096 + 101)
            want = 'd';
        if (got[i] != want)
            fail_msg("byte %zu: %c, want %c", i, got[i], want);
    }

    /* A failed sync after a ranged one: what the ranged sync wrote stays
     * on the disk (C over pages 0-1, page 0 written by the ranged sync),
     * only the rest is lost (page 1 back to its A). */
    memset(b, 'C', SPAN);
    assert_int_equal(io->pwrite(io, fd, b, 2 * 4096, 0), 0);
    assert_int_equal(io->pwrite_sync(io, fd, "ee", 2, 200), 0);
    coord_io_fault_fail(f, COORD_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(io->sync(io, fd), EIO);
    coord_io_fault_disarm(f);
    assert_int_equal(io->pwrite(io, fd, "ff", 2, 2 * 4096 + 300), 0);
    coord_io_fault_power_loss(f, COORD_POWER_NOTHING);
    assert_int_equal(pread(fd, got, SPAN, 0), SPAN);
    assert_int_equal(got[0], 'C');
    assert_int_equal(got[200], 'e');
    assert_int_equal(got[4096], 'A');
    assert_int_equal(got[2 * 4096 + 300], 'B'); /* "ff" never synced */
    free(a);
    free(b);
    free(got);
    g_faults += coord_io_fault_injected(f);
    io->close(io, fd);
    coord_io_fault_free(f);
    fx_dir_remove(&d);
}

static void test_faults_io_model_failed_sync_loses_writes(void **state)
{
    (void)state;
    fx_dir d;
    coord_io_fault *f;
    int fd;
    coord_io *io = model_open(61, &d, &f, &fd);
    assert_int_equal(io->pwrite(io, fd, "AAAA", 4, 0), 0);
    assert_int_equal(io->sync(io, fd), 0);

    assert_int_equal(io->pwrite(io, fd, "BBBB", 4, 0), 0);
    coord_io_fault_fail(f, COORD_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(io->sync(io, fd), EIO);
    assert_int_equal(io->sync(io, fd), 0); /* "succeeds", wrote nothing */
    assert_int_equal(coord_io_fault_unsynced(f), 1);
    coord_io_fault_power_loss(f, COORD_POWER_NOTHING);
    char buf[5] = { 0 };
    assert_int_equal(pread(fd, buf, 4, 0), 4);
    assert_string_equal(buf, "AAAA");

    assert_int_equal(io->pwrite(io, fd, "BBBB", 4, 0), 0);
    coord_io_fault_fail(f, COORD_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(io->sync(io, fd), EIO);
    assert_int_equal(io->pwrite(io, fd, "BBBB", 4, 0), 0); /* rewritten */
    assert_int_equal(io->sync(io, fd), 0);
    assert_int_equal(coord_io_fault_unsynced(f), 0);
    coord_io_fault_power_loss(f, COORD_POWER_NOTHING);
    assert_int_equal(pread(fd, buf, 4, 0), 4);
    assert_string_equal(buf, "BBBB");

    /* a crash refuses the operation and every later one */
    coord_io_fault_crash_at(f, 2);
    assert_int_equal(io->pwrite(io, fd, "CCCC", 4, 0), 0);
    assert_int_equal(io->pwrite(io, fd, "DDDD", 4, 0), EIO);
    assert_int_equal(io->sync(io, fd), EIO);
    assert_true(coord_io_fault_crashed(f));
    assert_int_equal(pread(fd, buf, 4, 0), 4);
    assert_string_equal(buf, "CCCC"); /* the page cache still has it */
    assert_int_equal(coord_io_fault_power_loss(f, COORD_POWER_NOTHING), 1);
    assert_int_equal(pread(fd, buf, 4, 0), 4);
    assert_string_equal(buf, "BBBB"); /* the disk never did */
    assert_false(coord_io_fault_crashed(f));
    g_faults += coord_io_fault_injected(f);
    io->close(io, fd);
    coord_io_fault_free(f);
    fx_dir_remove(&d);
}

/* ---- power cuts under sync none / interval / commit ---------------------- */

typedef struct cut_totals {
    uint64_t cycles, faults, rebuilt, lost_gens, crashes_mid_commit, rebuilds;
    uint64_t log_syncs; /* syncs of the log only that returned */
} cut_totals;

/* The newest generation a valid meta slot of the file names (what the
 * fast path would pick), or 0. */
static uint64_t newest_meta_generation(const char *path)
{
    uint8_t *img = image_of(path, LAYOUT_DATA_START);
    const layout_meta *m0 = (const layout_meta *)(img + LAYOUT_META_OFFSET_0);
    const layout_meta *m1 = (const layout_meta *)(img + LAYOUT_META_OFFSET_1);
    int pick = layout_meta_pick(m0, m1);
    uint64_t g = pick < 0 ? 0 : (pick ? m1 : m0)->roots.generation;
    free(img);
    return g;
}

enum policy { POLICY_NONE, POLICY_INTERVAL, POLICY_COMMIT };

static void power_cut_cycle(enum policy pol, uint64_t seed, cut_totals *t)
{
    rig r;
    memset(&r, 0, sizeof(r));
    fx_dir_make(&r.d);
    assert_int_equal(coord_io_fault_new(seed, &r.f), 0);
    gen_watch_init(&r.w, coord_io_fault_io(r.f));
    coord_error err = { 0 };
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    r.m = calloc(1, sizeof(*r.m));
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
#define NEXT() (rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 33)
    /* Half the cycles start from a synced first generation of 360..519
     * items, so that the groups after it take the hash table past 3/8
     * (the next table is appended and filled ahead) and past 1/2 (it is
     * named) while crashes and power cuts strike (F-HASH-4). */
    if (NEXT() % 2 == 0) {
        uint32_t items = 360 + (uint32_t)(NEXT() % 160);
        fx_req q = { 0 };
        r.m->open = r.m->gen[r.m->gens];
        for (uint32_t i = 0; i < items; i++)
            fx_req_learn(&q, r.m, i, 1);
        assert_int_equal(fx_commit(r.s, &q, r.m, ++r.no, true, &err), 0);
    }
    /* Half the interval cycles start from a durable checkpoint, the second
     * sync finding the first one's (F-HDR-8): their syncs beside may then
     * sync the log only, as the committer's do between checkpoints. */
    if (pol == POLICY_INTERVAL && NEXT() % 2 == 0)
        for (int i = 0; i < 2; i++)
            assert_int_equal(coord_store_sync(r.s, &err), 0);
    uint32_t gens = 4 + (uint32_t)(NEXT() % 20);
    uint32_t crash_after = (uint32_t)(NEXT() % gens);
    uint64_t synced = r.m->gens, acked = r.m->gens; /* the first, if any */
    bool mid_commit = false;
    /* under interval, half the syncs overlap later commits as the
     * committer's sync thread does: begun after generation `begun`, run
     * and ended one or more commits later */
    coord_sync_ticket ticket;
    uint64_t begun = 0;
    bool open_ticket = false;
    for (uint32_t g = 0; g < gens; g++) {
        if (g == crash_after)
            coord_io_fault_crash_at(r.f, 1 + NEXT() % 400);
        fx_req q = { 0 };
        fx_build_group(&q, r.m, seed * 1000 + g, 1 + (uint32_t)(NEXT() % 40));
        int rc = fx_commit(r.s, &q, NULL, ++r.no, pol == POLICY_COMMIT, &err);
        if (rc) { /* the crash hit this commit: it may or may not survive */
            r.m->gen[r.m->gens + 1] = r.m->open;
            mid_commit = true;
            break;
        }
        fx_model_commit(r.m);
        if (pol == POLICY_COMMIT)
            synced = acked = r.m->gens;
        if (pol == POLICY_INTERVAL && open_ticket) {
            if (NEXT() % 2 == 0)
                continue;
            open_ticket = false;
            if (coord_store_sync_end(r.s, &ticket, coord_sync_run(&ticket),
                                     &err) != 0)
                break; /* crashed during the sync */
            synced = begun;
            t->log_syncs += ticket.log_addr != NULL;
        } else if (pol == POLICY_INTERVAL && NEXT() % 3 == 0) {
            if (NEXT() % 2 == 0) {
                if (NEXT() % 3 == 0 ||
                    !coord_store_sync_begin_log(r.s, &ticket))
                    coord_store_sync_begin(r.s, &ticket);
                begun = r.m->gens;
                open_ticket = true;
                continue;
            }
            if (coord_store_sync(r.s, &err) != 0)
                break; /* crashed during the sync */
            synced = r.m->gens;
        }
    }
    uint64_t published = r.m->gens;
    enum coord_power_mode mode = (enum coord_power_mode)(1 + NEXT() % 3);
    coord_io_fault_power_loss(r.f, mode);
    coord_store_close(r.s, false);
    uint64_t meta_gen = newest_meta_generation(r.d.path);

    r.s = fx_open(r.d.path, NULL, NULL, &err);
    uint64_t rec = stats_of(r.s).generation;
    t->rebuilds += stats_of(r.s).rebuilt_at_open;
    if (pol == POLICY_COMMIT) /* F-COM-4, F-REC-8: never a rebuild */
        assert_false(stats_of(r.s).rebuilt_at_open);
    if (rec < synced || rec < acked || rec > published + mid_commit)
        print_error("seed %llu: recovered generation %llu, synced %llu, "
                    "published %llu\n", (unsigned long long)seed,
                    (unsigned long long)rec, (unsigned long long)synced,
                    (unsigned long long)published);
    assert_true(rec >= synced && rec >= acked);
    assert_true(rec <= published + mid_commit);
    fx_check_state(r.d.dir, r.m, rec);
    /* and it keeps working */
    r.m->gens = rec;
    commit_next(&r, true);
    fx_check_state(r.d.dir, r.m, rec + 1);

    t->cycles++;
    t->faults += (coord_io_fault_injected(r.f) > 0) + 1; /* crash + cut */
    t->rebuilt += rec < meta_gen;
    t->lost_gens += published - (rec < published ? rec : published);
    t->crashes_mid_commit += mid_commit;
    rig_close(&r);
#undef NEXT
}

/*
 * One fdatasync per commit (docs/format.md §8.1): the records, the index
 * words and the meta slot of a generation reach the page cache unsynced,
 * and a power cut may keep any of their pages and lose the others — the
 * meta slot without the records it names, say.  For every operation of a
 * synced commit: crash there, cut the power in every mode (a few seeds for
 * the random ones), recover.  The recovered generation is the last one
 * acknowledged, or the crashed one only if its sync had completed; the
 * state is exactly that generation's.  The sweep must include cuts that
 * left the crashed generation's meta slot valid on disk while recovery
 * rejected it (its records did not all survive): the case one sync allows
 * and the two-sync protocol did not.
 */
typedef struct op_cut {
    uint64_t meta_gen;    /* newest valid meta slot on disk after the cut */
    uint64_t recovered;
    bool synced;          /* the commit's sync had returned               */
} op_cut;

/* Commit generation gens + 1 with a crash at its operation `k`, cut the
 * power in `mode`, recover, and check the state is exactly the recovered
 * generation's: the last acknowledged one, or the crashed one (only an
 * unacknowledged generation may go either way). */
static op_cut crash_commit_at(uint32_t gens, uint64_t k, int mode,
                              uint64_t fault_seed)
{
    rig r;
    rig_open_seeded(&r, 71, fault_seed, gens);
    uint64_t syncs = coord_io_fault_syncs_done(r.f);
    coord_io_fault_crash_at(r.f, k);
    coord_error err = { 0 };
    fx_req q = { 0 };
    fx_build_group(&q, r.m, 1000 + r.no, 10);
    int rc = fx_commit(r.s, &q, r.m, ++r.no, true, &err);
    /* a crash at the last store (durable_end, after the sync) fails
     * nothing: that commit is acknowledged */
    if (rc)
        r.m->gen[gens + 1] = r.m->open;
    op_cut c = { 0 };
    c.synced = coord_io_fault_syncs_done(r.f) > syncs;
    coord_io_fault_power_loss(r.f, (enum coord_power_mode)mode);
    coord_store_close(r.s, false);
    c.meta_gen = newest_meta_generation(r.d.path);
    r.s = fx_open(r.d.path, NULL, NULL, &err);
    c.recovered = stats_of(r.s).generation;
    /* F-COM-4, F-REC-8: a cut inside a synced commit never costs a
     * whole-log rebuild */
    if (stats_of(r.s).rebuilt_at_open)
        print_error("crash at op %llu, mode %d, seed %llu: rebuilt\n",
                    (unsigned long long)k, mode, (unsigned long long)fault_seed);
    assert_false(stats_of(r.s).rebuilt_at_open);
    if (c.recovered != gens && c.recovered != gens + 1)
        print_error("crash at op %llu, mode %d, seed %llu: recovered "
                    "generation %llu\n", (unsigned long long)k, mode,
                    (unsigned long long)fault_seed,
                    (unsigned long long)c.recovered);
    assert_true(c.recovered == gens || c.recovered == gens + 1);
    if (rc == 0 || c.synced)
        assert_int_equal(c.recovered, gens + 1);
    fx_check_state(r.d.dir, r.m, c.recovered);
    rig_close(&r);
    return c;
}

/* Crash at every operation of the commit of generation gens + 1 and cut
 * the power in every mode.  Returns the first operation after the commit's
 * sync; *meta_ahead counts cuts that kept a valid slot of gens + 1 although
 * its sync never returned. */
static uint64_t sweep_commit_ops(uint32_t gens, uint64_t *meta_ahead,
                                 uint64_t *ops_out, uint64_t *cuts_out,
                                 uint64_t *kept_out)
{
    /* how many io operations the commit performs, and which is its sync */
    rig probe;
    rig_open_seeded(&probe, 71, 71, gens);
    uint64_t before = coord_io_fault_total(probe.f);
    uint64_t syncs = coord_io_fault_count(probe.f, COORD_FAULT_SYNC);
    commit_next(&probe, true);
    uint64_t ops = coord_io_fault_total(probe.f) - before;
    assert_int_equal(coord_io_fault_count(probe.f, COORD_FAULT_SYNC),
                     syncs + 1); /* one sync per commit */
    rig_close(&probe);
    assert_true(ops > 10);

    uint64_t cuts = 0, kept_synced = 0, sync_at = 0;
    *meta_ahead = 0;
    for (uint64_t k = 1; k <= ops; k++) {
        for (int mode = COORD_POWER_NOTHING; mode <= COORD_POWER_PAGES; mode++) {
            int seeds = mode == COORD_POWER_NOTHING ? 1 : 2;
            for (int sd = 0; sd < seeds; sd++) {
                op_cut c = crash_commit_at(gens, k, mode,
                                           1000 * k + 10 * (uint64_t)mode + sd);
                kept_synced += c.synced;
                if (c.synced && !sync_at)
                    sync_at = k - 1; /* the first k after the sync */
                *meta_ahead += c.meta_gen == gens + 1 && !c.synced;
                cuts++;
            }
        }
    }
    assert_true(sync_at > 0 && kept_synced > 0);
    *ops_out = ops;
    *cuts_out = cuts;
    *kept_out = kept_synced;
    return sync_at;
}

/*
 * F-COM-6: once a file has a durable checkpoint, a synced commit syncs its
 * own log bytes before any word or meta slot names them.  For every
 * operation of such a commit (the fourth of a new file): crash there, cut
 * the power in every mode, recover: never a rebuild, the last acknowledged
 * generation or the crashed one, and never a valid meta slot on disk for a
 * generation whose sync did not return.
 */
static void test_faults_crash_at_every_ranged_commit_operation(void **state)
{
    (void)state;
    uint64_t meta_ahead, ops, cuts, kept;
    (void)sweep_commit_ops(3, &meta_ahead, &ops, &cuts, &kept);
    print_message("crash at each of %llu operations of a ranged commit: %llu "
                  "power cuts, %llu after its sync (kept it), %llu with its "
                  "meta slot ahead of its records\n",
                  (unsigned long long)ops, (unsigned long long)cuts,
                  (unsigned long long)kept, (unsigned long long)meta_ahead);
    assert_int_equal(meta_ahead, 0);
}

/*
 * F-COM-4: before the first checkpoint (the second commit of a new file)
 * a synced commit is one fdatasync of the whole file: the records, the
 * index words and the meta slot reach the page cache unsynced, and a power
 * cut may keep any of their pages and lose the others — the meta slot
 * without the records it names, say.  For every operation: crash there
 * and cut the power in every mode; then, with the crash at the sync
 * itself, cut until some cut has kept the complete meta slot but not all
 * the records: recovery must go back to the generation before.
 */
static void test_faults_crash_at_every_commit_operation(void **state)
{
    (void)state;
    const uint32_t gens = 1;
    uint64_t ahead, ops, cuts, kept_synced;
    uint64_t sync_at = sweep_commit_ops(gens, &ahead, &ops, &cuts, &kept_synced);

    uint64_t tries = 0, meta_ahead = 0;
    for (uint64_t seed = 1; seed <= 2000 && meta_ahead < 3; seed++, tries++) {
        op_cut c = crash_commit_at(gens, sync_at, COORD_POWER_PAGES, seed);
        meta_ahead += c.meta_gen == gens + 1 && c.recovered == gens;
    }
    print_message("crash at each of %llu operations of a synced commit: %llu "
                  "power cuts, %llu after its sync (kept it); crash at the "
                  "sync: %llu of %llu cuts kept its meta slot without all its "
                  "records (recovered the generation before)\n",
                  (unsigned long long)ops, (unsigned long long)cuts,
                  (unsigned long long)kept_synced,
                  (unsigned long long)meta_ahead, (unsigned long long)tries);
    assert_int_equal(meta_ahead, 3);
}

static void run_power_cuts(enum policy pol, const char *name)
{
    uint64_t seed = env_u64("SUTRA_FAULT_SEED", (uint64_t)time(NULL));
    uint64_t cycles = env_u64("SUTRA_FAULT_CYCLES", 40);
    print_message("power cuts under sync %s: seed %llu (SUTRA_FAULT_SEED)\n",
                  name, (unsigned long long)seed);
    cut_totals t = { 0 };
    for (uint64_t i = 0; i < cycles; i++)
        power_cut_cycle(pol, seed + i, &t);
    print_message("sync %s: %llu power cuts, %llu faults injected, %llu "
                  "crashes inside a commit, %llu recoveries rolled back past "
                  "a valid meta slot, %llu whole-log rebuilds (F-REC-6), "
                  "%llu unsynced generations lost, %llu syncs of the log "
                  "only\n", name,
                  (unsigned long long)t.cycles,
                  (unsigned long long)t.faults,
                  (unsigned long long)t.crashes_mid_commit,
                  (unsigned long long)t.rebuilt,
                  (unsigned long long)t.rebuilds,
                  (unsigned long long)t.lost_gens,
                  (unsigned long long)t.log_syncs);
    g_faults += t.faults;
    assert_int_equal(t.cycles, cycles);
    if (pol == POLICY_INTERVAL && cycles >= 40)
        assert_true(t.log_syncs > 0); /* about one in three cycles has one */
}

static void test_faults_power_cut_sync_none(void **state)
{
    (void)state;
    run_power_cuts(POLICY_NONE, "none");
}

static void test_faults_power_cut_sync_interval(void **state)
{
    (void)state;
    run_power_cuts(POLICY_INTERVAL, "interval");
}

static void test_faults_power_cut_sync_commit(void **state)
{
    (void)state;
    run_power_cuts(POLICY_COMMIT, "commit");
}

/* A kill -9 under sync none (the page cache survives): recovery keeps every
 * published generation — the fast path, no rebuild.  The commit the kill
 * interrupted wrote its whole group before dying, so recovery rolls it
 * forward whole (F-REC-7), and the reply cache rebuilt from the commit
 * records answers its resend instead of applying it again (P-IDEM-3). */
static void test_faults_kill_under_sync_none_keeps_all(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 71, 0);
    for (int g = 0; g < 12; g++)
        commit_next(&r, false);
    coord_io_fault_crash_at(r.f, 3); /* dies inside the next commit */
    coord_error err = { 0 };
    fx_req q = { 0 };
    fx_build_group(&q, r.m, 5000 + r.no, 10);
    assert_int_equal(fx_commit(r.s, &q, NULL, ++r.no, false, &err), EIO);
    r.m->gen[13] = r.m->open; /* the group as written, never acknowledged */
    coord_store_close(r.s, false);
    coord_io_fault_revive(r.f);
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    assert_int_equal(stats_of(r.s).generation, 13);
    fx_check_state(r.d.dir, r.m, 13);
    r.m->gens = 13;

    coord_dedup *dd = NULL;
    assert_int_equal(coord_dedup_create(64, 16, &dd), 0);
    assert_int_equal(coord_store_recent_commits(r.s, 1024,
                                                coord_dedup_rebuild_visit, dd),
                     0);
    coord_dedup_reply dup;
    assert_true(coord_dedup_lookup(dd, 7, r.no, &dup));
    assert_int_equal(dup.generation, 13);
    assert_false(dup.pending);
    assert_false(coord_dedup_lookup(dd, 7, r.no + 1, &dup));
    coord_dedup_destroy(dd);
    commit_next(&r, true);
    fx_check_state(r.d.dir, r.m, 14);
    rig_close(&r);
}

static void patch_file(const char *path, uint64_t off, const void *bytes,
                       size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, len, (off_t)off), (ssize_t)len);
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

/* Both meta slots torn in their second half, as a power cut in the middle
 * of their writeback leaves them. */
static void tear_both_meta_slots(const char *path)
{
    uint8_t junk[LAYOUT_META_SIZE / 2];
    memset(junk, 0x5A, sizeof(junk));
    patch_file(path, LAYOUT_META_OFFSET_0 + 64, junk, sizeof(junk));
    patch_file(path, LAYOUT_META_OFFSET_1 + 64, junk, sizeof(junk));
}

/* F-REC-9: with both meta slots torn (each written back in the middle of
 * an update, which a power cut can leave under F-COM-6, where slots are
 * not synced with their groups), recovery starts from the checkpoint's
 * commit record (F-HDR-8) and rolls forward over the groups synced since:
 * no rebuild, nothing acknowledged lost. */
static void test_faults_both_slots_torn_recover_from_checkpoint(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 89, 4);
    coord_error err = { 0 };
    /* a checkpoint at 4; the second sync makes its words durable */
    assert_int_equal(coord_store_sync(r.s, &err), 0);
    assert_int_equal(coord_store_sync(r.s, &err), 0);
    commit_next(&r, true);
    commit_next(&r, true);
    assert_int_equal(stats_of(r.s).generation, 6);
    coord_io_fault_power_loss(r.f, COORD_POWER_NOTHING);
    coord_store_close(r.s, false);
    tear_both_meta_slots(r.d.path);
    uint8_t *img = image_of(r.d.path, LAYOUT_DATA_START);
    assert_false(layout_meta_valid((const layout_meta *)(img + LAYOUT_META_OFFSET_0)));
    assert_false(layout_meta_valid((const layout_meta *)(img + LAYOUT_META_OFFSET_1)));
    assert_true(((const layout_header *)img)->durable_commit >= LAYOUT_DATA_START);
    free(img);

    /* no generation word is published before its slot is written: both
     * slots are torn, and the checkpoint's roots are in no slot yet */
    unsigned published = r.w.published;
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    coord_store_stats st = stats_of(r.s);
    assert_true(st.checkpoint_at_open);
    assert_false(st.rebuilt_at_open);
    assert_int_equal(st.generation, 6);
    assert_true(r.w.published > published);
    assert_int_equal(r.w.unslotted, 0);
    fx_check_state(r.d.dir, r.m, 6);
    /* a power cut right after the recovery keeps it, from a slot now */
    check_kept_after_power_cut(&r, 6);
    assert_false(stats_of(r.s).checkpoint_at_open);
    rig_close(&r);
}

/* Learn items [from, to) as one generation, synced. */
static void learn_items(rig *r, uint32_t from, uint32_t to)
{
    coord_error err = { 0 };
    fx_req q = { 0 };
    r->m->open = r->m->gen[r->m->gens];
    for (uint32_t i = from; i < to; i++)
        fx_req_learn(&q, r->m, i, 1);
    assert_int_equal(fx_commit(r->s, &q, r->m, ++r->no, true, &err), 0);
}

/* F-REC-9 and F-REC-7 across a table filled ahead (F-HASH-4): its region
 * is appended by a generation at or before the checkpoint, and named by
 * one after it.  With both meta slots torn, recovery rolls forward from
 * the checkpoint's commit record: the scan starts past the region, and
 * must still accept the commit that names it, or every acknowledged
 * generation from there on is lost (found by the power-cut cycles). */
static void test_faults_roll_forward_names_a_table_filled_ahead(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 95, 0);
    coord_error err = { 0 };
    learn_items(&r, 0, 380);
    learn_items(&r, 380, 400); /* past 3/8 of 1024: the next table */
    assert_int_equal(coord_store_sync(r.s, &err), 0);
    assert_int_equal(coord_store_sync(r.s, &err), 0); /* the checkpoint */
    for (uint32_t i = 400; i < 560; i += 20)
        learn_items(&r, i, i + 20); /* named past 512, at 520 */
    uint64_t gen = stats_of(r.s).generation;
    coord_io_fault_power_loss(r.f, COORD_POWER_NOTHING);
    coord_store_close(r.s, false);
    tear_both_meta_slots(r.d.path);
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    coord_store_stats st = stats_of(r.s);
    assert_true(st.checkpoint_at_open);
    assert_false(st.rebuilt_at_open);
    assert_int_equal(st.generation, gen);
    fx_check_state(r.d.dir, r.m, gen);
    rig_close(&r);
}

/* F-REC-7: generations 4..6 are synced by their own log bytes (F-COM-6):
 * neither their meta slots nor the durable_end word reach the disk with
 * them; unsynced 7 and 8 follow, and 8 rewrites slot 0.  The power cut
 * loses 7 and 8 and every unsynced slot write, and leaves slot 0 torn (half
 * of 8 written back): slot 1 holds a generation from before 4.  The synced
 * generations must survive: their groups are whole in the log. */
static void test_faults_synced_generation_survives_lost_slot(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 83, 4); /* each synced */
    coord_store_stats four = stats_of(r.s);
    commit_next(&r, true); /* 5 is in slot 1 and durable */
    commit_next(&r, true);
    coord_store_stats six = stats_of(r.s);
    commit_next(&r, false);
    commit_next(&r, false);
    assert_int_equal(stats_of(r.s).generation, 8);
    uint8_t *img = image_of(r.d.path, LAYOUT_META_OFFSET_0 + LAYOUT_META_SIZE);
    coord_io_fault_power_loss(r.f, COORD_POWER_NOTHING);
    coord_store_close(r.s, false);
    /* slot 0 torn: the first half of generation 8's slot reached the disk */
    patch_file(r.d.path, LAYOUT_META_OFFSET_0, img + LAYOUT_META_OFFSET_0,
               LAYOUT_META_SIZE / 2);
    free(img);
    img = image_of(r.d.path, LAYOUT_DATA_START);
    const layout_meta *m0 = (const layout_meta *)(img + LAYOUT_META_OFFSET_0);
    const layout_meta *m1 = (const layout_meta *)(img + LAYOUT_META_OFFSET_1);
    assert_false(layout_meta_valid(m0));
    assert_true(layout_meta_valid(m1));
    assert_true(m1->roots.generation < 4);
    /* only full syncs store it, and the last one came before 4 */
    assert_true(((const layout_header *)img)->durable_end < four.committed_end);
    free(img);

    coord_error err = { 0 };
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    coord_store_stats st = stats_of(r.s);
    assert_int_equal(st.generation, 6);
    assert_int_equal(st.committed_end, six.committed_end);
    fx_check_state(r.d.dir, r.m, 6);
    /* the rolled-forward generation has its own slot again */
    img = image_of(r.d.path, LAYOUT_DATA_START);
    m0 = (const layout_meta *)(img + LAYOUT_META_OFFSET_0);
    assert_true(layout_meta_valid(m0));
    assert_int_equal(m0->roots.generation, 6);
    assert_int_equal(((const layout_header *)img)->durable_end,
                     six.committed_end);
    free(img);
    /* and a power cut right after the recovery keeps it */
    check_kept_after_power_cut(&r, 6);
    rig_close(&r);
}

/* Generations 1 and 2 fully synced, 3..5 synced by range (F-COM-6); the
 * group of 6 appends the next hash table (F-HASH-4), so its commit is one
 * whole-file sync again (F-COM-4). */
static void slot_ahead_rig(rig *r)
{
    rig_open(r, 97, 3);
    learn_items(r, 0, 300);
    learn_items(r, 300, 340);
    assert_int_equal(stats_of(r->s).generation, 5);
}

static int commit_sixth(rig *r)
{
    coord_error err = { 0 };
    fx_req q = { 0 };
    fx_state saved = r->m->gen[r->m->gens];
    r->m->open = saved;
    for (uint32_t i = 340; i < 420; i++)
        fx_req_learn(&q, r->m, i, 1);
    r->m->open = saved;
    return fx_commit(r->s, &q, NULL, ++r->no, true, &err);
}

/* F-REC-8 after ranged commits: the whole-file sync of generation 6 dies
 * after its meta slot was written, and the power cut keeps that slot's
 * page and none of 6's records.  The other slot is not 5's: the slots of
 * 3..5 were never synced (F-COM-6), so it still holds 1.  Generation 5 was
 * acknowledged durable and is whole in the log; recovery must find it
 * from the older slot by roll-forward, not rebuild the whole log, which
 * F-REC-9 says a power cut under --sync commit never needs. */
static void test_faults_slot_ahead_after_ranged_commits(void **state)
{
    (void)state;
    /* how many operations the commit of 6 performs up to its sync: it
     * dies at the last one before any sync returns */
    rig probe;
    slot_ahead_rig(&probe);
    uint64_t before = coord_io_fault_total(probe.f);
    assert_int_equal(commit_sixth(&probe), 0);
    uint64_t k = coord_io_fault_total(probe.f) - before;
    rig_close(&probe);
    rig r;
    for (;; k--) {
        assert_true(k > 0);
        slot_ahead_rig(&r);
        uint64_t syncs = coord_io_fault_syncs_done(r.f);
        coord_io_fault_crash_at(r.f, k);
        if (commit_sixth(&r) != 0 && coord_io_fault_syncs_done(r.f) == syncs)
            break;
        coord_io_fault_power_loss(r.f, COORD_POWER_NOTHING);
        coord_store_close(r.s, false);
        coord_io_fault_free(r.f);
        fx_dir_remove(&r.d);
        free(r.m);
    }
    uint8_t *img = image_of(r.d.path, LAYOUT_DATA_START);
    const layout_meta *m0 = (const layout_meta *)(img + LAYOUT_META_OFFSET_0);
    assert_true(layout_meta_valid(m0));
    assert_int_equal(m0->roots.generation, 6);
    coord_io_fault_power_loss(r.f, COORD_POWER_NOTHING);
    coord_store_close(r.s, false);
    patch_file(r.d.path, LAYOUT_META_OFFSET_0, img + LAYOUT_META_OFFSET_0,
               LAYOUT_META_SIZE); /* only the slot's page was written back */
    free(img);
    img = image_of(r.d.path, LAYOUT_DATA_START);
    const layout_meta *m1 = (const layout_meta *)(img + LAYOUT_META_OFFSET_1);
    assert_true(layout_meta_valid(m1));
    assert_true(m1->roots.generation < 5);
    free(img);

    coord_error err = { 0 };
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    coord_store_stats st = stats_of(r.s);
    assert_false(st.rebuilt_at_open);
    assert_int_equal(st.generation, 5);
    fx_check_state(r.d.dir, r.m, 5);
    check_kept_after_power_cut(&r, 5);
    rig_close(&r);
}

/* F-REC-6, then a power cut.  A copy that stopped short keeps durable
 * words (F-HDR-7, F-HDR-8) that name log past its end, and the rebuild
 * keeps only the prefix before the cut.  Groups synced by range after the
 * rebuild (F-COM-6) must survive a power cut before the next checkpoint:
 * had the stale words stayed on disk, a durable_end past records that
 * were never synced would make the next open refuse the file.  The
 * rebuild stores words of its own prefix, and the sync that marks the file
 * open makes them durable before any group is written (without that store,
 * this test fails: the next open refuses the file). */
static void test_faults_rebuilt_short_copy_then_power_cut(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 131, 3);
    uint64_t end3 = stats_of(r.s).committed_end;
    for (int i = 0; i < 3; i++)
        commit_next(&r, true);
    coord_error err = { 0 };
    assert_int_equal(coord_store_sync(r.s, &err), 0); /* a checkpoint at 6 */
    uint8_t *img = image_of(r.d.path, LAYOUT_PAGE_SIZE);
    uint64_t durable = ((const layout_header *)img)->durable_end;
    free(img);
    assert_int_equal(durable, stats_of(r.s).committed_end);
    coord_store_close(r.s, false);
    /* the copy stopped inside generation 4's records */
    assert_int_equal(truncate(r.d.path, (off_t)(end3 + 40)), 0);

    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    assert_true(stats_of(r.s).rebuilt_at_open);
    assert_int_equal(stats_of(r.s).generation, 3);
    r.m->gens = 3;
    commit_next(&r, true); /* acknowledged durable: generation 4 */
    commit_next(&r, true); /* and 5 */
    check_kept_after_power_cut(&r, 5);
    rig_close(&r);
}

/* F-REC-7: what a recovery discarded past its committed end stays
 * discarded.  Generation 4 is whole in the log but its slot is torn, and a
 * record of its group reads damaged at the first recovery, which keeps 3.
 * The store then dies without writing; by the next recovery the record
 * reads whole again.  Generation 4 must not come back. */
static void test_faults_discarded_group_stays_discarded(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 91, 3);
    commit_next(&r, false);
    uint64_t end4 = stats_of(r.s).committed_end;
    assert_int_equal(stats_of(r.s).generation, 4);
    coord_store_close(r.s, false); /* a kill -9: everything reached the file */
    uint8_t junk[LAYOUT_META_SIZE / 2];
    memset(junk, 0x5A, sizeof(junk));
    patch_file(r.d.path, LAYOUT_META_OFFSET_0, junk, sizeof(junk)); /* slot of 4 */
    uint8_t *img = image_of(r.d.path, end4);
    uint8_t good = img[end4 - 8], bad = (uint8_t)(good ^ 0x01);
    free(img);
    patch_file(r.d.path, end4 - 8, &bad, 1); /* inside 4's commit record */

    coord_error err = { 0 };
    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    assert_int_equal(stats_of(r.s).generation, 3);
    fx_check_state(r.d.dir, r.m, 3);
    coord_io_fault_power_loss(r.f, COORD_POWER_NOTHING); /* no new writes */
    coord_store_close(r.s, false);
    patch_file(r.d.path, end4 - 8, &good, 1); /* group 4 whole again */

    r.s = fx_open(r.d.path, &r.w.io, NULL, &err);
    assert_int_equal(stats_of(r.s).generation, 3);
    fx_check_state(r.d.dir, r.m, 3);
    r.m->gens = 3;
    commit_next(&r, true);
    fx_check_state(r.d.dir, r.m, 4);
    rig_close(&r);
}

/* ---- through the committer ------------------------------------------------ */

static int32_t submit_one(coord_committer *c, uint32_t item, uint64_t no)
{
    cf_waiter *w = calloc(1, sizeof(*w));
    fx_req msg = {0};
    fx_req_learn(&msg, NULL, item, 1);
    cf_submit(c, w, fx_req_done(&msg, 9, no));
    int32_t st = cf_wait(w, 5000);
    fx_req_free(&msg);
    free(w);
    return st;
}

/* A committer over `s` with its own duplicate table and counters. */
typedef struct committer_rig {
    coord_dedup *dd;
    coord_counters counters;
    coord_committer *c;
} committer_rig;

static void committer_rig_start(committer_rig *cr, coord_store *s,
                                const coord_committer_config *cfg)
{
    *cr = (committer_rig){ 0 };
    assert_int_equal(coord_dedup_create(64, 16, &cr->dd), 0);
    assert_int_equal(coord_committer_start(s, cr->dd, &cr->counters, cfg, &cr->c), 0);
}

/* Stop it; the final sync must succeed. */
static void committer_rig_stop(committer_rig *cr)
{
    assert_int_equal(coord_committer_stop(cr->c), 0);
    coord_dedup_destroy(cr->dd);
}

static void test_faults_committer_replies(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 81, 1);
    coord_committer_config cfg = { .sync_policy = COORD_SYNC_COMMIT,
                                   .reverify_ms = 20 };
    committer_rig cr;
    committer_rig_start(&cr, r.s, &cfg);
    coord_committer *c = cr.c;
    uint64_t no = 100;
    assert_int_equal(submit_one(c, 1, ++no), 0);

    coord_io_fault_fail(r.f, COORD_FAULT_SYNC, 1, EIO, true);
    assert_int_equal(submit_one(c, 2, ++no), EIO);
    usleep(30000); /* past reverify_ms: a re-verification runs and fails */
    assert_int_equal(submit_one(c, 3, ++no), SUTRA_EREADONLY);
    assert_int_equal(submit_one(c, 4, ++no), SUTRA_EREADONLY);
    coord_store_stats st = stats_of(r.s); /* stats stay readable */
    assert_true(st.read_only);
    uint64_t gen = st.generation;

    coord_io_fault_disarm(r.f);
    usleep(30000);
    assert_int_equal(submit_one(c, 5, ++no), 0);
    st = stats_of(r.s);
    assert_false(st.read_only);
    assert_int_equal(st.generation, gen + 1);
    committer_rig_stop(&cr);
    rig_close(&r);

    /* the file reaching its reserve: SUTRA_EFULL, still writable */
    fx_dir d;
    fx_dir_make(&d);
    coord_store_options o = { .vector_dim = FX_DIM, .map_reserve = 128 * 1024 };
    coord_store *s;
    coord_error err = { 0 };
    assert_int_equal(coord_store_open(d.path, &o, &s, &err), 0);
    committer_rig_start(&cr, s, &cfg);
    int32_t status = 0;
    for (uint32_t i = 0; i < 2000 && status == 0; i++)
        status = submit_one(cr.c, i % FX_ITEMS, ++no);
    assert_int_equal(status, SUTRA_EFULL);
    assert_false(stats_of(s).read_only);
    committer_rig_stop(&cr);
    coord_store_close(s, true);
    fx_dir_remove(&d);
}

/* P-IDEM-2: a request answered with a failure is answered the same way
 * when a copy of it comes again (NNG resends a request still queued after
 * its resend time), and is not applied: its client was told it failed.
 * Both kinds: one the store refused (a forget of an id learned only
 * afterwards), and one failed with its group (a failed sync, the store
 * writable again when the copy comes). */
static void test_faults_resent_failed_request_is_not_applied(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 83, 1);
    coord_committer_config cfg = { .sync_policy = COORD_SYNC_COMMIT,
                                   .reverify_ms = 20 };
    committer_rig cr;
    committer_rig_start(&cr, r.s, &cfg);
    coord_committer *c = cr.c;
    uint32_t item = 0;
    while (r.m->gen[1].version[item])
        item++;
    assert_true(item < FX_ITEMS);

    uint64_t no = 100;
    fx_req forget = { 0 };
    fx_req_forget(&forget, NULL, item);
    const wire_request *copy = fx_req_done(&forget, 9, ++no);
    cf_waiter first = { 0 }, again = { 0 };
    cf_submit(c, &first, copy);
    assert_int_equal(cf_wait(&first, 5000), SUTRA_ENOTFOUND);
    assert_int_equal(submit_one(c, item, ++no), 0);
    coord_store_stats st = stats_of(r.s);
    cf_submit(c, &again, copy);
    assert_int_equal(cf_wait(&again, 5000), SUTRA_ENOTFOUND);
    fx_req_free(&forget);
    assert_int_equal(stats_of(r.s).concept_count, st.concept_count);
    assert_int_equal(stats_of(r.s).generation, st.generation);
    assert_int_equal(atomic_load(&cr.counters.duplicates), 1);

    coord_io_fault_fail(r.f, COORD_FAULT_SYNC, 1, EIO, true);
    uint64_t failed_no = ++no;
    assert_int_equal(submit_one(c, item + 1, failed_no), EIO);
    coord_io_fault_disarm(r.f);
    usleep(30000); /* past reverify_ms: the store may be written again */
    st = stats_of(r.s);
    assert_int_equal(submit_one(c, item + 1, failed_no), EIO);
    assert_int_equal(stats_of(r.s).generation, st.generation);
    assert_int_equal(atomic_load(&cr.counters.duplicates), 2);
    assert_int_equal(submit_one(c, item + 1, ++no), 0); /* a new request */
    st = stats_of(r.s);
    assert_false(st.read_only);
    committer_rig_stop(&cr);
    rig_close(&r);
}

/* Poll the header of the file at `path` every 10 ms, up to `tries` times,
 * until its durable_end reaches `end`; returns the last durable_end read
 * and, when `commit` is not NULL, the durable_commit read with it. */
static uint64_t wait_durable_end(const char *path, uint64_t end, int tries,
                                 uint64_t *commit)
{
    uint64_t durable = 0;
    for (int i = 0; i < tries && durable != end; i++) {
        usleep(10000);
        uint8_t *img = image_of(path, LAYOUT_PAGE_SIZE);
        durable = ((const layout_header *)img)->durable_end;
        if (commit)
            *commit = ((const layout_header *)img)->durable_commit;
        free(img);
    }
    return durable;
}

/* F-COM-6 at the committer: under --sync commit each acknowledged group is
 * synced by range (the header's durable words stay where the last full
 * sync left them), and a checkpoint follows within checkpoint_ms, after
 * which durable_end and durable_commit name the newest generation. */
static void test_faults_committer_checkpoints(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 97, 3); /* three full syncs: the file is checkpointed */
    coord_committer_config cfg = { .sync_policy = COORD_SYNC_COMMIT,
                                   .checkpoint_ms = 1500 };
    uint64_t syncs = coord_io_fault_count(r.f, COORD_FAULT_SYNC);
    uint64_t full_before = 0;
    committer_rig cr;
    committer_rig_start(&cr, r.s, &cfg);
    coord_committer *c = cr.c;
    uint64_t no = 200;
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(submit_one(c, i, ++no), 0);
    /* five acknowledged groups, five syncs, none of them a checkpoint yet */
    assert_int_equal(coord_io_fault_count(r.f, COORD_FAULT_SYNC), syncs + 5);
    uint8_t *img = image_of(r.d.path, LAYOUT_PAGE_SIZE);
    full_before = ((const layout_header *)img)->durable_end;
    free(img);
    coord_store_stats st = stats_of(r.s);
    assert_int_equal(st.generation, 8);
    assert_true(full_before < st.committed_end);

    uint64_t commit = 0;
    assert_int_equal(wait_durable_end(r.d.path, st.committed_end, 500, &commit),
                     st.committed_end);
    assert_true(commit >= LAYOUT_DATA_START && commit < st.committed_end);
    assert_int_equal(coord_io_fault_count(r.f, COORD_FAULT_SYNC), syncs + 6);
    committer_rig_stop(&cr);
    rig_close(&r);
}

/* Under --sync none no write waits for a sync, and a checkpoint still
 * follows within checkpoint_ms (COORD_NONE_CHECKPOINT_MS by default): a
 * restart after a kill then replays only the log written since (F-REC-5),
 * not the whole file. */
static void test_faults_none_policy_checkpoints(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 101, 3);
    coord_committer_config cfg = { .sync_policy = COORD_SYNC_NONE,
                                   .checkpoint_ms = 1500 };
    uint64_t syncs = coord_io_fault_count(r.f, COORD_FAULT_SYNC);
    committer_rig cr;
    committer_rig_start(&cr, r.s, &cfg);
    uint64_t no = 400;
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(submit_one(cr.c, i, ++no), 0);
    /* five acknowledged groups and not one sync */
    assert_int_equal(coord_io_fault_count(r.f, COORD_FAULT_SYNC), syncs);
    coord_store_stats st = stats_of(r.s);
    assert_int_equal(st.generation, 8);

    uint64_t commit = 0;
    assert_int_equal(wait_durable_end(r.d.path, st.committed_end, 500, &commit),
                     st.committed_end);
    assert_true(commit >= LAYOUT_DATA_START && commit < st.committed_end);
    assert_int_equal(coord_io_fault_count(r.f, COORD_FAULT_SYNC), syncs + 1);
    committer_rig_stop(&cr);
    rig_close(&r);
}

/* Under --sync commit the checkpoint's whole-file fdatasync runs beside the
 * committer: groups synced by range are committed and answered while it
 * is in flight, instead of waiting behind it (F-COM-6; its durable words
 * follow once it ends). */
static void test_faults_checkpoint_beside_commits(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 98, 3); /* three full syncs: the file is checkpointed */
    coord_committer_config cfg = { .sync_policy = COORD_SYNC_COMMIT,
                                   .checkpoint_ms = 20 };
    committer_rig cr;
    committer_rig_start(&cr, r.s, &cfg);
    uint64_t no = 300;
    atomic_store(&r.w.hold_syncs, true);
    assert_int_equal(submit_one(cr.c, 0, ++no), 0); /* synced by range */
    for (int i = 0; i < 2000 && atomic_load(&r.w.syncs_held) == 0; i++)
        usleep(1000); /* its checkpoint falls due 20 ms later, and holds */
    unsigned held = atomic_load(&r.w.syncs_held);
    enum { N = 4 };
    cf_waiter *w[N];
    fx_req msg[N];
    int answered = 0;
    for (uint32_t i = 0; i < N; i++) {
        w[i] = calloc(1, sizeof(*w[i]));
        msg[i] = (fx_req){ 0 };
        fx_req_learn(&msg[i], NULL, 1 + i, 1);
        cf_submit(cr.c, w[i], fx_req_done(&msg[i], 9, ++no));
        for (int k = 0; k < 1000 && !atomic_load(&w[i]->done); k++)
            usleep(1000);
        answered += atomic_load(&w[i]->done) && w[i]->status == 0;
    }
    atomic_store(&r.w.hold_syncs, false);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(cf_wait(w[i], 5000), 0);
        fx_req_free(&msg[i]);
        free(w[i]);
    }
    assert_int_equal(held, 1);
    assert_int_equal(answered, N);
    /* once it ends, and the next one, the words name the newest group */
    coord_store_stats st = stats_of(r.s);
    assert_int_equal(wait_durable_end(r.d.path, st.committed_end, 500, NULL),
                     st.committed_end);
    committer_rig_stop(&cr);
    rig_close(&r);
}

/* Wait up to a second for the store's read-only state to become `want`. */
static bool read_only_becomes(coord_store *s, bool want)
{
    for (int i = 0; i < 100 && stats_of(s).read_only != want; i++)
        usleep(10000);
    return stats_of(s).read_only == want;
}

/* The committer syncs through two open file descriptions of the file (the
 * writer's, and the one its syncs beside run on, store.h), and the kernel
 * reports one writeback error to each.  After a re-verification has
 * rewritten and synced the file, the error it recovered from is dealt
 * with: the description that has not reported it yet must not turn the
 * store read-only again (the next checkpoint under --sync commit), nor
 * fail the re-verification itself (after a failed interval sync). */
static void check_error_reported_twice(enum coord_sync_policy policy)
{
    rig r;
    rig_open(&r, 111 + (uint64_t)policy, 3); /* checkpointed */
    coord_committer_config cfg = { .sync_policy = policy,
                                   .checkpoint_ms = 20,
                                   .sync_interval_ms = 20,
                                   .reverify_ms = 20 };
    committer_rig cr;
    committer_rig_start(&cr, r.s, &cfg);
    uint64_t no = 500;
    assert_int_equal(submit_one(cr.c, 0, ++no), 0);
    /* its checkpoint (or interval sync) ends: nothing is in flight */
    uint64_t end = stats_of(r.s).committed_end;
    assert_int_equal(wait_durable_end(r.d.path, end, 100, NULL), end);

    atomic_fetch_add(&r.w.wb_errors, 1); /* a page failed its writeback */
    if (policy == COORD_SYNC_COMMIT) {
        assert_int_equal(submit_one(cr.c, 1, ++no), EIO); /* its own sync */
    } else {
        assert_int_equal(submit_one(cr.c, 1, ++no), 0);
        assert_true(read_only_becomes(r.s, true)); /* the interval sync */
    }
    assert_true(stats_of(r.s).read_only);
    usleep(30000); /* past reverify_ms */
    assert_int_equal(submit_one(cr.c, 2, ++no), 0); /* re-verified */
    assert_false(stats_of(r.s).read_only);
    usleep(100000); /* several checkpoints or interval syncs fall due */
    assert_false(stats_of(r.s).read_only);
    assert_int_equal(submit_one(cr.c, 3, ++no), 0);
    committer_rig_stop(&cr);
    rig_close(&r);
}

static void test_faults_error_reported_twice_commit(void **state)
{
    (void)state;
    check_error_reported_twice(COORD_SYNC_COMMIT);
}

static void test_faults_error_reported_twice_interval(void **state)
{
    (void)state;
    check_error_reported_twice(COORD_SYNC_INTERVAL);
}

/* A clock that acts at one chosen moment: the first CLOCK_MONOTONIC
 * reading after `g_release_at_clock` is set lets the held syncs of
 * `g_clock_watch` go and gives their thread 50 ms to end before it
 * answers.  The committer reads this clock right after it looked for the
 * result of the sync in flight and before it sleeps (interval_tick), so
 * the sync ends, and its thread wakes the committer, exactly in between.
 * Every other reading is the kernel's. */
static atomic_int g_release_at_clock;
static gen_watch *g_clock_watch;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (id == CLOCK_MONOTONIC && atomic_load(&g_release_at_clock) &&
        atomic_exchange(&g_release_at_clock, 0)) {
        atomic_store(&g_clock_watch->hold_syncs, false);
        usleep(50000);
    }
    return (int)syscall(SYS_clock_gettime, id, ts);
}

/* Under --sync commit an idle committer sleeps without a deadline while a
 * checkpoint is in flight, and the sync thread wakes it when the
 * checkpoint ends.  A checkpoint that ends between the committer's last
 * look at it and its sleep must still be taken at once: its durable words
 * stored (F-HDR-7), its error learnt, the next one started when due. */
static void test_faults_checkpoint_ending_before_idle_sleep(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, 99, 3); /* three full syncs: the file is checkpointed */
    coord_committer_config cfg = { .sync_policy = COORD_SYNC_COMMIT,
                                   .checkpoint_ms = 20 };
    committer_rig cr;
    committer_rig_start(&cr, r.s, &cfg);
    atomic_store(&r.w.hold_syncs, true);
    assert_int_equal(submit_one(cr.c, 0, 401), 0); /* synced by range */
    for (int i = 0; i < 2000 && atomic_load(&r.w.syncs_held) == 0; i++)
        usleep(1000); /* its checkpoint falls due 20 ms later, and holds */
    assert_int_equal(atomic_load(&r.w.syncs_held), 1);
    uint64_t syncs = stats_of(r.s).syncs;
    g_clock_watch = &r.w;
    atomic_store(&g_release_at_clock, 1);
    coord_store_stats st = stats_of(r.s);
    for (int i = 0; i < 100 && st.syncs == syncs; i++) {
        usleep(10000);
        st = stats_of(r.s);
    }
    assert_int_equal(atomic_load(&g_release_at_clock), 0); /* it acted */
    assert_false(atomic_load(&r.w.hold_syncs));
    assert_int_equal(st.syncs, syncs + 1); /* the checkpoint was taken */
    uint8_t *img = image_of(r.d.path, LAYOUT_PAGE_SIZE);
    assert_int_equal(((const layout_header *)img)->durable_end,
                     st.committed_end);
    free(img);
    committer_rig_stop(&cr);
    rig_close(&r);
}

static int summary(void **state)
{
    (void)state;
    print_message("test_faults: %llu operations failed by injected faults, "
                  "power cuts included\n",
                  (unsigned long long)g_faults);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_enospc_on_extend),
        cmocka_unit_test(test_faults_enospc_on_pwrite),
        cmocka_unit_test(test_faults_enospc_on_synced_write),
        cmocka_unit_test(test_faults_eio_on_pwrite),
        cmocka_unit_test(test_faults_short_write),
        cmocka_unit_test(test_faults_commit_sync_fails_after_unsynced),
        cmocka_unit_test(test_faults_group_sync_fails),
        cmocka_unit_test(test_faults_group_sync_enospc),
        cmocka_unit_test(test_faults_interval_sync_fails),
        cmocka_unit_test(test_faults_io_model_failed_sync_loses_writes),
        cmocka_unit_test(test_faults_io_model_lost_write_settles_by_page),
        cmocka_unit_test(test_faults_kill_under_sync_none_keeps_all),
        cmocka_unit_test(test_faults_synced_generation_survives_lost_slot),
        cmocka_unit_test(test_faults_slot_ahead_after_ranged_commits),
        cmocka_unit_test(test_faults_both_slots_torn_recover_from_checkpoint),
        cmocka_unit_test(test_faults_roll_forward_names_a_table_filled_ahead),
        cmocka_unit_test(test_faults_committer_checkpoints),
        cmocka_unit_test(test_faults_none_policy_checkpoints),
        cmocka_unit_test(test_faults_close_reports_a_failed_clean_mark),
        cmocka_unit_test(test_faults_checkpoint_beside_commits),
        cmocka_unit_test(test_faults_checkpoint_ending_before_idle_sleep),
        cmocka_unit_test(test_faults_error_reported_twice_commit),
        cmocka_unit_test(test_faults_error_reported_twice_interval),
        cmocka_unit_test(test_faults_discarded_group_stays_discarded),
        cmocka_unit_test(test_faults_rebuilt_short_copy_then_power_cut),
        cmocka_unit_test(test_faults_power_cut_sync_none),
        cmocka_unit_test(test_faults_power_cut_sync_interval),
        cmocka_unit_test(test_faults_power_cut_sync_commit),
        cmocka_unit_test(test_faults_crash_at_every_commit_operation),
        cmocka_unit_test(test_faults_crash_at_every_ranged_commit_operation),
        cmocka_unit_test(test_faults_committer_replies),
        cmocka_unit_test(test_faults_resent_failed_request_is_not_applied),
    };
    if (getenv("SUTRA_TEST_FILTER")) /* local soak: run only matching tests */
        cmocka_set_test_filter(getenv("SUTRA_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, summary);
}
