/*
 * tests/integration/test_multiprocess.c — the real coordinator with several
 * writer and reader processes.
 *
 * Writers record the generation of every acknowledged write in shared
 * memory; readers, in their own processes with their own mappings, wait for
 * that generation and check the concept byte for byte.  Also: snapshot
 * isolation across processes, as-of snapshots, and bad requests that must
 * change nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "sutra/sutra.h"
#include "tests/integration/harness.h"

#define DIM 384
#define WRITERS 2
#define READERS 3
#define PER_WRITER 10000
#define WINDOW 64

typedef struct shared_state {
    const char *dir;
    _Atomic uint64_t ack_gen[WRITERS][PER_WRITER]; /* 0 = not acknowledged */
    _Atomic uint32_t writers_done;
    _Atomic uint64_t verified[READERS];
    /* snapshot-isolation handshake */
    _Atomic uint64_t step_gen[8];
    _Atomic uint32_t parent_step;
    /* resend test */
    _Atomic uint64_t duplicates_before, duplicates_after;
} shared_state;

static shared_state *shm;
static char *dir;
static pid_t coordinator;

static void fill_input(sutra_concept_input *in, uint32_t w, uint32_t i,
                       uint32_t v, char *content, float *emb)
{
    memset(in, 0, sizeof(*in));
    harness_item_id(w, i, &in->id);
    in->content_len = harness_content(w, i, v, content, 512);
    in->content = content;
    harness_embedding(w, i, v, emb, DIM);
    in->embedding = emb;
    in->dim = DIM;
    in->strength = 1.0f + (float)v;
    in->confidence = 0.5f;
}

/* Writer 0: single-op requests, WINDOW of them in flight (async form). */
static int writer_async(shared_state *s, uint32_t w)
{
    sutra_client *c;
    if (sutra_client_connect(s->dir, NULL, &c) != 0)
        return 10;
    sutra_batch *b;
    sutra_batch_new(&b);
    sutra_pending *ring[WINDOW] = { 0 };
    uint32_t ring_item[WINDOW];
    char content[512];
    static float emb[DIM];
    for (uint32_t i = 0; i < PER_WRITER + WINDOW; i++) {
        uint32_t slot = i % WINDOW;
        if (ring[slot]) {
            sutra_write_result r;
            int rc = sutra_pending_wait(ring[slot], -1, &r);
            sutra_pending_free(ring[slot]);
            ring[slot] = NULL;
            if (rc != 0) {
                fprintf(stderr, "writer %u: item %u: %s\n", w, ring_item[slot],
                        sutra_strerror(rc));
                return 11;
            }
            atomic_store(&s->ack_gen[w][ring_item[slot]], r.generation);
        }
        if (i >= PER_WRITER)
            continue;
        sutra_concept_input in;
        fill_input(&in, w, i, 0, content, emb);
        sutra_batch_clear(b);
        if (sutra_batch_learn_concept(b, &in) != 0 ||
            sutra_batch_submit(c, b, &ring[slot]) != 0)
            return 12;
        ring_item[slot] = i;
    }
    sutra_batch_free(b);
    sutra_client_close(c);
    return 0;
}

/* Writer 1: synchronous batches of 50. */
static int writer_batches(shared_state *s, uint32_t w)
{
    sutra_client *c;
    if (sutra_client_connect(s->dir, NULL, &c) != 0)
        return 20;
    sutra_batch *b;
    sutra_batch_new(&b);
    char content[512];
    static float emb[DIM];
    for (uint32_t i = 0; i < PER_WRITER; i += 50) {
        sutra_batch_clear(b);
        for (uint32_t k = i; k < i + 50 && k < PER_WRITER; k++) {
            sutra_concept_input in;
            fill_input(&in, w, k, 0, content, emb);
            if (sutra_batch_learn_concept(b, &in) != 0)
                return 21;
        }
        sutra_write_result r;
        int rc = sutra_batch_commit(c, b, &r);
        if (rc != 0) {
            fprintf(stderr, "writer %u: batch %u: %s (%s)\n", w, i,
                    sutra_strerror(rc), sutra_client_last_error(c));
            return 22;
        }
        if (r.op_count != sutra_batch_count(b))
            return 23;
        for (uint32_t k = i; k < i + 50 && k < PER_WRITER; k++)
            atomic_store(&s->ack_gen[w][k], r.generation);
    }
    sutra_batch_free(b);
    sutra_client_close(c);
    return 0;
}

static int writer_main(void *arg)
{
    uint32_t w = (uint32_t)(uintptr_t)arg;
    int rc = w == 0 ? writer_async(shm, w) : writer_batches(shm, w);
    atomic_fetch_add(&shm->writers_done, 1);
    return rc;
}

