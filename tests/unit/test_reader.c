/*
 * tests/unit/test_reader.c — the reader (reader/db.c, lookup.c, history.c)
 * against files written by the real storage engine (coordinator/store.c).
 *
 * Each test builds a data directory in a fresh temporary directory, writes
 * through coord_store_apply()/coord_store_commit() with requests encoded by
 * layout/wire.h and decoded by wire_request_decode() — the coordinator's own
 * path minus the socket — and reads it back through the public API.
 * Corruption tests damage a copy of the file with pwrite and check that
 * the reader reports SUTRA_ECORRUPT / SUTRA_EVERSION instead of crashing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"
#include "reader/history_internal.h"
#include "sutra/sutra.h"
#include "tests/unit/file_copy.h"

#define DIM 8
#define MAP_RESERVE (1ull << 30) /* small enough for sanitizer builds */

/* ---- fixture: a temporary directory with a store --------------------- */

typedef struct fixture {
    char dir[64];
    char path[128];
    coord_store *store;
    uint64_t client_id;
    uint64_t request_no;
} fixture;

static void make_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/sutra-reader-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    make_dir(f->dir, sizeof(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/storage.dat", f->dir);
    coord_store_options opts = {.vector_dim = DIM, .map_reserve = MAP_RESERVE};
    coord_error err;
    int rc = coord_store_open(f->path, &opts, &f->store, &err);
    if (rc != 0)
        fprintf(stderr, "coord_store_open: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    f->client_id = 42;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    coord_store_close(f->store, true);
    remove_dir(f->dir);
    free(f);
    return 0;
}

/* ---- writing through the store --------------------------------------- */

typedef struct request {
    uint64_t words[8192]; /* 64 KiB, 8-aligned like an NNG body */
    size_t len;
    uint32_t ops;
} request;

static void request_init(request *r)
{
    r->len = sizeof(wire_request_header);
    r->ops = 0;
}

static uint8_t *request_tail(request *r)
{
    return (uint8_t *)r->words + r->len;
}

static void request_learn(request *r, const sutra_id *id, const char *content,
                          const float *embedding, float strength)
{
    uint32_t clen = content ? (uint32_t)strlen(content) : 0;
    uint32_t dim = embedding ? DIM : 0;
    assert_true(r->len + wire_learn_concept_size(clen, dim) <= sizeof(r->words));
    r->len += wire_encode_learn_concept(request_tail(r), 0, id->bytes, strength,
                                        0.5f, content, clen, embedding, dim);
    r->ops++;
}

static void request_forget(request *r, const sutra_id *id)
{
    r->len += wire_encode_forget_concept(request_tail(r), id->bytes);
    r->ops++;
}

/* Apply and commit one request; returns the published generation. */
static uint64_t request_commit(fixture *f, request *r)
{
    wire_request_header h;
    wire_request_header_init(&h, 0, f->client_id, ++f->request_no, r->ops);
    memcpy(r->words, &h, sizeof(h));
    wire_limits lim = {.max_message = sizeof(r->words), .max_content = 1 << 20,
                       .max_batch = 100000, .vector_dim = DIM};
    wire_request req;
    uint32_t failed;
    const char *why = NULL;
    int rc = wire_request_decode(r->words, r->len, &lim, &req, &failed, &why);
    if (rc)
        fprintf(stderr, "decode: %s\n", why);
    assert_int_equal(rc, 0);
    coord_apply_result res;
    coord_error err;
    rc = coord_store_apply(f->store, &req, &res, &err);
    if (rc)
        fprintf(stderr, "apply: %s\n", err.message);
    assert_int_equal(rc, 0);
    coord_commit_info info;
    rc = coord_store_commit(f->store, false, &info, &err);
    if (rc)
        fprintf(stderr, "commit: %s\n", err.message);
    assert_int_equal(rc, 0);
    return info.generation;
}

static uint64_t learn(fixture *f, const sutra_id *id, const char *content,
                      const float *embedding, float strength)
{
    request *r = malloc(sizeof(*r));
    request_init(r);
    request_learn(r, id, content, embedding, strength);
    uint64_t g = request_commit(f, r);
    free(r);
    return g;
}

static uint64_t forget(fixture *f, const sutra_id *id)
{
    request *r = malloc(sizeof(*r));
    request_init(r);
    request_forget(r, id);
    uint64_t g = request_commit(f, r);
    free(r);
    return g;
}

static sutra_id id_of(const char *name)
{
    sutra_id id;
    sutra_id_from_name(name, strlen(name), &id);
    return id;
}

static sutra_db *open_dir(const char *dir)
{
    sutra_db *db = NULL;
    int rc = sutra_open(dir, NULL, &db);
    if (rc)
        fprintf(stderr, "sutra_open: %s\n", sutra_strerror(rc));
    assert_int_equal(rc, 0);
    return db;
}

/* ---- open errors ------------------------------------------------------ */

/* A copy of the fixture's file in a new directory, for damaging. */
static void copy_file(const char *from, char *dir, size_t cap)
{
    fc_copy_file(from, "/tmp/sutra-reader-XXXXXX", dir, cap);
}

static void damage(const char *dir, uint64_t off, const void *bytes, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void expect_open_fails(const char *dir, int code)
{
    sutra_db *db = (sutra_db *)(uintptr_t)0x1; /* must stay untouched */
    assert_int_equal(sutra_open(dir, NULL, &db), code);
    assert_ptr_equal(db, (sutra_db *)(uintptr_t)0x1);
}

static void test_reader_open_errors(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a");
    learn(f, &a, "alpha", NULL, 1.0f);

    char dir[64];
    make_dir(dir, sizeof(dir));
    expect_open_fails(dir, ENOENT); /* no storage.dat */
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope", dir);
    expect_open_fails(missing, ENOENT);

    char path[128];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    expect_open_fails(dir, SUTRA_ECORRUPT); /* empty */
    remove_dir(dir);

    /* Not a regular file: refused at once, even a FIFO nobody writes to
     * (a blocking open would wait for a writer forever; the alarm makes
     * that a failure). */
    make_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    expect_open_fails(dir, SUTRA_ECORRUPT);
    alarm(0);
    remove_dir(dir);

    /* Truncated: the header page alone, without the meta pages. */
    copy_file(f->path, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    assert_int_equal(truncate(path, LAYOUT_PAGE_SIZE + 100), 0);
    expect_open_fails(dir, SUTRA_ECORRUPT);
    remove_dir(dir);

    copy_file(f->path, dir, sizeof(dir));
    damage(dir, 0, "XUTRADAT", 8);
    expect_open_fails(dir, SUTRA_ECORRUPT);
    remove_dir(dir);

    /* Unknown major, with a valid checksum so the version rule is hit. */
    copy_file(f->path, dir, sizeof(dir));
    layout_header h;
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    h.format_major = LAYOUT_FORMAT_MAJOR + 1;
    h.header_checksum = XXH3_64bits(&h, LAYOUT_HEADER_CHECKSUMMED);
    damage(dir, 0, &h, LAYOUT_HEADER_CHECKSUMMED + 8);
    expect_open_fails(dir, SUTRA_EVERSION);
    remove_dir(dir);

    /* A committed end past the file's own reserve is damage, not a file
     * that outgrew this handle's mapping: SUTRA_EMAPFULL would tell the
     * caller to reopen, which can never help. */
    copy_file(f->path, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    h.map_reserve = LAYOUT_DATA_START;
    h.header_checksum = XXH3_64bits(&h, LAYOUT_HEADER_CHECKSUMMED);
    damage(dir, 0, &h, LAYOUT_HEADER_CHECKSUMMED + 8);
    expect_open_fails(dir, SUTRA_ECORRUPT);
    /* ... while a mapping asked smaller than the data is SUTRA_EMAPFULL */
    remove_dir(dir);
    copy_file(f->path, dir, sizeof(dir));
    sutra_open_options small = {.map_size = LAYOUT_DATA_START};
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(dir, &small, &db), SUTRA_EMAPFULL);
    assert_null(db);
    remove_dir(dir);

    /* Both meta slots corrupt. */
    copy_file(f->path, dir, sizeof(dir));
    uint64_t junk = 0x0123456789abcdefull;
    damage(dir, LAYOUT_META_OFFSET_0 + 16, &junk, 8);
    damage(dir, LAYOUT_META_OFFSET_1 + 16, &junk, 8);
    expect_open_fails(dir, SUTRA_ECORRUPT);
    remove_dir(dir);

    /* A file replaced by compaction tells readers to reopen. */
    copy_file(f->path, dir, sizeof(dir));
    uint32_t one = 1;
    damage(dir, offsetof(layout_header, superseded), &one, sizeof(one));
    expect_open_fails(dir, SUTRA_ESUPERSEDED);
    remove_dir(dir);

    /* Control: an undamaged copy opens. */
    copy_file(f->path, dir, sizeof(dir));
    db = open_dir(dir);
    sutra_close(db);
    remove_dir(dir);

    assert_int_equal(sutra_open(NULL, NULL, &db), SUTRA_EINVAL);
    sutra_close(NULL);
}

/* ---- lookups ---------------------------------------------------------- */

static void test_reader_get_is_byte_exact(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b"), none = id_of("never");
    float emb[DIM] = {1.5f, -2.25f, 3.0f, 0.0f, 1e-30f, -1e30f, 7.0f, 0.125f};
    learn(f, &a, "alpha content", emb, 0.75f);
    uint64_t g = learn(f, &b, NULL, NULL, 2.0f);

    sutra_db *db = open_dir(f->dir);
    assert_int_equal(sutra_dim(db), DIM);
    assert_int_equal(sutra_generation(db), g);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    assert_int_equal(snap.generation, g);
    assert_int_equal(snap.concept_count, 2);

    sutra_concept c;
    assert_int_equal(sutra_get(&snap, &a, &c), 0);
    assert_memory_equal(&c.id, &a, sizeof(a));
    assert_int_equal(c.content_len, strlen("alpha content"));
    assert_memory_equal(c.content, "alpha content", c.content_len);
    assert_non_null(c.embedding);
    assert_int_equal(c.dim, DIM);
    assert_memory_equal(c.embedding, emb, sizeof(emb));
    assert_int_equal((uintptr_t)c.embedding % 64, 0);
    assert_true(c.strength == 0.75f);
    assert_true(c.confidence == 0.5f);
    assert_true(c.seq >= 1 && c.seq <= snap.last_seq);
    assert_true(c.created_ns > 0 && c.updated_ns >= c.created_ns);

    assert_int_equal(sutra_get(&snap, &b, &c), 0);
    assert_null(c.content);
    assert_int_equal(c.content_len, 0);
    assert_null(c.embedding);
    assert_int_equal(c.dim, 0);
    assert_true(c.strength == 2.0f);

    sutra_concept untouched;
    memset(&untouched, 0x77, sizeof(untouched));
    c = untouched;
    assert_int_equal(sutra_get(&snap, &none, &c), SUTRA_ENOTFOUND);
    assert_memory_equal(&c, &untouched, sizeof(c));

    bool found = false;
    assert_int_equal(sutra_contains(&snap, &a, &found), 0);
    assert_true(found);
    assert_int_equal(sutra_contains(&snap, &none, &found), 0);
    assert_false(found);

    sutra_stats st;
    assert_int_equal(sutra_stats_get(&snap, &st), 0);
    assert_int_equal(st.generation, g);
    assert_int_equal(st.node_count, 2);
    assert_int_equal(st.concept_count, 2);
    assert_int_equal(st.version_count, 2);
    assert_int_equal(st.vector_dim, DIM);
    assert_int_equal(st.format_major, LAYOUT_FORMAT_MAJOR);
    assert_int_equal(st.map_size, MAP_RESERVE);
    assert_true(st.committed_end > LAYOUT_DATA_START);
    assert_true(st.file_size >= st.committed_end);
    assert_false(st.clean_shutdown); /* the store has it open */
    sutra_close(db);
}

/* Enough concepts to grow the hash table past its first size and the node
 * table past chunk 0; an old snapshot still finds its ids. */
static void test_reader_many_concepts_across_growth(void **state)
{
    fixture *f = *state;
    enum { N = 3000, PER_BATCH = 250 };
    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot early;
    request *r = malloc(sizeof(*r));
    char name[32];
    for (int i = 0; i < N; i += PER_BATCH) {
        request_init(r);
        for (int j = i; j < i + PER_BATCH; j++) {
            snprintf(name, sizeof(name), "c%d", j);
            sutra_id id = id_of(name);
            request_learn(r, &id, name, NULL, (float)j);
        }
        request_commit(f, r);
        if (i == 0)
            assert_int_equal(sutra_snapshot(db, &early), 0);
    }
    free(r);

    struct sutra_snapshot now;
    assert_int_equal(sutra_snapshot(db, &now), 0);
    assert_int_equal(now.concept_count, N);
    sutra_stats st;
    assert_int_equal(sutra_stats_get(&now, &st), 0);
    assert_true(st.hash_slots > LAYOUT_HASH_MIN_SLOTS);
    for (int j = 0; j < N; j++) {
        snprintf(name, sizeof(name), "c%d", j);
        sutra_id id = id_of(name);
        sutra_concept c;
        assert_int_equal(sutra_get(&now, &id, &c), 0);
        assert_int_equal(c.content_len, strlen(name));
        assert_memory_equal(c.content, name, c.content_len);
        assert_true(c.strength == (float)j);
        assert_int_equal(sutra_get(&early, &id, &c),
                         j < PER_BATCH ? 0 : SUTRA_ENOTFOUND);
    }
    sutra_close(db);
}

/* ---- snapshots -------------------------------------------------------- */

static void test_reader_snapshot_isolation(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a");
    learn(f, &a, "version one", NULL, 1.0f);
    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s1, s2, s3;
    assert_int_equal(sutra_snapshot(db, &s1), 0);

    learn(f, &a, "version two", NULL, 2.0f);
    assert_int_equal(sutra_snapshot(db, &s2), 0);
    assert_int_equal(s2.generation, s1.generation + 1);

    sutra_concept c;
    assert_int_equal(sutra_get(&s1, &a, &c), 0);
    assert_memory_equal(c.content, "version one", c.content_len);
    assert_true(c.strength == 1.0f);
    const void *old_view = c.content;
    assert_int_equal(sutra_get(&s2, &a, &c), 0);
    assert_memory_equal(c.content, "version two", c.content_len);
    assert_true(c.strength == 2.0f);

    forget(f, &a);
    assert_int_equal(sutra_snapshot(db, &s3), 0);
    assert_int_equal(sutra_get(&s3, &a, &c), SUTRA_ENOTFOUND);
    assert_int_equal(s3.concept_count, 0);
    bool found = true;
    assert_int_equal(sutra_contains(&s3, &a, &found), 0);
    assert_false(found);
    /* Older snapshots still see their versions, and old views stay valid. */
    assert_int_equal(sutra_get(&s2, &a, &c), 0);
    assert_memory_equal(c.content, "version two", c.content_len);
    assert_int_equal(sutra_get(&s1, &a, &c), 0);
    assert_ptr_equal(c.content, old_view);
    assert_memory_equal(old_view, "version one", 11);

    /* Re-learning after a forget makes it visible again. */
    learn(f, &a, "version three", NULL, 3.0f);
    struct sutra_snapshot s4;
    assert_int_equal(sutra_snapshot(db, &s4), 0);
    assert_int_equal(sutra_get(&s4, &a, &c), 0);
    assert_memory_equal(c.content, "version three", c.content_len);
    assert_int_equal(sutra_get(&s3, &a, &c), SUTRA_ENOTFOUND);
    sutra_close(db);
}

/* A handle mapped smaller than the file grew to: a lookup or a list in a
 * held snapshot whose newest record lies past the mapping cannot follow
 * that record's link back, so the answer is SUTRA_EMAPFULL (reopen, as a
 * new snapshot says), never SUTRA_ECORRUPT, which means damage. */
static void test_reader_newer_records_past_a_small_mapping(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b");
    learn(f, &b, "b", NULL, 1.0f);
    learn(f, &a, "held", NULL, 1.0f);
    request *r = malloc(sizeof(*r));
    request_init(r);
    r->len += wire_encode_association(request_tail(r), WIRE_OP_LEARN_ASSOCIATION,
                                      a.bytes, b.bytes, 1, 0.5f);
    r->ops++;
    request_commit(f, r);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    sutra_open_options small = {.map_size = (uint64_t)st.st_size};
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(f->dir, &small, &db), 0);
    struct sutra_snapshot held;
    assert_int_equal(sutra_snapshot(db, &held), 0);

    /* filler until the log passes the mapping, then newer records of a */
    static char filler[60000];
    memset(filler, 'f', sizeof(filler) - 1);
    for (uint64_t k = 0; ; k++) {
        char name[32];
        snprintf(name, sizeof(name), "filler %llu", (unsigned long long)k);
        sutra_id id = id_of(name);
        learn(f, &id, filler, NULL, 1.0f);
        coord_store_stats cs;
        coord_store_stats_get(f->store, &cs);
        if (cs.committed_end > small.map_size)
            break;
    }
    learn(f, &a, "newer, past the mapping", NULL, 2.0f);
    request_init(r);
    for (uint32_t t = 2; t < 40; t++) { /* a new block for a's out-list */
        r->len += wire_encode_association(request_tail(r),
                                          WIRE_OP_LEARN_ASSOCIATION, a.bytes,
                                          b.bytes, t, 0.5f);
        r->ops++;
    }
    request_commit(f, r);
    free(r);

    sutra_concept c;
    bool found;
    sutra_neighbor nb[4];
    size_t total = 0;
    struct sutra_snapshot now;
    assert_int_equal(sutra_get(&held, &a, &c), SUTRA_EMAPFULL);
    assert_int_equal(sutra_contains(&held, &a, &found), SUTRA_EMAPFULL);
    assert_int_equal(sutra_neighbors(&held, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb,
                                     4, &total),
                     SUTRA_EMAPFULL);
    assert_int_equal(sutra_get(&held, &b, &c), 0); /* b has nothing newer */
    assert_int_equal(sutra_snapshot(db, &now), SUTRA_EMAPFULL);
    assert_int_equal(sutra_snapshot_at(db, held.generation, &now),
                     SUTRA_EMAPFULL);
    sutra_close(db);

    db = open_dir(f->dir); /* a full mapping answers */
    assert_int_equal(sutra_snapshot(db, &now), 0);
    assert_int_equal(sutra_get(&now, &a, &c), 0);
    assert_true(c.strength == 2.0f);
    sutra_close(db);
}

static void test_reader_snapshot_at(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a");
    uint64_t g1 = learn(f, &a, "one", NULL, 1.0f);
    uint64_t g2 = learn(f, &a, "two", NULL, 2.0f);
    uint64_t g3 = forget(f, &a);
    assert_int_equal(g2, g1 + 1);
    assert_int_equal(g3, g2 + 1);

    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s;
    sutra_concept c;
    assert_int_equal(sutra_snapshot_at(db, g1, &s), 0);
    assert_int_equal(s.generation, g1);
    assert_int_equal(sutra_get(&s, &a, &c), 0);
    assert_memory_equal(c.content, "one", 3);
    assert_int_equal(sutra_snapshot_at(db, g2, &s), 0);
    assert_int_equal(sutra_get(&s, &a, &c), 0);
    assert_memory_equal(c.content, "two", 3);
    assert_int_equal(sutra_snapshot_at(db, g3, &s), 0);
    assert_int_equal(sutra_get(&s, &a, &c), SUTRA_ENOTFOUND);

    struct sutra_snapshot untouched;
    memset(&untouched, 0x33, sizeof(untouched));
    s = untouched;
    assert_int_equal(sutra_snapshot_at(db, g3 + 1, &s), SUTRA_ESTALE);
    /* Generation 0 is gone once generation 2 rewrote slot 0. */
    assert_int_equal(sutra_snapshot_at(db, 0, &s), SUTRA_ESTALE);
    assert_memory_equal(&s, &untouched, sizeof(s));
    sutra_close(db);
}

/* A writable mapping of a copy of the fixture's file (in *dir); unmap
 * *len bytes when done. */
static uint8_t *map_copy(const fixture *f, char *dir, size_t dir_size,
                         size_t *len)
{
    copy_file(f->path, dir, dir_size);
    char path[128];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                        MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    close(fd);
    *len = (size_t)st.st_size;
    return map;
}

/* Three generations of one concept in the fixture, and a writable copy
 * of the file with their commit records found, for a test to forge the
 * oldest one's (chain_forged_check() reseals it). */
typedef struct forged_chain {
    char dir[64];
    size_t len;
    uint8_t *map;
    uint64_t g1, g2;
    layout_commit *c1;
    const layout_commit *c2, *c3;
    const layout_meta *meta;
} forged_chain;

static void chain_to_forge(fixture *f, forged_chain *fc)
{
    sutra_id a = id_of("a");
    fc->g1 = learn(f, &a, "one", NULL, 1.0f);
    fc->g2 = learn(f, &a, "two", NULL, 2.0f);
    learn(f, &a, "three", NULL, 3.0f);
    fc->map = map_copy(f, fc->dir, sizeof(fc->dir), &fc->len);
    const layout_header *h = (const layout_header *)fc->map;
    fc->meta = (const layout_meta *)(
        fc->map + (h->generation % 2 ? LAYOUT_META_OFFSET_1
                                     : LAYOUT_META_OFFSET_0));
    fc->c3 = (const layout_commit *)(fc->map + fc->meta->roots.last_commit);
    fc->c2 = (const layout_commit *)(fc->map + fc->c3->prev_commit);
    assert_int_equal(fc->c2->roots.generation, fc->g2);
    fc->c1 = (layout_commit *)(fc->map + fc->c2->prev_commit);
    assert_int_equal(fc->c1->roots.generation, fc->g1);
}

/* Reseal the forged record: the walk must refuse it, and only it and
 * what lies behind it. */
static void chain_forged_check(forged_chain *fc)
{
    layout_rec_seal(&fc->c1->rec);
    assert_true(layout_rec_verify(&fc->c1->rec));
    munmap(fc->map, fc->len);
    sutra_db *db = open_dir(fc->dir);
    struct sutra_snapshot s;
    assert_int_equal(sutra_snapshot_at(db, fc->g2, &s), 0);
    assert_int_equal(sutra_snapshot_at(db, fc->g1, &s), SUTRA_ECORRUPT);
    sutra_close(db);
    remove_dir(fc->dir);
}

/* A forged commit chain: an older commit record made long enough to
 * overlap the next one, with a request count and checksum to match.  The
 * as-of walk must refuse it (records never overlap), or a chain of such
 * records, each as long as the rest of the log, would cost the log's size
 * in hashing per step. */
static void test_reader_snapshot_at_overlapping_commit(void **state)
{
    forged_chain fc;
    chain_to_forge(*state, &fc);
    uint64_t c1_off = fc.c2->prev_commit;
    uint64_t reach = fc.c3->prev_commit + sizeof(layout_commit) - c1_off;
    uint32_t more = (uint32_t)(reach / sizeof(layout_commit_entry)) + 1;
    assert_true(c1_off + fc.c1->rec.length +
                    more * sizeof(layout_commit_entry) <=
                fc.meta->roots.committed_end);
    fc.c1->request_count += more;
    fc.c1->rec.length += more * (uint32_t)sizeof(layout_commit_entry);
    chain_forged_check(&fc);
}

/* F-COM-1: a commit record whose roots do not end where it ends (resealed,
 * so its checksum holds) is damage: its generation's snapshot would read
 * another range of the log. */
static void test_reader_snapshot_at_commit_roots_elsewhere(void **state)
{
    forged_chain fc;
    chain_to_forge(*state, &fc);
    fc.c1->roots.committed_end -= 8; /* an end inside its own record */
    chain_forged_check(&fc);
}

/* F-META-5, F-COM-1: a meta slot of a generation past 0 that names no
 * commit record is damage, not a history that starts later. */
static void test_reader_snapshot_at_meta_without_commit(void **state)
{
    forged_chain fc;
    chain_to_forge(*state, &fc);
    layout_meta *m = (layout_meta *)(void *)fc.meta;
    m->roots.last_commit = 0;
    layout_meta_seal(m);
    munmap(fc.map, fc.len);
    sutra_db *db = open_dir(fc.dir);
    struct sutra_snapshot s;
    assert_int_equal(sutra_snapshot_at(db, fc.g1, &s), SUTRA_ECORRUPT);
    sutra_close(db);
    remove_dir(fc.dir);
}

static void test_reader_snapshot_at_generation_zero(void **state)
{
    fixture *f = *state;
    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s;
    assert_int_equal(sutra_snapshot(db, &s), 0);
    assert_int_equal(s.generation, 0);
    sutra_id a = id_of("a");
    sutra_concept c;
    assert_int_equal(sutra_get(&s, &a, &c), SUTRA_ENOTFOUND);
    learn(f, &a, "x", NULL, 1.0f);
    assert_int_equal(sutra_snapshot_at(db, 0, &s), 0); /* still in slot 0 */
    assert_int_equal(s.generation, 0);
    assert_int_equal(sutra_get(&s, &a, &c), SUTRA_ENOTFOUND);
    sutra_close(db);
}

/* ---- a run of generations for one walk ------------------------------- */

#define RUN_MAX 64

/* What reader_snapshots_between() handed out, in call order. */
typedef struct run_log {
    unsigned visits;
    uint64_t generation[RUN_MAX];
    int rc[RUN_MAX];
    struct sutra_snapshot snap[RUN_MAX];
    uint64_t stop_at; /* return 7 at this generation (0: never) */
} run_log;

static int log_visit(void *ctx, uint64_t generation, int rc,
                     const struct sutra_snapshot *snap)
{
    run_log *log = ctx;
    assert_true(log->visits < RUN_MAX);
    assert_true((rc == 0) == (snap != NULL));
    log->generation[log->visits] = generation;
    log->rc[log->visits] = rc;
    if (snap)
        log->snap[log->visits] = *snap;
    log->visits++;
    return log->stop_at && generation == log->stop_at ? 7 : 0;
}

/* Each visit answers as sutra_snapshot_at() does for its generation. */
static void expect_run_matches_snapshot_at(sutra_db *db, const run_log *log)
{
    for (unsigned i = 0; i < log->visits; i++) {
        struct sutra_snapshot one;
        memset(&one, 0, sizeof(one));
        int rc = sutra_snapshot_at(db, log->generation[i], &one);
        assert_int_equal(log->rc[i], rc);
        if (rc == 0)
            assert_memory_equal(&log->snap[i], &one, sizeof(one));
    }
}

/* A burst of generations, as `sutra-inspect follow` meets it after a
 * wake-up: every one visited once, oldest first, each snapshot the one
 * sutra_snapshot_at() gives; generation 0 (gone) and generations not yet
 * published answer SUTRA_ESTALE in their place. */
static void test_reader_snapshots_between(void **state)
{
    fixture *f = *state;
    uint64_t newest = 0;
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        sutra_id id = id_of(name);
        newest = learn(f, &id, name, NULL, 1.0f);
    }
    assert_int_equal(newest, 40);
    sutra_db *db = open_dir(f->dir);

    run_log *log = calloc(1, sizeof(*log));
    assert_int_equal(reader_snapshots_between(db, 0, newest + 2, log_visit, log),
                     0);
    assert_int_equal(log->visits, newest + 3);
    for (unsigned i = 0; i < log->visits; i++)
        assert_int_equal(log->generation[i], i);
    assert_int_equal(log->rc[0], SUTRA_ESTALE);
    for (uint64_t g = 1; g <= newest; g++) {
        assert_int_equal(log->rc[g], 0);
        assert_int_equal(log->snap[g].generation, g);
        assert_int_equal(log->snap[g].last_seq, g); /* one op per commit */
        assert_int_equal(log->snap[g].concept_count, g);
    }
    assert_int_equal(log->rc[newest + 1], SUTRA_ESTALE);
    assert_int_equal(log->rc[newest + 2], SUTRA_ESTALE);
    expect_run_matches_snapshot_at(db, log);

    /* a run inside the history, and the visitor stopping it */
    memset(log, 0, sizeof(*log));
    log->stop_at = 12;
    assert_int_equal(reader_snapshots_between(db, 10, 30, log_visit, log), 7);
    assert_int_equal(log->visits, 3);
    assert_int_equal(log->generation[0], 10);
    assert_int_equal(log->generation[2], 12);
    expect_run_matches_snapshot_at(db, log);

    assert_int_equal(reader_snapshots_between(db, 5, 4, log_visit, log),
                     SUTRA_EINVAL);
    assert_int_equal(reader_snapshots_between(db, 1, 1, NULL, log),
                     SUTRA_EINVAL);
    free(log);
    sutra_close(db);
}

/* The offset of generation g's commit record, walking the chain. */
static uint64_t commit_offset(const uint8_t *map, uint64_t g)
{
    const layout_header *h = (const layout_header *)map;
    const layout_meta *m = (const layout_meta *)(
        map + (h->generation % 2 ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0));
    uint64_t off = m->roots.last_commit;
    while (((const layout_commit *)(map + off))->roots.generation != g)
        off = ((const layout_commit *)(map + off))->prev_commit;
    return off;
}

/* A damaged link cuts the run: generations newer than it still answer,
 * the damaged one and every older one answer SUTRA_ECORRUPT, each in its
 * place. */
static void test_reader_snapshots_between_broken_link(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a");
    for (int i = 0; i < 5; i++)
        learn(f, &a, "again", NULL, (float)i);

    char dir[64];
    size_t len;
    uint8_t *map = map_copy(f, dir, sizeof(dir), &len);
    map[commit_offset(map, 3) + sizeof(layout_commit) - 1] ^= 0x40;
    munmap(map, len);

    sutra_db *db = open_dir(dir);
    run_log *log = calloc(1, sizeof(*log));
    assert_int_equal(reader_snapshots_between(db, 1, 5, log_visit, log), 0);
    assert_int_equal(log->visits, 5);
    const int want[5] = {SUTRA_ECORRUPT, SUTRA_ECORRUPT, SUTRA_ECORRUPT, 0, 0};
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(log->generation[i], i + 1);
        assert_int_equal(log->rc[i], want[i]);
    }
    expect_run_matches_snapshot_at(db, log);
    free(log);
    sutra_close(db);
    remove_dir(dir);
}

/* ---- waiting for generations ----------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct waiter {
    sutra_db *db;
    uint64_t want;
    int rc;
    uint64_t returned_ms;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->rc = sutra_wait_generation(w->db, w->want, 10000);
    w->returned_ms = mono_ms();
    return NULL;
}

static void test_reader_wait_generation(void **state)
{
    fixture *f = *state;
    sutra_db *db = open_dir(f->dir);
    uint64_t g = sutra_generation(db);
    assert_int_equal(sutra_wait_generation(db, g, 0), 0);
    assert_int_equal(sutra_wait_generation(db, g + 1, 0), SUTRA_ETIMEDOUT);
    uint64_t t0 = mono_ms();
    assert_int_equal(sutra_wait_generation(db, g + 1, 150), SUTRA_ETIMEDOUT);
    uint64_t waited = mono_ms() - t0;
    assert_true(waited >= 140 && waited < 2000);

    waiter w = {.db = db, .want = g + 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    usleep(100 * 1000);
    sutra_id a = id_of("a");
    learn(f, &a, "wake up", NULL, 1.0f);
    uint64_t committed_ms = mono_ms();
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.rc, 0);
    /* Woken by the commit's futex wake, well before the poll slice. */
    assert_true(w.returned_ms - committed_ms < 500);
    assert_int_equal(sutra_generation(db), g + 1);
    sutra_close(db);
}

