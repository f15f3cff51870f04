/*
 * tests/unit/test_verify.c — sutra_verify() (reader/verify*.c): clean files
 * verify clean at every generation, and each targeted corruption is reported
 * as the first problem with the offset where it was made and the rule it
 * breaks.  Files are real: written by the coordinator's store
 * (tests/unit/sample_file.h), then damaged through a separate read-write
 * mapping, with checksums resealed where the test wants a deeper rule than
 * F-LOG-6 to catch the damage.  Adjacency lists are grafted on by hand where
 * the store does not write them, so the adjacency checks are exercised
 * either way.  The fuzz regression tests at the end replay inputs that once
 * crashed or misled the verifier.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout/format.h"
#include "tests/unit/sample_file.h"
#include "tests/unit/store_fixture.h"

#define RESERVE (1ull << 30)

static int setup(void **state)
{
    return sf_setup(state, "/tmp/sutra-verify-XXXXXX");
}

static void build_standard(const sf_dir *f)
{
    coord_store *s = sample_open(f->path, RESERVE);
    assert_non_null(s);
    assert_int_equal(sample_standard(s), 0);
    coord_store_close(s, true);
}

/* ---- running the verifier --------------------------------------------- */

#define MAX_SEEN 64

typedef struct seen {
    int count;
    uint64_t offset[MAX_SEEN];
    char rule[MAX_SEEN][16];
} seen;

static void on_problem(void *ctx, uint64_t offset, const char *rule,
                       const char *message)
{
    seen *s = ctx;
    (void)message;
    if (s->count < MAX_SEEN) {
        s->offset[s->count] = offset;
        snprintf(s->rule[s->count], sizeof(s->rule[0]), "%s", rule);
    }
    s->count++;
}

static bool seen_has(const seen *s, uint64_t offset, const char *rule)
{
    for (int i = 0; i < s->count && i < MAX_SEEN; i++)
        if (s->offset[i] == offset && strcmp(s->rule[i], rule) == 0)
            return true;
    return false;
}

/* Verify the newest generation of f; returns sutra_verify's code. */
static int verify_dir(const sf_dir *f, uint32_t flags, sutra_verify_report *rep,
                      seen *problems)
{
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(f->dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    sutra_verify_options o = {.flags = flags, .problem = on_problem,
                              .ctx = problems};
    memset(rep, 0xEE, sizeof(*rep));
    int rc = sutra_verify(&snap, &o, rep);
    if (rc == SUTRA_ECORRUPT)
        print_message("  first problem: %llu %s %s\n",
                      (unsigned long long)rep->offset, rep->rule, rep->message);
    sutra_close(db);
    return rc;
}

static void expect_first(const sf_dir *f, uint64_t offset, const char *rule)
{
    sutra_verify_report rep;
    seen problems = {0};
    assert_int_equal(verify_dir(f, 0, &rep, &problems), SUTRA_ECORRUPT);
    assert_int_equal(rep.problems, 1);
    assert_string_equal(rep.rule, rule);
    assert_int_equal(rep.offset, offset);
    assert_int_equal(problems.count, 1);
}

static void expect_clean(const sf_dir *f, sutra_verify_report *rep)
{
    seen problems = {0};
    assert_int_equal(verify_dir(f, SUTRA_VERIFY_ALL, rep, &problems), 0);
    assert_int_equal(rep->problems, 0);
    assert_int_equal(problems.count, 0);
    assert_string_equal(rep->rule, "");
}

/* ---- raw access for damage -------------------------------------------- */

typedef struct raw {
    uint8_t *map;
    size_t len;
} raw;

static raw raw_open(const sf_dir *f)
{
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    raw r = {.len = (size_t)st.st_size};
    r.map = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(r.map != MAP_FAILED);
    close(fd);
    return r;
}

static void raw_close(raw *r)
{
    munmap(r->map, r->len);
}

static layout_header *raw_header(const raw *r)
{
    return (layout_header *)r->map;
}

static layout_meta *raw_meta(const raw *r, uint64_t generation)
{
    return (layout_meta *)(r->map + (generation % 2 ? LAYOUT_META_OFFSET_1
                                                    : LAYOUT_META_OFFSET_0));
}

static layout_meta *raw_current(const raw *r)
{
    return raw_meta(r, raw_header(r)->generation);
}

/* Offset of the nth (from 0) record of `type`, scanning the log. */
static uint64_t raw_find(const raw *r, uint16_t type, int nth)
{
    uint64_t end = raw_current(r)->roots.committed_end;
    for (uint64_t off = LAYOUT_DATA_START; off < end;) {
        const layout_rec *rec = (const layout_rec *)(r->map + off);
        if (*(const uint64_t *)rec == 0) {
            off += 8;
            continue;
        }
        if (rec->type == type && nth-- == 0)
            return off;
        off = layout_align_up(off + layout_rec_size(rec), 8);
    }
    fail_msg("record type %u not found", type);
    return 0;
}

static layout_node *raw_node(const raw *r, uint32_t node)
{
    uint32_t k;
    uint64_t index;
    layout_node_locate(node, &k, &index);
    uint64_t off = raw_header(r)->node_chunk[k];
    return (layout_node *)(r->map + off + LAYOUT_REGION_BODY) + index;
}

static uint64_t raw_off(const raw *r, const void *p)
{
    return (uint64_t)((const uint8_t *)p - r->map);
}

/* ---- clean files ------------------------------------------------------ */

static void test_verify_clean_standard_file(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    sutra_verify_report rep;
    expect_clean(f, &rep);
    assert_int_equal(rep.generation, 4);
    assert_int_equal(rep.commits, 4);
    assert_int_equal(rep.versions, 7);
    assert_int_equal(rep.tombstones, 1);
    assert_int_equal(rep.nodes, 4);
    assert_int_equal(rep.live_concepts, 4);
    assert_int_equal(rep.hash_used, 4);
    assert_int_equal(rep.regions, 2);
    assert_int_equal(rep.unknown, 0);
    assert_true(rep.bytes > 0);
}

static void test_verify_clean_at_every_generation(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(f->dir, NULL, &db), 0);
    for (uint64_t g = 1; g <= 4; g++) {
        struct sutra_snapshot snap;
        assert_int_equal(sutra_snapshot_at(db, g, &snap), 0);
        sutra_verify_report rep;
        assert_int_equal(sutra_verify(&snap, NULL, &rep), 0);
        assert_int_equal(rep.generation, g);
        assert_int_equal(rep.commits, g);
    }
    sutra_close(db);
}