/* A reader checks every acknowledged write once it has seen its
 * generation, while the writers are still writing, until all are checked. */
static int reader_main(void *arg)
{
    uint32_t r = (uint32_t)(uintptr_t)arg;
    sutra_db *db;
    int rc = sutra_open(shm->dir, NULL, &db);
    if (rc != 0) {
        fprintf(stderr, "reader %u: open: %s\n", r, sutra_strerror(rc));
        return 30;
    }
    static uint8_t done[WRITERS][PER_WRITER];
    uint64_t verified = 0, deadline = harness_now_ms() + 180000;
    while (verified < (uint64_t)WRITERS * PER_WRITER) {
        if (harness_now_ms() > deadline) {
            fprintf(stderr, "reader %u: only %llu verified\n", r,
                    (unsigned long long)verified);
            return 31;
        }
        bool progress = false;
        for (uint32_t w = 0; w < WRITERS; w++) {
            for (uint32_t i = 0; i < PER_WRITER; i++) {
                uint64_t gen = atomic_load(&shm->ack_gen[w][i]);
                if (done[w][i] || gen == 0)
                    continue;
                if (sutra_wait_generation(db, gen, 10000) != 0) {
                    fprintf(stderr, "reader %u: gen %llu never published\n",
                            r, (unsigned long long)gen);
                    return 32;
                }
                struct sutra_snapshot snap;
                if (sutra_snapshot(db, &snap) != 0 || snap.generation < gen)
                    return 33;
                sutra_id id;
                harness_item_id(w, i, &id);
                sutra_concept c;
                rc = sutra_get(&snap, &id, &c);
                if (rc != 0 || !harness_item_matches(&c, w, i, 0, DIM)) {
                    fprintf(stderr, "reader %u: writer %u item %u at gen %llu:"
                            " %s\n", r, w, i, (unsigned long long)gen,
                            rc ? sutra_strerror(rc) : "bytes differ");
                    return 34;
                }
                done[w][i] = 1;
                verified++;
                progress = true;
            }
        }
        if (!progress)
            usleep(2000);
    }
    atomic_store(&shm->verified[r], verified);
    sutra_close(db);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    shm = harness_shared_alloc(sizeof(*shm));
    dir = harness_tmpdir();
    shm->dir = dir;
    const char *args[] = { "--dim", "384", "--sync", "commit",
                           "--max-content", "4096", NULL };
    coordinator = harness_coordinator_start(dir, args);
    return coordinator > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int st = harness_coordinator_stop(coordinator, SIGTERM);
    harness_rmdir(dir);
    return st == 0 ? 0 : -1;
}

static void test_multiprocess_acknowledged_writes_visible_to_all_readers(
    void **state)
{
    (void)state;
    pid_t pids[WRITERS + READERS];
    for (uint32_t r = 0; r < READERS; r++)
        pids[r] = harness_spawn(reader_main, (void *)(uintptr_t)r);
    for (uint32_t w = 0; w < WRITERS; w++)
        pids[READERS + w] = harness_spawn(writer_main, (void *)(uintptr_t)w);
    for (int k = 0; k < WRITERS + READERS; k++)
        assert_int_equal(harness_wait(pids[k]), 0);
    for (uint32_t r = 0; r < READERS; r++)
        assert_int_equal(atomic_load(&shm->verified[r]),
                         (uint64_t)WRITERS * PER_WRITER);

    sutra_db *db;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    assert_int_equal(snap.concept_count, (uint64_t)WRITERS * PER_WRITER);
    sutra_stats st;
    assert_int_equal(sutra_stats_get(&snap, &st), 0);
    assert_int_equal(st.vector_dim, DIM);
    assert_int_equal(st.node_count, (uint64_t)WRITERS * PER_WRITER);
    assert_false(st.clean_shutdown);
    sutra_close(db);
}

