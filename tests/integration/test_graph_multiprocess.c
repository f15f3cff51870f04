/*
 * tests/integration/test_graph_multiprocess.c — traversals in reader
 * processes while the real coordinator commits associations written by
 * another process.
 *
 * A writer process grows a chain c0 -> c1 -> ... in rounds (5 links per
 * round, one batch per round), with a hub pointing at every chain concept
 * and a short-lived "noise" edge per round that a later round forgets.  It
 * records in shared memory the generation that made each round visible.
 * Three reader processes take fresh snapshots, run neighbors, degree,
 * find_path and find_strongest_path on them, and then — once the writer has
 * recorded a generation past the snapshot — work out exactly how many
 * rounds the snapshot holds and check every answer against that: a reader
 * that saw half a batch, a forgotten edge still alive, or a path through
 * an edge newer than its snapshot fails.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "sutra/sutra.h"
#include "tests/integration/harness.h"

#define ROUNDS 300
#define LINKS 5                     /* chain links per round             */
#define CHAIN (ROUNDS * LINKS + 1)  /* c0 .. c(ROUNDS*LINKS)             */
#define READERS 3
#define T_CHAIN 1u
#define T_HUB 2u
#define T_NOISE 3u
#define CHAIN_CONF 0.9f

typedef struct shared_state {
    const char *dir;
    _Atomic uint64_t round_gen[ROUNDS + 1]; /* 0 = not yet acknowledged  */
    _Atomic int32_t rounds_done;            /* highest recorded round     */
    _Atomic uint32_t writer_done;
    _Atomic uint64_t checks[READERS];
    _Atomic uint64_t snapshots[READERS];
} shared_state;

static shared_state *shm;
static char *dir;
static pid_t coordinator;

static void chain_id(uint32_t i, sutra_id *out)
{
    harness_item_id(20, i, out);
}

static void hub_id(sutra_id *out)
{
    harness_item_id(21, 0, out);
}

/* ---- the writer ------------------------------------------------------ */

static int batch_concept(sutra_batch *b, const sutra_id *id)
{
    sutra_concept_input in;
    memset(&in, 0, sizeof(in));
    in.id = *id;
    in.strength = 1.0f;
    in.confidence = 0.5f;
    return sutra_batch_learn_concept(b, &in);
}

/* Round r >= 1: concepts c(5r-4)..c(5r), chain links into each, hub edges
 * to each, the noise edge c(5r) -> c(5r-3), and the forgetting of round
 * r-2's noise edge.  Round 0: c0 and the hub. */
static int writer_round(sutra_batch *b, uint32_t r)
{
    sutra_id hub, a, c;
    hub_id(&hub);
    int rc = 0;
    if (r == 0) {
        chain_id(0, &a);
        rc = batch_concept(b, &a);
        return rc ? rc : batch_concept(b, &hub);
    }
    for (uint32_t i = LINKS * r - (LINKS - 1); i <= LINKS * r && rc == 0; i++) {
        chain_id(i - 1, &a);
        chain_id(i, &c);
        rc = batch_concept(b, &c);
        if (rc == 0)
            rc = sutra_batch_learn_association(b, &a, &c, T_CHAIN, CHAIN_CONF);
        if (rc == 0)
            rc = sutra_batch_learn_association(b, &hub, &c, T_HUB, 0.5f);
    }
    chain_id(LINKS * r, &a);
    chain_id(LINKS * r - 3, &c);
    if (rc == 0)
        rc = sutra_batch_learn_association(b, &a, &c, T_NOISE, 0.7f);
    if (rc == 0 && r >= 3) {
        chain_id(LINKS * (r - 2), &a);
        chain_id(LINKS * (r - 2) - 3, &c);
        rc = sutra_batch_forget_association(b, &a, &c, T_NOISE);
    }
    return rc;
}

static int writer_main(void *arg)
{
    (void)arg;
    sutra_client *client;
    if (sutra_client_connect(shm->dir, NULL, &client) != 0)
        return 10;
    sutra_batch *b;
    if (sutra_batch_new(&b) != 0)
        return 11;
    for (uint32_t r = 0; r <= ROUNDS; r++) {
        sutra_batch_clear(b);
        sutra_write_result res;
        int rc = writer_round(b, r);
        if (rc == 0)
            rc = sutra_batch_commit(client, b, &res);
        if (rc != 0) {
            fprintf(stderr, "graph writer: round %u: %s (%s)\n", r,
                    sutra_strerror(rc), sutra_client_last_error(client));
            return 12;
        }
        atomic_store(&shm->round_gen[r], res.generation);
        atomic_store(&shm->rounds_done, (int32_t)r);
        usleep(2000); /* let the readers see many generations */
    }
    atomic_store(&shm->writer_done, 1);
    sutra_batch_free(b);
    sutra_client_close(client);
    return 0;
}

/* ---- the readers ------------------------------------------------------ */