/* ---- corruption reached through in-place words ---------------------- */

/* Offset of node 0's head word in the file at `dir`. */
static uint64_t node0_head_offset(const char *dir)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    layout_header h;
    assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    assert_true(h.node_chunk[0] != 0);
    return h.node_chunk[0] + LAYOUT_REGION_BODY + offsetof(layout_node, head);
}

static void expect_head_corrupt(fixture *f, uint64_t bad_head)
{
    char dir[64];
    copy_file(f->path, dir, sizeof(dir));
    damage(dir, node0_head_offset(dir), &bad_head, sizeof(bad_head));
    sutra_db *db = open_dir(dir); /* open reads no index: still fine */
    struct sutra_snapshot s;
    assert_int_equal(sutra_snapshot(db, &s), 0);
    sutra_id a = id_of("a"), b = id_of("b");
    sutra_concept c;
    assert_int_equal(sutra_get(&s, &a, &c), SUTRA_ECORRUPT);
    bool found;
    assert_int_equal(sutra_contains(&s, &a, &found), SUTRA_ECORRUPT);
    /* Other nodes are unaffected. */
    assert_int_equal(sutra_get(&s, &b, &c), 0);
    sutra_close(db);
    remove_dir(dir);
}

static void test_reader_corrupt_head_word(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b");
    learn(f, &a, "node zero", NULL, 1.0f);
    learn(f, &b, "node one", NULL, 1.0f);

    /* Past the file but inside the mapping: must not touch it (SIGBUS). */
    expect_head_corrupt(f, MAP_RESERVE - 4096);
    /* Past the mapping (SIGSEGV), and near the top of the address range. */
    expect_head_corrupt(f, MAP_RESERVE * 4);
    expect_head_corrupt(f, UINT64_MAX - 7);
    /* Misaligned, and inside the header pages. */
    expect_head_corrupt(f, LAYOUT_DATA_START + 3);
    expect_head_corrupt(f, 64);
    /* A committed record of the wrong kind: the hash table region. */
    struct sutra_snapshot s;
    sutra_db *db = open_dir(f->dir);
    assert_int_equal(sutra_snapshot(db, &s), 0);
    uint64_t hash_root = s.private_[2];
    sutra_close(db);
    expect_head_corrupt(f, hash_root);
    /* Misaligned past the committed end, inside the file: a "newer record"
     * no record can start at (found by fuzz_file under UBSan: its header
     * was read to see whether it lies past the mapping). */
    expect_head_corrupt(f, s.private_[0] + 3);
}