/* Child side of the isolation test: each step waits for the parent. */
static int isolation_writer(void *arg)
{
    (void)arg;
    sutra_client *c;
    if (sutra_client_connect(shm->dir, NULL, &c) != 0)
        return 40;
    char content[512];
    static float emb[DIM];
    sutra_concept_input in;
    sutra_write_result r;
    /* step 1: A v1 and B v1 */
    sutra_batch *b;
    sutra_batch_new(&b);
    fill_input(&in, 7, 0, 1, content, emb);
    sutra_batch_learn_concept(b, &in);
    fill_input(&in, 7, 1, 1, content, emb);
    sutra_batch_learn_concept(b, &in);
    if (sutra_batch_commit(c, b, &r) != 0 || r.op_count != 2)
        return 41;
    atomic_store(&shm->step_gen[1], r.generation);
    while (atomic_load(&shm->parent_step) < 1)
        usleep(1000);
    /* step 2: A v2 (new content and embedding) */
    fill_input(&in, 7, 0, 2, content, emb);
    if (sutra_learn_concept(c, &in, &r) != 0)
        return 42;
    atomic_store(&shm->step_gen[2], r.generation);
    /* step 3: forget B */
    sutra_id idb;
    harness_item_id(7, 1, &idb);
    if (sutra_forget_concept(c, &idb, &r) != 0)
        return 43;
    atomic_store(&shm->step_gen[3], r.generation);
    /* step 4: A strength-only re-learn: keep content and embedding */
    memset(&in, 0, sizeof(in));
    harness_item_id(7, 0, &in.id);
    in.strength = 9.5f;
    in.confidence = 0.25f;
    in.flags = SUTRA_LEARN_KEEP_CONTENT | SUTRA_LEARN_KEEP_EMBEDDING;
    if (sutra_learn_concept(c, &in, &r) != 0)
        return 44;
    atomic_store(&shm->step_gen[4], r.generation);
    sutra_batch_free(b);
    sutra_client_close(c);
    return 0;
}

static void test_multiprocess_snapshot_isolation(void **state)
{
    (void)state;
    sutra_db *db;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    pid_t child = harness_spawn(isolation_writer, NULL);
    while (atomic_load(&shm->step_gen[1]) == 0)
        usleep(1000);
    uint64_t g1 = atomic_load(&shm->step_gen[1]);
    assert_int_equal(sutra_wait_generation(db, g1, 10000), 0);
    struct sutra_snapshot before;
    assert_int_equal(sutra_snapshot(db, &before), 0);
    atomic_store(&shm->parent_step, 1);
    assert_int_equal(harness_wait(child), 0);
    uint64_t g4 = atomic_load(&shm->step_gen[4]);
    assert_int_equal(sutra_wait_generation(db, g4, 10000), 0);

    sutra_id a, bid;
    harness_item_id(7, 0, &a);
    harness_item_id(7, 1, &bid);
    sutra_concept c;
    /* the snapshot taken before the re-learn still sees v1 and B */
    assert_int_equal(sutra_get(&before, &a, &c), 0);
    assert_true(harness_item_matches(&c, 7, 0, 1, DIM));
    assert_int_equal(sutra_get(&before, &bid, &c), 0);

    struct sutra_snapshot now, at;
    assert_int_equal(sutra_snapshot(db, &now), 0);
    assert_int_equal(sutra_get(&now, &bid, &c), SUTRA_ENOTFOUND);
    bool found = true;
    assert_int_equal(sutra_contains(&now, &bid, &found), 0);
    assert_false(found);
    assert_int_equal(sutra_get(&now, &a, &c), 0);
    assert_true(harness_item_matches(&c, 7, 0, 2, DIM)); /* kept v2 bytes */
    assert_true(c.strength == 9.5f && c.confidence == 0.25f);
    sutra_concept v2;
    assert_int_equal(sutra_snapshot_at(db, atomic_load(&shm->step_gen[2]), &at),
                     0);
    assert_int_equal(sutra_get(&at, &a, &v2), 0);
    assert_true(harness_item_matches(&v2, 7, 0, 2, DIM));
    assert_true(v2.strength == 3.0f);
    /* the strength-only version shares the bytes: same addresses */
    assert_ptr_equal(v2.content, c.content);
    assert_ptr_equal(v2.embedding, c.embedding);
    assert_int_equal(sutra_get(&at, &bid, &c), 0);
    assert_int_equal(sutra_snapshot_at(db, atomic_load(&shm->step_gen[3]), &at),
                     0);
    assert_int_equal(sutra_get(&at, &bid, &c), SUTRA_ENOTFOUND);
    assert_int_equal(sutra_snapshot_at(db, now.generation + 1, &at),
                     SUTRA_ESTALE);
    sutra_close(db);
}

