/*
 * tests/integration/test_outlive.c — readers outlive the coordinator.
 *
 * Reader processes map storage.dat once and keep taking snapshots and
 * checking every acknowledged write byte for byte while the coordinator is
 * SIGKILLed, stays down, and is restarted on the same file; afterwards they
 * see generations committed by the new coordinator without reopening
 * (sutra_wait_generation on the same handle).  Readers never use NNG, so
 * nothing of the coordinator's death reaches them.
 *
 * A writer keeps its one client handle throughout: while the coordinator
 * is down each write fails with SUTRA_ETIMEDOUT or SUTRA_ECLOSED within its
 * deadline (measured), and once the coordinator is back the same handle
 * reconnects by itself and its next write succeeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "sutra/sutra.h"
#include "tests/integration/harness.h"

#define DIM 8
#define READERS 3
#define BATCH_OPS 5
#define MAX_BATCHES 20000
#define BATCHES_BEFORE_KILL 50
#define BATCHES_AFTER_RESTART 20
#define DEADLINE_MS 1000
#define DEADLINE_SLACK_MS 300 /* scheduling on a loaded 2-core machine */
#define DOWN_MS 2500
#define WRITER 77u

static const char *const COORD_ARGS[] = { "--dim", "8", "--sync", "commit",
                                          NULL };

typedef struct shared_state {
    char dir[64];
    _Atomic uint32_t down;            /* coordinator killed, not yet back  */
    _Atomic uint32_t restarted;       /* the new coordinator answers pings */
    _Atomic uint32_t stop;            /* readers: finish                   */
    /* writer */
    _Atomic uint32_t batches;         /* batches attempted                 */
    _Atomic uint64_t ack_gen[MAX_BATCHES]; /* 0: not acknowledged          */
    _Atomic uint32_t acked;
    _Atomic uint64_t post_restart_gen;/* first generation of the new one   */
    uint32_t failures;                /* writes that failed while down     */
    int failure_codes[64];
    uint64_t failure_max_ms;          /* slowest failure                   */
    uint64_t first_ok_after_restart_ms;
    /* readers */
    _Atomic uint64_t snapshots[READERS];
    _Atomic uint64_t gets[READERS];
    _Atomic uint64_t gets_while_down[READERS];
    _Atomic uint32_t saw_new[READERS];
} shared_state;

static shared_state *shm;
static pid_t coordinator;

static void add_batch(sutra_batch *b, uint32_t k)
{
    char content[512];
    float emb[DIM];
    for (uint32_t i = 0; i < BATCH_OPS; i++) {
        uint32_t index = k * BATCH_OPS + i;
        sutra_concept_input in = { .strength = 1.0f, .confidence = 0.5f,
                                   .dim = DIM, .embedding = emb,
                                   .content = content };
        harness_item_id(WRITER, index, &in.id);
        in.content_len = harness_content(WRITER, index, 0, content, 512);
        harness_embedding(WRITER, index, 0, emb, DIM);
        sutra_batch_learn_concept(b, &in);
    }
}

/* ---- the writer ------------------------------------------------------- */

/* One batch; on failure while the coordinator is down, check the error and
 * how long it took.  Returns 0, or an exit code for the test. */
static int write_one(sutra_client *c, sutra_batch *b, uint32_t k, bool *ok)
{
    sutra_batch_clear(b);
    add_batch(b, k);
    atomic_store(&shm->batches, k + 1);
    bool was_down = atomic_load(&shm->down);
    uint64_t t0 = harness_now_ms();
    sutra_write_result r;
    int rc = sutra_batch_commit(c, b, &r);
    uint64_t took = harness_now_ms() - t0;
    *ok = rc == 0;
    if (rc == 0) {
        if (r.op_count != BATCH_OPS)
            return 60;
        atomic_store(&shm->ack_gen[k], r.generation);
        atomic_fetch_add(&shm->acked, 1);
        return 0;
    }
    if (rc != SUTRA_ETIMEDOUT && rc != SUTRA_ECLOSED) {
        fprintf(stderr, "writer: batch %u: %s\n", k, sutra_strerror(rc));
        return 61;
    }
    if (!was_down && !atomic_load(&shm->down))
        return 0; /* in flight when the coordinator was killed: unknown */
    if (shm->failures < 64)
        shm->failure_codes[shm->failures] = rc;
    shm->failures++;
    if (took > shm->failure_max_ms)
        shm->failure_max_ms = took;
    return 0;
}