static void test_verify_clean_fresh_file(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sample_open(f->path, RESERVE);
    assert_non_null(s);
    coord_store_close(s, true);
    sutra_verify_report rep;
    expect_clean(f, &rep);
    assert_int_equal(rep.generation, 0);
    assert_int_equal(rep.commits, 0);
    assert_int_equal(rep.regions, 2);
}

typedef struct progress_log {
    int calls;
    enum sutra_verify_phase last;
    bool ordered;
} progress_log;

static void on_progress(void *ctx, enum sutra_verify_phase phase,
                        uint64_t done, uint64_t total)
{
    progress_log *p = ctx;
    if (phase < p->last || done > total)
        p->ordered = false;
    p->last = phase;
    p->calls++;
}

/* Enough nodes for node chunk 1 and two hash table doublings. */
static void test_verify_clean_after_growth(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sample_open(f->path, RESERVE);
    assert_non_null(s);
    sample_request *r = calloc(1, sizeof(*r));
    for (int batch = 0; batch < 12; batch++) {
        sample_begin(r);
        for (int i = 0; i < 100; i++) {
            char name[32];
            snprintf(name, sizeof(name), "node-%d", batch * 100 + i);
            sample_learn(r, name, name, NULL, 1.0f, 0);
        }
        assert_int_equal(sample_apply(s, r, (uint64_t)batch + 1), 0);
        assert_int_equal(sample_commit(s), 0);
    }
    free(r);
    coord_store_close(s, true);

    sutra_db *db = NULL;
    assert_int_equal(sutra_open(f->dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    progress_log log = {.ordered = true};
    sutra_verify_options o = {.progress = on_progress, .ctx = &log};
    sutra_verify_report rep;
    assert_int_equal(sutra_verify(&snap, &o, &rep), 0);
    assert_int_equal(rep.nodes, 1200);
    assert_int_equal(rep.hash_used, 1200);
    assert_int_equal(rep.regions, 5); /* hash 1024, 2048, 4096; chunks 0, 1 */
    assert_true(log.calls >= 5);
    assert_true(log.ordered);
    assert_int_equal(log.last, SUTRA_VERIFY_ADJACENCY);
    sutra_close(db);
}

/* A coordinator committing while we verify: snapshots stay clean.  The
 * writer learns, re-learns, links and forgets, so heads, hash slots,
 * chunks and adjacency words move under the verifier. */
typedef struct live_writer {
    const sf_dir *f;
    coord_store *store;
    int commits;
    int failed;
    volatile int done;
} live_writer;

static void *live_writer_run(void *arg)
{
    live_writer *w = arg;
    sample_request *r = calloc(1, sizeof(*r));
    for (int i = 0; i < w->commits && !w->failed; i++) {
        char a[32], b[32], g[32], old[32];
        snprintf(a, sizeof(a), "live-%d", i);
        snprintf(b, sizeof(b), "live-%d", i / 2);
        snprintf(g, sizeof(g), "gone-%d", i);
        snprintf(old, sizeof(old), "gone-%d", i - 1);
        sample_begin(r);
        sample_learn(r, a, a, NULL, 1.0f, 0);
        sample_learn(r, b, "again", NULL, 2.0f, 0);
        sample_learn(r, g, g, NULL, 3.0f, 0);
        sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, a, b, 1, 0.5f);
        sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, g, a, 2, 0.25f);
        w->failed = sample_apply(w->store, r, 2 * (uint64_t)i + 1);
        if (!w->failed && i % 7 == 6) { /* ends gone-(i-1)'s edges too */
            sample_begin(r);
            sample_forget(r, old);
            w->failed = sample_apply(w->store, r, 2 * (uint64_t)i + 2);
        }
        if (!w->failed)
            w->failed = sample_commit(w->store);
    }
    free(r);
    w->done = 1;
    return NULL;
}