/* Bad requests: each fails with its own code and changes nothing. */
static int bad_request_writer(void *arg)
{
    (void)arg;
    sutra_client *c;
    if (sutra_client_connect(shm->dir, NULL, &c) != 0)
        return 50;
    char content[512];
    static float emb[DIM];
    sutra_concept_input in;
    sutra_write_result r;
    int fails = 0;
#define EXPECT(call, code)                                                   \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ != (code)) {                                                 \
            fprintf(stderr, "%s: got %s, want %s\n", #call,                 \
                    sutra_strerror(rc_), sutra_strerror(code));              \
            fails++;                                                         \
        }                                                                    \
    } while (0)
    fill_input(&in, 8, 0, 0, content, emb);
    in.dim = DIM / 2; /* wrong dimension */
    EXPECT(sutra_learn_concept(c, &in, &r), SUTRA_EDIM);
    fill_input(&in, 8, 0, 0, content, emb);
    static char big[8192];
    memset(big, 'x', sizeof(big));
    in.content = big;
    in.content_len = sizeof(big); /* over --max-content 4096 */
    EXPECT(sutra_learn_concept(c, &in, &r), SUTRA_ETOOBIG);
    sutra_id unknown;
    harness_item_id(8, 99, &unknown);
    EXPECT(sutra_forget_concept(c, &unknown, &r), SUTRA_ENOTFOUND);
    /* a batch: one good op, then a forget of an unknown id -> nothing */
    sutra_batch *b;
    sutra_batch_new(&b);
    fill_input(&in, 8, 1, 0, content, emb);
    sutra_batch_learn_concept(b, &in);
    sutra_batch_forget_concept(b, &unknown);
    EXPECT(sutra_batch_commit(c, b, &r), SUTRA_ENOTFOUND);
    /* client-side validation: NaN never leaves the process */
    fill_input(&in, 8, 2, 0, content, emb);
    in.strength = NAN;
    sutra_batch_clear(b);
    EXPECT(sutra_batch_learn_concept(b, &in), SUTRA_EINVAL);
    sutra_batch_free(b);
    EXPECT(sutra_ping(c), 0);
    sutra_client_close(c);
    return fails;
}

static void test_multiprocess_bad_requests_change_nothing(void **state)
{
    (void)state;
    sutra_db *db;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    uint64_t gen_before = sutra_generation(db);
    assert_int_equal(harness_wait(harness_spawn(bad_request_writer, NULL)), 0);
    assert_int_equal(sutra_generation(db), gen_before);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    for (uint32_t i = 0; i < 3; i++) {
        sutra_id id;
        sutra_concept c;
        harness_item_id(8, i, &id);
        assert_int_equal(sutra_get(&snap, &id, &c), SUTRA_ENOTFOUND);
    }
    sutra_close(db);
}

/* A 1 ms resend timer against --sync commit (every reply waits for an
 * fsync) makes NNG resend most requests; each must be applied once. */
#define RESEND_ITEMS 300
static int resend_writer(void *arg)
{
    (void)arg;
    sutra_client_options opts = { .timeout_ms = 20000, .resend_ms = 1 };
    sutra_client *c;
    if (sutra_client_connect(shm->dir, &opts, &c) != 0)
        return 60;
    sutra_server_stats st;
    if (sutra_client_stats(c, &st) != 0)
        return 61;
    atomic_store(&shm->duplicates_before, st.duplicates);
    char content[512];
    static float emb[DIM];
    for (uint32_t i = 0; i < RESEND_ITEMS; i++) {
        sutra_concept_input in;
        sutra_write_result r;
        fill_input(&in, 9, i, 0, content, emb);
        if (sutra_learn_concept(c, &in, &r) != 0 || r.op_count != 1)
            return 62;
    }
    if (sutra_client_stats(c, &st) != 0)
        return 63;
    atomic_store(&shm->duplicates_after, st.duplicates);
    sutra_client_close(c);
    return 0;
}

static void test_multiprocess_resent_requests_apply_once(void **state)
{
    (void)state;
    sutra_db *db;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    struct sutra_snapshot before, after;
    sutra_stats sb, sa;
    assert_int_equal(sutra_snapshot(db, &before), 0);
    assert_int_equal(sutra_stats_get(&before, &sb), 0);
    assert_int_equal(harness_wait(harness_spawn(resend_writer, NULL)), 0);
    assert_int_equal(sutra_snapshot(db, &after), 0);
    assert_int_equal(sutra_stats_get(&after, &sa), 0);
    /* exactly one version per learn, however many copies arrived */
    assert_int_equal(sa.version_count - sb.version_count, RESEND_ITEMS);
    assert_int_equal(sa.last_seq - sb.last_seq, RESEND_ITEMS);
    uint64_t dups = atomic_load(&shm->duplicates_after) -
                    atomic_load(&shm->duplicates_before);
    print_message("resend: %d requests, %llu duplicate copies answered from "
                  "the reply cache\n", RESEND_ITEMS, (unsigned long long)dups);
    assert_true(dups > 0); /* the resends really happened */
    for (uint32_t i = 0; i < RESEND_ITEMS; i++) {
        sutra_id id;
        sutra_concept c;
        harness_item_id(9, i, &id);
        assert_int_equal(sutra_get(&after, &id, &c), 0);
        assert_true(harness_item_matches(&c, 9, i, 0, DIM));
    }
    sutra_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_multiprocess_acknowledged_writes_visible_to_all_readers),
        cmocka_unit_test(test_multiprocess_snapshot_isolation),
        cmocka_unit_test(test_multiprocess_bad_requests_change_nothing),
        cmocka_unit_test(test_multiprocess_resent_requests_apply_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