static int writer_main(void *arg)
{
    (void)arg;
    sutra_client_options opts = { .timeout_ms = DEADLINE_MS };
    sutra_client *c;
    sutra_batch *b;
    if (sutra_client_connect(shm->dir, &opts, &c) != 0 ||
        sutra_batch_new(&b) != 0)
        return 50;
    uint32_t k = 0, after = 0;
    int rc = 0;
    while (rc == 0 && after < BATCHES_AFTER_RESTART && k < MAX_BATCHES) {
        bool restarted = atomic_load(&shm->restarted);
        uint64_t t0 = harness_now_ms();
        bool ok;
        rc = write_one(c, b, k++, &ok);
        if (restarted && !ok) {
            /* the coordinator answered pings before `restarted` was set:
             * the same handle must have reconnected by now */
            fprintf(stderr, "writer: failed after the restart\n");
            rc = 62;
        }
        if (restarted && ok && after++ == 0) {
            shm->first_ok_after_restart_ms = harness_now_ms() - t0;
            atomic_store(&shm->post_restart_gen,
                         atomic_load(&shm->ack_gen[k - 1]));
        }
        usleep(1000);
    }
    sutra_batch_free(b);
    sutra_client_close(c);
    return rc ? rc : after == BATCHES_AFTER_RESTART ? 0 : 63;
}

/* ---- readers ---------------------------------------------------------- */

/* Check every acknowledged batch visible at the snapshot. */
static int check_snapshot(uint32_t r, const struct sutra_snapshot *snap)
{
    uint32_t batches = atomic_load(&shm->batches);
    bool down = atomic_load(&shm->down);
    for (uint32_t k = 0; k < batches; k++) {
        uint64_t gen = atomic_load(&shm->ack_gen[k]);
        if (gen == 0 || gen > snap->generation)
            continue;
        for (uint32_t i = 0; i < BATCH_OPS; i++) {
            uint32_t index = k * BATCH_OPS + i;
            sutra_id id;
            sutra_concept c;
            harness_item_id(WRITER, index, &id);
            int rc = sutra_get(snap, &id, &c);
            if (rc != 0 || !harness_item_matches(&c, WRITER, index, 0, DIM)) {
                fprintf(stderr, "reader %u: item %u at generation %llu: %s\n",
                        r, index, (unsigned long long)snap->generation,
                        rc ? sutra_strerror(rc) : "bytes differ");
                return 70;
            }
            atomic_fetch_add(&shm->gets[r], 1);
            if (down)
                atomic_fetch_add(&shm->gets_while_down[r], 1);
        }
    }
    return 0;
}

/* Wait, on the handle opened before the kill, for the first generation
 * the restarted coordinator committed. */
static int check_new_generation(uint32_t r, sutra_db *db)
{
    uint64_t gen = atomic_load(&shm->post_restart_gen);
    if (gen == 0 || atomic_load(&shm->saw_new[r]))
        return 0;
    if (sutra_wait_generation(db, gen, 10000) != 0) {
        fprintf(stderr, "reader %u: generation %llu never seen\n", r,
                (unsigned long long)gen);
        return 71;
    }
    atomic_store(&shm->saw_new[r], 1);
    return 0;
}

static int reader_main(void *arg)
{
    uint32_t r = (uint32_t)(uintptr_t)arg;
    sutra_db *db;
    if (sutra_open(shm->dir, NULL, &db) != 0)
        return 72;
    uint64_t last_gen = 0;
    int rc = 0;
    while (rc == 0 && !atomic_load(&shm->stop)) {
        struct sutra_snapshot snap;
        if ((rc = sutra_snapshot(db, &snap)) != 0) {
            fprintf(stderr, "reader %u: snapshot: %s\n", r, sutra_strerror(rc));
            rc = 73;
            break;
        }
        if (snap.generation < last_gen) {
            fprintf(stderr, "reader %u: generation went back %llu -> %llu\n",
                    r, (unsigned long long)last_gen,
                    (unsigned long long)snap.generation);
            rc = 74;
            break;
        }
        last_gen = snap.generation;
        atomic_fetch_add(&shm->snapshots[r], 1);
        rc = check_snapshot(r, &snap);
        if (rc == 0)
            rc = check_new_generation(r, db);
        usleep(500);
    }
    sutra_close(db);
    return rc;
}