static void test_verify_clean_while_writer_commits(void **state)
{
    sf_dir *f = *state;
    live_writer w = {.f = f, .commits = 1500};
    w.store = sample_open(f->path, RESERVE);
    assert_non_null(w.store);
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(f->dir, NULL, &db), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, live_writer_run, &w), 0);
    int verified = 0;
    while (!w.done || verified == 0) {
        struct sutra_snapshot snap;
        assert_int_equal(sutra_snapshot(db, &snap), 0);
        sutra_verify_report rep;
        int rc = sutra_verify(&snap, NULL, &rep);
        if (rc)
            print_message("generation %llu: %llu %s %s\n",
                          (unsigned long long)snap.generation,
                          (unsigned long long)rep.offset, rep.rule, rep.message);
        assert_int_equal(rc, 0);
        verified++;
    }
    pthread_join(t, NULL);
    assert_int_equal(w.failed, 0);
    sutra_close(db);
    coord_store_stats st;
    coord_store_stats_get(w.store, &st);
    coord_store_close(w.store, true);
    print_message("  %d verifications during %llu generations\n", verified,
                  (unsigned long long)st.generation);
    assert_true(verified >= 2);
}

/* ---- adjacency -------------------------------------------------------- */

/* Associations written by the store, once it accepts them. */
static void test_verify_clean_with_store_associations(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sample_open(f->path, RESERVE);
    assert_non_null(s);
    assert_int_equal(sample_standard(s), 0);
    sample_request *r = calloc(1, sizeof(*r));
    sample_begin(r);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "alpha", "beta", 1, 0.5f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "alpha", "gamma", 2, 0.75f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "gamma", "alpha", 1, 1.0f);
    assert_int_equal(sample_apply(s, r, 100), 0);
    assert_int_equal(sample_commit(s), 0);
    sample_begin(r);
    sample_assoc(r, WIRE_OP_FORGET_ASSOCIATION, "alpha", "gamma", 2, 0.0f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "alpha", "beta", 1, 0.25f);
    sample_forget(r, "gamma");
    assert_int_equal(sample_apply(s, r, 101), 0);
    assert_int_equal(sample_commit(s), 0);
    free(r);
    coord_store_close(s, true);
    sutra_verify_report rep;
    expect_clean(f, &rep);
    assert_int_equal(rep.live_assocs, 1);
    assert_int_equal(rep.assoc_records, 5);
}

/* F-NODE-1 with F-ASSOC-2: an association op may name ids that its
 * request learns only later; they are numbered there, before their first
 * versions.  The file verifies, and a rebuild (F-REC-6, after a power cut
 * tore both meta slots) numbers them the same way. */