/* A handle remembers which node chunks it has validated (their descriptors
 * are committed bytes that never change).  A chunk word that later names
 * anything else must be validated again, on the same handle, between two
 * reads: damage the word under an open handle, then restore it. */
static void test_reader_chunk_word_changes_under_open_handle(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a");
    learn(f, &a, "node zero", NULL, 1.0f);
    char dir[64];
    copy_file(f->path, dir, sizeof(dir));
    sutra_db *db = open_dir(dir);
    struct sutra_snapshot s;
    assert_int_equal(sutra_snapshot(db, &s), 0);
    sutra_concept c;
    assert_int_equal(sutra_get(&s, &a, &c), 0); /* chunk 0 validated */

    const uint64_t word = offsetof(layout_header, node_chunk);
    uint64_t good = 0;
    char path[128];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &good, sizeof(good), (off_t)word), (ssize_t)sizeof(good));
    close(fd);
    uint64_t hash_root = s.private_[2];
    const uint64_t bad[] = {
        hash_root,                    /* a committed region of another kind */
        good + LAYOUT_REGION_ALIGN,   /* inside the chunk, not its start    */
        good + 8,                     /* misaligned                         */
        0,                            /* not allocated                      */
        UINT64_MAX - 63,              /* out of every range                 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        damage(dir, word, &bad[i], sizeof(bad[i]));
        assert_int_equal(sutra_get(&s, &a, &c), SUTRA_ECORRUPT);
        damage(dir, word, &good, sizeof(good));
        assert_int_equal(sutra_get(&s, &a, &c), 0);
        assert_memory_equal(c.content, "node zero", 9);
    }
    sutra_close(db);
    remove_dir(dir);
}

/* A damaged hash root in the meta makes snapshots fail, not lookups crash. */
static void test_reader_corrupt_meta_roots(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a");
    uint64_t g = learn(f, &a, "x", NULL, 1.0f);
    char dir[64];
    copy_file(f->path, dir, sizeof(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    uint64_t slot = g % 2 ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0;
    layout_meta m;
    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &m, sizeof(m), (off_t)slot), (ssize_t)sizeof(m));
    close(fd);
    m.roots.hash_root = MAP_RESERVE - 64; /* past the file */
    layout_meta_seal(&m);
    damage(dir, slot, &m, sizeof(m));
    sutra_db *db = (sutra_db *)(uintptr_t)0x1;
    assert_int_equal(sutra_open(dir, NULL, &db), SUTRA_ECORRUPT);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_open_errors, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_get_is_byte_exact, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_newer_records_past_a_small_mapping, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_many_concepts_across_growth, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_isolation, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_at, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_at_overlapping_commit,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_at_commit_roots_elsewhere,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_at_meta_without_commit,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_at_generation_zero, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshots_between, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshots_between_broken_link, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_wait_generation, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_corrupt_head_word, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_chunk_word_changes_under_open_handle, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_corrupt_meta_roots, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