/* ---- the test --------------------------------------------------------- */

static bool wait_until(_Atomic uint32_t *word, uint32_t value, uint64_t ms)
{
    uint64_t deadline = harness_now_ms() + ms;
    while (atomic_load(word) < value)
        if (harness_now_ms() > deadline)
            return false;
        else
            usleep(2000);
    return true;
}

static void test_outlive_readers_and_clients_survive_a_kill(void **state)
{
    (void)state;
    pid_t readers[READERS];
    for (uint32_t r = 0; r < READERS; r++)
        readers[r] = harness_spawn(reader_main, (void *)(uintptr_t)r);
    pid_t writer = harness_spawn(writer_main, NULL);
    assert_true(wait_until(&shm->acked, BATCHES_BEFORE_KILL, 30000));

    atomic_store(&shm->down, 1);
    assert_int_equal(harness_coordinator_stop(coordinator, SIGKILL),
                     128 + SIGKILL);
    coordinator = 0;
    uint64_t gets_at_kill = 0;
    for (uint32_t r = 0; r < READERS; r++)
        gets_at_kill += atomic_load(&shm->gets[r]);
    usleep(DOWN_MS * 1000);
    coordinator = harness_coordinator_start(shm->dir, COORD_ARGS);
    assert_true(coordinator > 0);
    atomic_store(&shm->down, 0);
    atomic_store(&shm->restarted, 1);

    assert_int_equal(harness_wait(writer), 0);
    for (uint32_t r = 0; r < READERS; r++)
        assert_true(wait_until(&shm->saw_new[r], 1, 15000));
    atomic_store(&shm->stop, 1);
    for (uint32_t r = 0; r < READERS; r++)
        assert_int_equal(harness_wait(readers[r]), 0);

    uint64_t down_gets = 0, snaps = 0;
    for (uint32_t r = 0; r < READERS; r++) {
        assert_true(atomic_load(&shm->gets_while_down[r]) > 0);
        down_gets += atomic_load(&shm->gets_while_down[r]);
        snaps += atomic_load(&shm->snapshots[r]);
    }
    print_message("outlive: %u batches acknowledged; %u readers took %llu "
                  "snapshots, %llu checked gets while the coordinator was "
                  "down (%llu before the kill); writer: %u failed writes while "
                  "down, slowest %llu ms (deadline %d ms), first write after "
                  "the restart %llu ms\n", atomic_load(&shm->acked), READERS,
                  (unsigned long long)snaps, (unsigned long long)down_gets,
                  (unsigned long long)gets_at_kill, shm->failures,
                  (unsigned long long)shm->failure_max_ms, DEADLINE_MS,
                  (unsigned long long)shm->first_ok_after_restart_ms);
    /* down for DOWN_MS with a DEADLINE_MS deadline: at least two failures,
     * each with a clear error, none later than the deadline allows */
    assert_true(shm->failures >= 2);
    for (uint32_t i = 0; i < shm->failures && i < 64; i++)
        assert_true(shm->failure_codes[i] == SUTRA_ETIMEDOUT ||
                    shm->failure_codes[i] == SUTRA_ECLOSED);
    assert_true(shm->failure_max_ms <= DEADLINE_MS + DEADLINE_SLACK_MS);

    /* a fresh reader agrees: every acknowledged batch survived the kill */
    sutra_db *db;
    struct sutra_snapshot snap;
    assert_int_equal(sutra_open(shm->dir, NULL, &db), 0);
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    assert_int_equal(check_snapshot(0, &snap), 0);
    sutra_close(db);
}

static int start(void **state)
{
    (void)state;
    memset(shm, 0, sizeof(*shm));
    char *dir = harness_tmpdir();
    snprintf(shm->dir, sizeof(shm->dir), "%s", dir);
    free(dir);
    coordinator = harness_coordinator_start(shm->dir, COORD_ARGS);
    return coordinator > 0 ? 0 : -1;
}

/* The restarted coordinator must still stop cleanly. */
static int stop(void **state)
{
    (void)state;
    atomic_store(&shm->stop, 1);
    int status = coordinator > 0
                     ? harness_coordinator_stop(coordinator, SIGTERM)
                     : -1;
    harness_rmdir(strdup(shm->dir));
    return status == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    shm = harness_shared_alloc(sizeof(*shm));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_outlive_readers_and_clients_survive_a_kill, start, stop),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