static void test_verify_clean_with_nodes_named_by_an_association(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sample_open(f->path, RESERVE);
    assert_non_null(s);
    assert_int_equal(sample_standard(s), 0);
    sample_request *r = calloc(1, sizeof(*r));
    sample_begin(r);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "named-a", "named-b", 1, 0.5f);
    sample_learn(r, "named-b", "b, learned second", NULL, 1.0f, 0);
    sample_learn(r, "named-a", "a, learned last", NULL, 1.0f, 0);
    assert_int_equal(sample_apply(s, r, 300), 0);
    assert_int_equal(sample_commit(s), 0);
    free(r);
    coord_store_close(s, true);
    sutra_verify_report rep;
    expect_clean(f, &rep);
    uint64_t nodes = rep.nodes;

    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t junk[64];
    memset(junk, 0xA5, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, 64, LAYOUT_META_OFFSET_0 + 40), 64);
    assert_int_equal(pwrite(fd, junk, 64, LAYOUT_META_OFFSET_1 + 40), 64);
    uint32_t unclean = 0;
    uint64_t unknown[2] = {0, 0}; /* durable_end, durable_commit */
    assert_int_equal(pwrite(fd, &unclean, 4,
                            offsetof(layout_header, clean_shutdown)), 4);
    assert_int_equal(pwrite(fd, unknown, 16,
                            offsetof(layout_header, durable_end)), 16);
    close(fd);
    s = sample_open(f->path, RESERVE);
    assert_non_null(s); /* rebuilt */
    coord_store_close(s, true);
    expect_clean(f, &rep);
    assert_int_equal(rep.nodes, nodes);
    assert_int_equal(rep.live_assocs, 1);
}

/* Forgetting a concept with several edges in one list appends one
 * tombstone per edge, all with the concept tombstone's seq (F-ADJ-5): equal
 * seqs in a list are legal and must verify. */
static void test_verify_clean_after_forgetting_a_hub(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sample_open(f->path, RESERVE);
    assert_non_null(s);
    assert_int_equal(sample_standard(s), 0);
    sample_request *r = calloc(1, sizeof(*r));
    sample_begin(r);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "alpha", "beta", 1, 0.5f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "alpha", "beta", 2, 0.5f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "alpha", "gamma", 1, 0.5f);
    assert_int_equal(sample_apply(s, r, 200), 0);
    assert_int_equal(sample_commit(s), 0);
    sample_begin(r);
    sample_forget(r, "alpha");
    assert_int_equal(sample_apply(s, r, 201), 0);
    assert_int_equal(sample_commit(s), 0);
    free(r);
    coord_store_close(s, true);
    sutra_verify_report rep;
    expect_clean(f, &rep);
    assert_int_equal(rep.live_assocs, 0);
}

/* Append one generation holding one association 0 -> 1: an ASSOC record,
 * an out-block for node 0 and an in-block for node 1, and its commit;
 * then the node words, the meta slot and the generation word.  Returns the
 * out-block's offset. */
static uint64_t graft_association(const sf_dir *f)
{
    raw r = raw_open(f);
    layout_header *h = raw_header(&r);
    layout_roots prev = raw_current(&r)->roots;
    uint64_t file_size = raw_current(&r)->file_size;
    uint64_t seq = prev.last_seq + 1, off = prev.committed_end;

    layout_assoc *a = (layout_assoc *)(r.map + off);
    memset(a, 0, sizeof(*a));
    a->rec.type = LAYOUT_REC_ASSOC;
    a->rec.length = sizeof(*a);
    a->rec.seq = seq;
    memcpy(a->source, raw_node(&r, 0)->id, 16);
    memcpy(a->target, raw_node(&r, 1)->id, 16);
    a->source_node = 0;
    a->target_node = 1;
    a->type = 7;
    a->confidence = 0.5f;
    a->created_ns = prev.commit_ns + 1;
    layout_rec_seal(&a->rec);

    uint64_t blocks[2];
    blocks[0] = layout_align_up(off + sizeof(*a), LAYOUT_REGION_ALIGN);
    blocks[1] = blocks[0] + LAYOUT_ADJ_MIN_BLOCK;
    for (uint32_t dir = 0; dir < 2; dir++) {
        uint8_t *b = r.map + blocks[dir];
        memset(b, 0, LAYOUT_ADJ_MIN_BLOCK);
        layout_region *reg = (layout_region *)b;
        reg->rec.type = LAYOUT_REC_ADJ_BLOCK;
        reg->rec.flags = LAYOUT_REC_F_REGION;
        reg->rec.length = layout_region_length(LAYOUT_ADJ_MIN_BLOCK);
        reg->arg0 = (uint64_t)dir | (uint64_t)dir << 32; /* node 0 out, 1 in */
        reg->arg1 = layout_adj_capacity(LAYOUT_ADJ_MIN_BLOCK);
        layout_rec_seal(&reg->rec);
        *(uint64_t *)(b + LAYOUT_ADJ_COUNT_OFFSET) = 1;
        layout_adj_entry *e = (layout_adj_entry *)(b + LAYOUT_ADJ_ENTRIES_OFFSET);
        e->node = dir ? 0 : 1;
        e->type = 7;
        e->confidence = 0.5f;
        e->seq = seq;
    }

    uint64_t commit_off = blocks[1] + LAYOUT_ADJ_MIN_BLOCK;
    layout_commit *c = (layout_commit *)(r.map + commit_off);
    uint32_t len = sizeof(*c) + sizeof(layout_commit_entry);
    memset(c, 0, len);
    c->rec.type = LAYOUT_REC_COMMIT;
    c->rec.length = len;
    c->rec.seq = seq;
    c->roots = prev;
    c->roots.generation++;
    c->roots.last_seq = seq;
    c->roots.committed_end = layout_align_up(commit_off + len, 8);
    c->roots.commit_ns = prev.commit_ns + 2;
    c->roots.assoc_count = 1;
    c->roots.last_commit = commit_off;
    c->prev_commit = prev.last_commit;
    c->first_seq = seq;
    c->request_count = 1;
    layout_commit_entry *ce = (layout_commit_entry *)(c + 1);
    *ce = (layout_commit_entry){.client_id = 9, .request_no = 9,
                                .first_seq = seq, .op_count = 1};
    layout_rec_seal(&c->rec);

    raw_node(&r, 0)->out_adj = blocks[0];
    raw_node(&r, 1)->in_adj = blocks[1];
    layout_meta *m = raw_meta(&r, c->roots.generation);
    memset(m, 0, sizeof(*m));
    m->roots = c->roots;
    m->file_size = file_size;
    layout_meta_seal(m);
    h->generation = c->roots.generation;
    raw_close(&r);
    return blocks[0];
}