/* What one reader asked about one snapshot, kept until the truth is known. */
typedef struct probe {
    uint32_t p;                /* chain index probed                         */
    int path_rc;               /* c0 -> cp, OUT, any type, deep enough       */
    size_t path_len;
    sutra_id path[CHAIN];
    bool path_exact;           /* the ids were c0..cp in order               */
    int short_rc;              /* c0 -> cp, OUT, max_depth p - 1             */
    int back_rc;               /* cp -> c0, BOTH, chain type                 */
    size_t back_len;
    int both_rc;               /* c0 -> cp, BOTH, any type (through the hub) */
    size_t both_len;
    int strong_rc;
    double strength;
    size_t strong_len;
    int degree_rc;
    uint64_t hub_degree;       /* hub OUT, hub type                          */
    uint32_t noise_round;
    int noise_rc;
    size_t noise_count;        /* c(5q) OUT noise edges                      */
    int next_rc;
    size_t next_count;         /* cp OUT chain edges                         */
    bool next_is_successor;
} probe;

static void probe_run(sutra_traversal *t, const struct sutra_snapshot *s,
                      uint32_t p, uint32_t noise_round, probe *pr)
{
    sutra_id c0, cp, hub, noise;
    chain_id(0, &c0);
    chain_id(p, &cp);
    hub_id(&hub);
    chain_id(LINKS * noise_round, &noise);
    memset(pr, 0, offsetof(probe, path));
    pr->p = p;
    pr->noise_round = noise_round;
    pr->path_rc = sutra_find_path(t, s, &c0, &cp, CHAIN, SUTRA_OUT, SUTRA_ANY_TYPE,
                                  pr->path, CHAIN, &pr->path_len);
    pr->path_exact = pr->path_rc == 0 && pr->path_len == (size_t)p + 1;
    for (uint32_t i = 0; pr->path_exact && i <= p; i++) {
        sutra_id ci;
        chain_id(i, &ci);
        pr->path_exact = memcmp(&ci, &pr->path[i], sizeof(ci)) == 0;
    }
    sutra_id scratch[8];
    size_t len;
    pr->short_rc = p == 0 ? SUTRA_ENOPATH
                          : sutra_find_path(t, s, &c0, &cp, p - 1, SUTRA_OUT,
                                            SUTRA_ANY_TYPE, pr->path, CHAIN, &len);
    pr->back_rc = sutra_find_path(t, s, &cp, &c0, CHAIN, SUTRA_BOTH, T_CHAIN,
                                  pr->path, CHAIN, &pr->back_len);
    pr->both_rc = sutra_find_path(t, s, &c0, &cp, CHAIN, SUTRA_BOTH,
                                  SUTRA_ANY_TYPE, scratch, 8, &pr->both_len);
    pr->strong_rc = sutra_find_strongest_path(t, s, &c0, &cp, p, SUTRA_OUT, T_CHAIN,
                                              pr->path, CHAIN, &pr->strong_len,
                                              &pr->strength);
    pr->degree_rc = sutra_degree(s, &hub, SUTRA_OUT, T_HUB, &pr->hub_degree);
    sutra_neighbor nb[4];
    pr->noise_rc = sutra_neighbors(s, &noise, SUTRA_OUT, T_NOISE, nb, 4,
                                   &pr->noise_count);
    pr->next_rc = sutra_neighbors(s, &cp, SUTRA_OUT, T_CHAIN, nb, 4,
                                  &pr->next_count);
    sutra_id succ;
    chain_id(p + 1, &succ);
    pr->next_is_successor = pr->next_rc == 0 && pr->next_count == 1 &&
                            memcmp(&nb[0].id, &succ, sizeof(succ)) == 0 &&
                            nb[0].confidence == CHAIN_CONF;
}

/* Every answer against the snapshot's true round count k (k >= 0). */
static int probe_check(const probe *pr, int32_t k, uint32_t reader)
{
    uint32_t n = LINKS * (uint32_t)k, p = pr->p;
    int bad = 0;
#define EXPECT(cond)                                                         \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "reader %u: rounds %d, probe %u: %s\n", reader, \
                    k, p, #cond);                                            \
            bad = 1;                                                         \
        }                                                                    \
    } while (0)
    EXPECT(pr->degree_rc == 0 && pr->hub_degree == n);
    if (p > n) {
        EXPECT(pr->path_rc == SUTRA_ENOTFOUND);
        EXPECT(pr->back_rc == SUTRA_ENOTFOUND);
        EXPECT(pr->strong_rc == SUTRA_ENOTFOUND);
        EXPECT(pr->next_rc == SUTRA_ENOTFOUND);
    } else {
        EXPECT(pr->path_exact);
        EXPECT(pr->short_rc == SUTRA_ENOPATH);
        EXPECT(pr->back_rc == 0 && pr->back_len == (size_t)p + 1);
        size_t via_hub = p < 3 ? p + 1 : 4;
        EXPECT(pr->both_rc == 0 && pr->both_len == via_hub);
        double expect = pow((double)CHAIN_CONF, (double)p);
        EXPECT(pr->strong_rc == 0 && pr->strong_len == (size_t)p + 1 &&
               fabs(pr->strength - expect) <= 1e-9 * expect);
        if (p < n)
            EXPECT(pr->next_is_successor);
        else
            EXPECT(pr->next_rc == 0 && pr->next_count == 0);
    }
    uint32_t q = pr->noise_round;
    if ((int32_t)q <= k) /* learned at round q, forgotten at round q + 2 */
        EXPECT(pr->noise_rc == 0 &&
               pr->noise_count == ((int32_t)q + 2 > k ? 1u : 0u));
    else
        EXPECT(pr->noise_rc == SUTRA_ENOTFOUND);