static void test_verify_clean_with_grafted_adjacency(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    graft_association(f);
    sutra_verify_report rep;
    expect_clean(f, &rep);
    assert_int_equal(rep.live_assocs, 1);
    assert_int_equal(rep.assoc_records, 1);
    assert_int_equal(rep.regions, 4);
}

static void test_verify_adjacency_count_beyond_capacity(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    uint64_t block = graft_association(f);
    raw r = raw_open(f);
    *(uint64_t *)(r.map + block + LAYOUT_ADJ_COUNT_OFFSET) =
        layout_adj_capacity(LAYOUT_ADJ_MIN_BLOCK) + 1;
    raw_close(&r);
    expect_first(f, block + LAYOUT_ADJ_COUNT_OFFSET, "F-ADJ-2");
}

static void test_verify_adjacency_superseded_before_entry(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    uint64_t block = graft_association(f);
    raw r = raw_open(f);
    layout_adj_entry *e =
        (layout_adj_entry *)(r.map + block + LAYOUT_ADJ_ENTRIES_OFFSET);
    e->superseded = e->seq;
    uint64_t word = raw_off(&r, &e->superseded);
    raw_close(&r);
    expect_first(f, word, "F-ADJ-3");
}

static void test_verify_adjacency_foreign_block(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    uint64_t block = graft_association(f);
    raw r = raw_open(f);
    /* Node 2's out list names node 0's block: it is not node 2's. */
    layout_node *n2 = raw_node(&r, 2);
    n2->out_adj = block;
    uint64_t word = raw_off(&r, &n2->out_adj);
    raw_close(&r);
    expect_first(f, word, "F-ADJ-1");
}

/* F-ADJ-1: a block of the snapshot lies wholly below its committed end.
 * Node 1's in-list is pointed at a copy of its block that starts inside
 * the last (commit) record, less than a minimum block before the end, and
 * runs past the end into the file's zeros: readers refuse the list as
 * damage, and verification must report it, not take the block for one
 * the writer appended after the snapshot. */
static void test_verify_adjacency_block_straddles_end(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    uint64_t out_block = graft_association(f);
    raw r = raw_open(f);
    uint64_t in_block = out_block + LAYOUT_ADJ_MIN_BLOCK;
    uint64_t end = raw_current(&r)->roots.committed_end;
    uint64_t copy = layout_align_up(end - LAYOUT_ADJ_MIN_BLOCK + 1,
                                    LAYOUT_REGION_ALIGN);
    assert_true(copy < end && end - copy >= LAYOUT_ADJ_ENTRIES_OFFSET);
    assert_true(copy + LAYOUT_ADJ_MIN_BLOCK <= r.len);
    memmove(r.map + copy, r.map + in_block, LAYOUT_ADJ_MIN_BLOCK);
    layout_node *n1 = raw_node(&r, 1);
    n1->in_adj = copy;
    uint64_t word = raw_off(&r, &n1->in_adj);
    sutra_id target;
    memcpy(target.bytes, n1->id, sizeof(target.bytes));
    raw_close(&r);

    sutra_db *db = NULL;
    assert_int_equal(sutra_open(f->dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    uint64_t degree;
    assert_int_equal(sutra_degree(&snap, &target, SUTRA_IN, SUTRA_ANY_TYPE,
                                  &degree), SUTRA_ECORRUPT);
    sutra_close(db);

    sutra_verify_report rep;
    seen problems = {0};
    assert_int_equal(verify_dir(f, SUTRA_VERIFY_ALL, &rep, &problems),
                     SUTRA_ECORRUPT);
    assert_true(seen_has(&problems, word, "F-ADJ-1"));
}

/* ---- targeted corruptions --------------------------------------------- */

static void test_verify_flipped_content_byte(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t off = raw_find(&r, LAYOUT_REC_CONCEPT, 0); /* alpha */
    r.map[off + sizeof(layout_concept) + 2] ^= 0x20;
    raw_close(&r);
    expect_first(f, off, "F-LOG-6");
}

static void test_verify_bad_record_length(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t off = raw_find(&r, LAYOUT_REC_CONCEPT, 3);
    ((layout_rec *)(r.map + off))->length = 0x7FFFFFF0u;
    raw_close(&r);
    expect_first(f, off, "F-LOG-5");
}

/* F-LOG-4: a writer pads at most seven words; a longer zero run inside
 * the committed log is where a recovery scan would end it. */
static void test_verify_long_zero_run(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t off = raw_find(&r, LAYOUT_REC_CONCEPT, 3);
    uint64_t size = layout_rec_size((const layout_rec *)(r.map + off));
    assert_true(size > 8 * LAYOUT_MAX_PAD_WORDS);
    assert_int_not_equal(*(const uint64_t *)(r.map + off - 8), 0);
    memset(r.map + off, 0, layout_align_up(size, 8));
    raw_close(&r);
    expect_first(f, off, "F-LOG-4");
}

/* F-LOG-6: a region's size must be 64 plus the body its descriptor
 * implies.  A one-unit HASH_TABLE region claiming 2^61 slots implies
 * 2^64 body bytes, which wraps to 0 in 64 bits: it must still be caught.
 * alpha's first version (64-aligned) becomes that region. */
static void test_verify_hash_region_size_wraps(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t off = raw_find(&r, LAYOUT_REC_CONCEPT, 0);
    assert_int_equal(off % LAYOUT_REGION_ALIGN, 0);
    layout_region *reg = (layout_region *)(r.map + off);
    uint64_t size = layout_align_up(layout_rec_size(&reg->rec), 8);
    assert_true(size >= LAYOUT_REGION_BODY);
    memset(reg, 0, size);
    reg->rec.type = LAYOUT_REC_HASH_TABLE;
    reg->rec.flags = LAYOUT_REC_F_REGION;
    reg->rec.length = 1; /* 64 bytes: no slots at all */
    reg->arg0 = 1ull << 61;
    layout_rec_seal(&reg->rec);
    raw_close(&r);
    expect_first(f, off, "F-LOG-6");
}

static void test_verify_broken_prev_link(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t off = raw_find(&r, LAYOUT_REC_CONCEPT, 3); /* alpha, second */
    layout_concept *c = (layout_concept *)(r.map + off);
    assert_int_not_equal(c->prev, 0);
    c->prev = 0;
    layout_rec_seal(&c->rec);
    raw_close(&r);
    expect_first(f, off, "F-CON-2");
}

/* alpha's first version made to run into its second (checksum resealed):
 * the scan stops there, and the chain walk must not accept a version that
 * overlaps the newer one (F-CON-2) — overlapping versions, each as long as
 * the rest of the file, would make the walk quadratic. */
static void test_verify_overlapping_versions(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t first = raw_find(&r, LAYOUT_REC_CONCEPT, 0);  /* alpha, first */
    uint64_t second = raw_find(&r, LAYOUT_REC_CONCEPT, 3); /* alpha, second */
    layout_concept *c = (layout_concept *)(r.map + second);
    assert_int_equal(c->prev, first);
    layout_concept *old = (layout_concept *)(r.map + first);
    old->rec.length = (uint32_t)(second - first + 64);
    layout_rec_seal(&old->rec);
    raw_close(&r);
    sutra_verify_report rep;
    seen problems = {0};
    assert_int_equal(verify_dir(f, SUTRA_VERIFY_ALL, &rep, &problems),
                     SUTRA_ECORRUPT);
    assert_true(seen_has(&problems, first, "F-CON-2"));
}

static void test_verify_hash_slot_names_wrong_node(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    const layout_roots *roots = &raw_current(&r)->roots;
    uint64_t *slots = (uint64_t *)(r.map + roots->hash_root + LAYOUT_REGION_BODY);
    uint64_t i = 0;
    while ((uint32_t)slots[i] != 1) /* node 0 */
        i++;
    slots[i] = (slots[i] & 0xFFFFFFFF00000000ull) | 2; /* node 1, node 0's tag */
    uint64_t off = raw_off(&r, &slots[i]);
    raw_close(&r);
    expect_first(f, off, "F-HASH-2");
}

static void test_verify_duplicate_node_id(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    layout_node *n1 = raw_node(&r, 1);
    memcpy(n1->id, raw_node(&r, 0)->id, 16);
    uint64_t entry = raw_off(&r, n1);
    uint64_t beta = raw_find(&r, LAYOUT_REC_CONCEPT, 1);
    raw_close(&r);
    sutra_verify_report rep;
    seen problems = {0};
    assert_int_equal(verify_dir(f, SUTRA_VERIFY_ALL, &rep, &problems),
                     SUTRA_ECORRUPT);
    /* Seen first in the log (beta's record no longer matches its entry),
     * then by the node table itself. */
    assert_string_equal(rep.rule, "F-NODE-1");
    assert_int_equal(rep.offset, beta);
    assert_true(seen_has(&problems, entry, "F-NODE-1"));
    assert_int_equal(rep.problems, (uint64_t)problems.count);
}

static void test_verify_commit_chain_broken(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t off = raw_find(&r, LAYOUT_REC_COMMIT, 2);
    layout_commit *c = (layout_commit *)(r.map + off);
    c->prev_commit = raw_find(&r, LAYOUT_REC_COMMIT, 0); /* skips one */
    layout_rec_seal(&c->rec);
    raw_close(&r);
    expect_first(f, off, "F-COM-2");
}

static void test_verify_counts_wrong(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    layout_meta *m = raw_current(&r);
    uint64_t off = m->roots.last_commit;
    layout_commit *c = (layout_commit *)(r.map + off);
    c->roots.version_count++;
    layout_rec_seal(&c->rec);
    m->roots.version_count++;
    layout_meta_seal(m);
    raw_close(&r);
    expect_first(f, off, "F-COM-1");
}

static void test_verify_meta_slot_roots_differ(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    layout_meta *older = raw_meta(&r, raw_header(&r)->generation + 1);
    assert_int_equal(older->roots.generation, 3);
    older->roots.node_count--;
    layout_meta_seal(older);
    uint64_t off = raw_off(&r, older);
    raw_close(&r);
    expect_first(f, off, "F-META-5");
}

/* F-META-6: a next table that is the named one, not a newer region. */
static void test_verify_next_table_not_newer(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    layout_meta *m = raw_current(&r);
    m->next_hash_root = m->roots.hash_root;
    layout_meta_seal(m);
    uint64_t off = raw_off(&r, &m->next_hash_root);
    raw_close(&r);
    expect_first(f, off, "F-META-6");
}

static void test_verify_meta_page_not_zero(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t off = LAYOUT_META_OFFSET_1 + 1000;
    r.map[off] = 1;
    raw_close(&r);
    expect_first(f, off, "F-META-1");
}

static void test_verify_head_names_older_version(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    layout_node *n0 = raw_node(&r, 0);
    n0->head = raw_find(&r, LAYOUT_REC_CONCEPT, 0);
    uint64_t word = raw_off(&r, &n0->head);
    raw_close(&r);
    expect_first(f, word, "F-NODE-1");
}

static void test_verify_all_counts_every_problem(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint64_t first = raw_find(&r, LAYOUT_REC_CONCEPT, 0);
    uint64_t second = raw_find(&r, LAYOUT_REC_CONCEPT, 2);
    r.map[first + sizeof(layout_concept)] ^= 1;
    r.map[second + 20] ^= 1; /* checksum */
    raw_close(&r);
    sutra_verify_report rep;
    seen problems = {0};
    assert_int_equal(verify_dir(f, SUTRA_VERIFY_ALL, &rep, &problems),
                     SUTRA_ECORRUPT);
    assert_int_equal(rep.problems, 2);
    assert_int_equal(rep.offset, first);
    assert_true(seen_has(&problems, second, "F-LOG-6"));
    expect_first(f, first, "F-LOG-6");
}

/* Deterministic random damage anywhere in the file: the verifier must
 * answer 0 or SUTRA_ECORRUPT with a rule, and never crash (the fuzz target
 * tests/fuzz/fuzz_file.c does this at scale; this keeps a slice of it in
 * every sanitizer run).  Damage in the log must always be noticed. */
static void test_verify_survives_random_damage(void **state)
{
    sf_dir *f = *state;
    build_standard(f);
    raw r = raw_open(f);
    uint8_t *clean = malloc(r.len);
    memcpy(clean, r.map, r.len);
    uint64_t end = raw_current(&r)->roots.committed_end;
    uint64_t records = raw_header(&r)->node_chunk[0] + LAYOUT_REGION_BODY +
                       LAYOUT_NODE_CHUNK0 * sizeof(layout_node);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int corrupt = 0;
    for (int round = 0; round < 400; round++) {
        memcpy(r.map, clean, r.len);
        int flips = 1 + (int)(x % 4);
        bool in_log = true;
        for (int i = 0; i < flips; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* Mostly the log, sometimes the header words and meta slots. */
            uint64_t off = x % 4 ? LAYOUT_DATA_START + (x >> 8) % (end - LAYOUT_DATA_START)
                                 : 128 + (x >> 8) % (LAYOUT_DATA_START - 128);
            in_log = in_log && off >= records; /* not index words */
            r.map[off] ^= (uint8_t)(1u << (x >> 40) % 8);
        }
        sutra_db *db = NULL;
        if (sutra_open(f->dir, NULL, &db) != 0)
            continue;
        struct sutra_snapshot snap;
        if (sutra_snapshot(db, &snap) == 0) {
            sutra_verify_options o = {.flags = SUTRA_VERIFY_ALL};
            sutra_verify_report rep;
            int rc = sutra_verify(&snap, &o, &rep);
            assert_true(rc == 0 || rc == SUTRA_ECORRUPT);
            if (rc == SUTRA_ECORRUPT) {
                assert_true(rep.problems >= 1);
                assert_memory_equal(rep.rule, "F-", 2);
                corrupt++;
            } else if (in_log) {
                fail_msg("round %d: damage in the records went unnoticed", round);
            }
        }
        sutra_close(db);
    }
    memcpy(r.map, clean, r.len);
    raw_close(&r);
    free(clean);
    assert_true(corrupt > 100);
}

static void test_verify_rejects_bad_arguments(void **state)
{
    (void)state;
    sutra_verify_report rep;
    assert_int_equal(sutra_verify(NULL, NULL, &rep), SUTRA_EINVAL);
    struct sutra_snapshot snap = {0};
    assert_int_equal(sutra_verify(&snap, NULL, &rep), SUTRA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, sf_teardown)
        T(test_verify_clean_standard_file),
        T(test_verify_clean_at_every_generation),
        T(test_verify_clean_fresh_file),
        T(test_verify_clean_after_growth),
        T(test_verify_clean_while_writer_commits),
        T(test_verify_clean_with_nodes_named_by_an_association),
        T(test_verify_clean_after_forgetting_a_hub),
        T(test_verify_clean_with_store_associations),
        T(test_verify_clean_with_grafted_adjacency),
        T(test_verify_adjacency_count_beyond_capacity),
        T(test_verify_adjacency_superseded_before_entry),
        T(test_verify_adjacency_foreign_block),
        T(test_verify_adjacency_block_straddles_end),
        T(test_verify_flipped_content_byte),
        T(test_verify_bad_record_length),
        T(test_verify_long_zero_run),
        T(test_verify_hash_region_size_wraps),
        T(test_verify_broken_prev_link),
        T(test_verify_overlapping_versions),
    T(test_verify_hash_slot_names_wrong_node),
        T(test_verify_duplicate_node_id),
        T(test_verify_commit_chain_broken),
        T(test_verify_counts_wrong),
        T(test_verify_meta_slot_roots_differ),
        T(test_verify_meta_page_not_zero),
        T(test_verify_next_table_not_newer),
        T(test_verify_head_names_older_version),
        T(test_verify_all_counts_every_problem),
        T(test_verify_survives_random_damage),
        T(test_verify_rejects_bad_arguments),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