#undef EXPECT
    return bad;
}

/* Rounds visible at `generation`: wait until the writer has recorded a
 * round past it (or finished), then count the recorded rounds at or below. */
static int32_t rounds_at(uint64_t generation)
{
    for (;;) {
        int32_t done = atomic_load(&shm->rounds_done);
        bool finished = atomic_load(&shm->writer_done) != 0;
        if (finished || atomic_load(&shm->round_gen[done]) > generation) {
            int32_t k = -1;
            for (int32_t r = 0; r <= done; r++)
                if (atomic_load(&shm->round_gen[r]) <= generation)
                    k = r;
            return k;
        }
        usleep(200);
    }
}

static int reader_main(void *arg)
{
    uint32_t reader = (uint32_t)(uintptr_t)arg;
    sutra_db *db;
    if (sutra_open(shm->dir, NULL, &db) != 0)
        return 20;
    sutra_traversal *t;
    if (sutra_traversal_new(&t) != 0)
        return 21;
    probe *pr = malloc(sizeof(*pr));
    uint64_t seed = 0x9e3779b97f4a7c15ull * (reader + 1), checks = 0, snaps = 0;
    while (atomic_load(&shm->round_gen[0]) == 0)
        usleep(500);
    bool last = false;
    while (!last) {
        last = atomic_load(&shm->writer_done) != 0; /* one pass after it */
        struct sutra_snapshot s;
        if (sutra_snapshot(db, &s) != 0)
            return 22;
        snaps++;
        int32_t upper = atomic_load(&shm->rounds_done) + 2;
        if (upper > ROUNDS)
            upper = ROUNDS;
        for (int k = 0; k < 4; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t p = (uint32_t)(seed >> 33) % (LINKS * (uint32_t)upper + 1);
            uint32_t q = 1 + (uint32_t)(seed >> 17) % (uint32_t)upper;
            probe_run(t, &s, p, q, pr);
            int32_t rounds = rounds_at(s.generation);
            if (rounds < 0 || probe_check(pr, rounds, reader) != 0)
                return 23;
            checks++;
        }
    }
    atomic_store(&shm->checks[reader], checks);
    atomic_store(&shm->snapshots[reader], snaps);
    free(pr);
    sutra_traversal_free(t);
    sutra_close(db);
    return 0;
}

static void test_graph_traversals_consistent_with_snapshots(void **state)
{
    (void)state;
    pid_t pids[READERS + 1];
    for (uint32_t r = 0; r < READERS; r++)
        pids[r] = harness_spawn(reader_main, (void *)(uintptr_t)r);
    pids[READERS] = harness_spawn(writer_main, NULL);
    for (int k = 0; k <= READERS; k++)
        assert_int_equal(harness_wait(pids[k]), 0);
    for (uint32_t r = 0; r < READERS; r++) {
        print_message("reader %u: %llu snapshots, %llu probes checked\n", r,
                      (unsigned long long)atomic_load(&shm->snapshots[r]),
                      (unsigned long long)atomic_load(&shm->checks[r]));
        assert_true(atomic_load(&shm->snapshots[r]) > 20); /* overlapped */
    }
    /* The final state, from this process: every link and hub edge. */
    sutra_db *db;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    struct sutra_snapshot s;
    assert_int_equal(sutra_snapshot(db, &s), 0);
    sutra_traversal *t;
    assert_int_equal(sutra_traversal_new(&t), 0);
    probe *pr = malloc(sizeof(*pr));
    for (uint32_t p = 0; p < CHAIN; p += 97) {
        probe_run(t, &s, p, 1 + p % ROUNDS, pr);
        assert_int_equal(probe_check(pr, ROUNDS, 99), 0);
    }
    free(pr);
    sutra_traversal_free(t);
    sutra_close(db);
}

static int setup(void **state)
{
    (void)state;
    shm = harness_shared_alloc(sizeof(*shm));
    dir = harness_tmpdir();
    shm->dir = dir;
    const char *args[] = {"--dim", "0", "--sync", "none", NULL};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_traversals_consistent_with_snapshots),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
