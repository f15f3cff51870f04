/*
 * tests/unit/test_graph.c — associations as readers see them: neighbors and
 * degree (reader/graph.c), shortest and strongest paths (reader/path.c),
 * over files written by the real storage engine (coordinator/store.c).
 *
 * Writes go through coord_store_apply()/coord_store_commit() with requests
 * encoded by layout/wire.h and decoded by wire_request_decode(), as the
 * coordinator does minus the socket.  The first tests pin single behaviours
 * (direction, filter, order, re-learning, forgetting, block growth, errors).
 * The property tests then drive random graphs from a fixed seed through the
 * store while a plain in-memory model (an adjacency matrix per generation)
 * records what every generation holds, and compare thousands of queries —
 * on the current snapshot and on older ones taken with sutra_snapshot_at()
 * — with a plain BFS and a plain bounded Bellman-Ford written here.
 */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/unit/file_copy.h"

#define MAP_RESERVE (1ull << 30) /* small enough for sanitizer builds */

/* ---- fixture: a temporary directory with a store --------------------- */

typedef struct fixture {
    char dir[64];
    char path[128];
    coord_store *store;
    uint64_t request_no;
} fixture;

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sutra-graph-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/storage.dat", f->dir);
    coord_store_options opts = {.vector_dim = 0, .map_reserve = MAP_RESERVE};
    coord_error err;
    int rc = coord_store_open(f->path, &opts, &f->store, &err);
    if (rc != 0)
        fprintf(stderr, "coord_store_open: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    coord_store_close(f->store, true);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- writing through the store --------------------------------------- */

typedef struct request {
    uint64_t words[8192]; /* 64 KiB, 8-aligned like an NNG body */
    size_t len;
    uint32_t ops;
} request;

/* Ops that still fit in a request (the largest op is 48 bytes). */
static bool request_has_room(const request *r)
{
    return r->len + sizeof(wire_association) <= sizeof(r->words);
}

static void request_init(request *r)
{
    r->len = sizeof(wire_request_header);
    r->ops = 0;
}

static uint8_t *request_tail(request *r)
{
    assert_true(request_has_room(r));
    return (uint8_t *)r->words + r->len;
}

static void request_concept(request *r, const sutra_id *id)
{
    r->len += wire_encode_learn_concept(request_tail(r), 0, id->bytes, 1.0f,
                                        0.5f, NULL, 0, NULL, 0);
    r->ops++;
}

static void request_forget_concept(request *r, const sutra_id *id)
{
    r->len += wire_encode_forget_concept(request_tail(r), id->bytes);
    r->ops++;
}

static void request_edge(request *r, const sutra_id *s, const sutra_id *t,
                         uint32_t type, float confidence)
{
    r->len += wire_encode_association(request_tail(r), WIRE_OP_LEARN_ASSOCIATION,
                                      s->bytes, t->bytes, type, confidence);
    r->ops++;
}

static void request_forget_edge(request *r, const sutra_id *s,
                                const sutra_id *t, uint32_t type)
{
    r->len += wire_encode_association(request_tail(r), WIRE_OP_FORGET_ASSOCIATION,
                                      s->bytes, t->bytes, type, 0.0f);
    r->ops++;
}

/* Apply and commit one request; returns the published generation. */
static uint64_t request_commit(fixture *f, request *r)
{
    wire_request_header h;
    wire_request_header_init(&h, 0, 7, ++f->request_no, r->ops);
    memcpy(r->words, &h, sizeof(h));
    wire_limits lim = {.max_message = sizeof(r->words), .max_content = 1 << 20,
                       .max_batch = 100000, .vector_dim = 0};
    wire_request req;
    uint32_t failed;
    const char *why = NULL;
    int rc = wire_request_decode(r->words, r->len, &lim, &req, &failed, &why);
    if (rc)
        fprintf(stderr, "decode: %s (op %u)\n", why, failed);
    assert_int_equal(rc, 0);
    coord_apply_result res;
    coord_error err;
    rc = coord_store_apply(f->store, &req, &res, &err);
    if (rc)
        fprintf(stderr, "apply: %s (op %u)\n", err.message, res.failed_op);
    assert_int_equal(rc, 0);
    coord_commit_info info;
    rc = coord_store_commit(f->store, false, &info, &err);
    if (rc)
        fprintf(stderr, "commit: %s\n", err.message);
    assert_int_equal(rc, 0);
    request_init(r);
    return info.generation;
}

static request *request_new(void)
{
    request *r = malloc(sizeof(*r));
    assert_non_null(r);
    request_init(r);
    return r;
}

static sutra_id id_of(const char *name)
{
    sutra_id id;
    sutra_id_from_name(name, strlen(name), &id);
    return id;
}

static sutra_id id_num(const char *prefix, uint32_t i)
{
    char name[64];
    snprintf(name, sizeof(name), "%s-%u", prefix, i);
    return id_of(name);
}

static uint64_t learn_concepts(fixture *f, const sutra_id *ids, size_t n)
{
    request *r = request_new();
    for (size_t i = 0; i < n; i++)
        request_concept(r, &ids[i]);
    uint64_t g = request_commit(f, r);
    free(r);
    return g;
}

static uint64_t learn_edge(fixture *f, const sutra_id *s, const sutra_id *t,
                           uint32_t type, float confidence)
{
    request *r = request_new();
    request_edge(r, s, t, type, confidence);
    uint64_t g = request_commit(f, r);
    free(r);
    return g;
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

static struct sutra_snapshot snapshot_now(sutra_db *db)
{
    struct sutra_snapshot s;
    assert_int_equal(sutra_snapshot(db, &s), 0);
    return s;
}

static bool id_eq(const sutra_id *a, const sutra_id *b)
{
    return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

/* All neighbors through the iterator (and cross-checked against
 * sutra_neighbors() and sutra_degree()); returns the count. */
static size_t neighbors_all(const struct sutra_snapshot *snap, const sutra_id *id,
                            enum sutra_direction dir, uint32_t filter,
                            sutra_neighbor *out, size_t cap)
{
    sutra_neighbor_iter it;
    assert_int_equal(sutra_neighbors_begin(snap, id, dir, filter, &it), 0);
    size_t n = 0;
    sutra_neighbor nb;
    int rc;
    while ((rc = sutra_neighbors_next(&it, &nb)) == 0) {
        assert_true(n < cap);
        out[n++] = nb;
    }
    assert_int_equal(rc, SUTRA_ENOTFOUND);
    assert_int_equal(sutra_neighbors_next(&it, &nb), SUTRA_ENOTFOUND);
    uint64_t degree = 0;
    assert_int_equal(sutra_degree(snap, id, dir, filter, &degree), 0);
    assert_int_equal(degree, n);
    return n;
}

/* ---- neighbors ---------------------------------------------------------- */

static void test_graph_neighbors_direction_filter_order(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b"), c = id_of("c"), d = id_of("d"),
             lone = id_of("lone");
    sutra_id ids[] = {a, b, c, d, lone};
    learn_concepts(f, ids, 5);
    learn_edge(f, &a, &b, 1, 0.5f);
    learn_edge(f, &a, &c, 2, 0.25f);
    learn_edge(f, &d, &a, 1, 0.75f);

    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s = snapshot_now(db);
    sutra_neighbor nb[8];

    size_t n = neighbors_all(&s, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 8);
    assert_int_equal(n, 2);
    assert_true(id_eq(&nb[0].id, &c)); /* newest first */
    assert_int_equal(nb[0].type, 2);
    assert_true(nb[0].confidence == 0.25f);
    assert_int_equal(nb[0].direction, SUTRA_OUT);
    assert_true(id_eq(&nb[1].id, &b));
    assert_true(nb[1].confidence == 0.5f);
    assert_true(nb[0].seq > nb[1].seq);

    n = neighbors_all(&s, &a, SUTRA_IN, SUTRA_ANY_TYPE, nb, 8);
    assert_int_equal(n, 1);
    assert_true(id_eq(&nb[0].id, &d));
    assert_int_equal(nb[0].direction, SUTRA_IN);
    assert_true(nb[0].confidence == 0.75f);

    n = neighbors_all(&s, &a, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 8);
    assert_int_equal(n, 3); /* out (newest first), then in */
    assert_true(id_eq(&nb[0].id, &c) && id_eq(&nb[1].id, &b) &&
                id_eq(&nb[2].id, &d));
    assert_int_equal(nb[2].direction, SUTRA_IN);

    n = neighbors_all(&s, &a, SUTRA_OUT, 1, nb, 8);
    assert_int_equal(n, 1);
    assert_true(id_eq(&nb[0].id, &b));
    n = neighbors_all(&s, &a, SUTRA_BOTH, 1, nb, 8);
    assert_int_equal(n, 2);
    assert_true(id_eq(&nb[0].id, &b) && id_eq(&nb[1].id, &d));
    assert_int_equal(neighbors_all(&s, &a, SUTRA_BOTH, 9, nb, 8), 0);
    assert_int_equal(neighbors_all(&s, &b, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 8), 0);
    assert_int_equal(neighbors_all(&s, &b, SUTRA_IN, SUTRA_ANY_TYPE, nb, 8), 1);
    assert_true(id_eq(&nb[0].id, &a));
    assert_int_equal(neighbors_all(&s, &lone, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 8), 0);

    /* Errors: unknown id, bad direction, bad arguments. */
    sutra_id none = id_of("never learned");
    sutra_neighbor_iter it;
    assert_int_equal(sutra_neighbors_begin(&s, &none, SUTRA_OUT, SUTRA_ANY_TYPE, &it),
                     SUTRA_ENOTFOUND);
    assert_int_equal(sutra_neighbors_begin(&s, &a, (enum sutra_direction)0,
                                           SUTRA_ANY_TYPE, &it),
                     SUTRA_EINVAL);
    assert_int_equal(sutra_neighbors_begin(&s, &a, (enum sutra_direction)4,
                                           SUTRA_ANY_TYPE, &it),
                     SUTRA_EINVAL);
    assert_int_equal(sutra_neighbors_begin(&s, NULL, SUTRA_OUT, SUTRA_ANY_TYPE, &it),
                     SUTRA_EINVAL);
    uint64_t degree = 99;
    assert_int_equal(sutra_degree(&s, &none, SUTRA_OUT, SUTRA_ANY_TYPE, &degree),
                     SUTRA_ENOTFOUND);
    assert_int_equal(degree, 99); /* untouched on failure */
    memset(&it, 0, sizeof(it));
    assert_int_equal(sutra_neighbors_next(&it, &nb[0]), SUTRA_EINVAL);

    /* sutra_neighbors with a small buffer: the newest ones, and the total. */
    size_t total = 0;
    assert_int_equal(sutra_neighbors(&s, &a, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 1,
                                     &total), 0);
    assert_int_equal(total, 3);
    assert_true(id_eq(&nb[0].id, &c));
    assert_int_equal(sutra_neighbors(&s, &a, SUTRA_BOTH, SUTRA_ANY_TYPE, NULL, 0,
                                     &total), 0);
    assert_int_equal(total, 3);
    sutra_close(db);
}

static void test_graph_neighbors_relearn_and_snapshots(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b");
    sutra_id ids[] = {a, b};
    learn_concepts(f, ids, 2);
    uint64_t g1 = learn_edge(f, &a, &b, 3, 0.5f);
    uint64_t g2 = learn_edge(f, &a, &b, 3, 0.875f);

    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot now = snapshot_now(db), old;
    assert_int_equal(now.generation, g2);
    assert_int_equal(sutra_snapshot_at(db, g1, &old), 0);
    sutra_neighbor nb[4];
    assert_int_equal(neighbors_all(&now, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 4), 1);
    assert_true(nb[0].confidence == 0.875f);
    uint64_t new_seq = nb[0].seq;
    assert_int_equal(neighbors_all(&now, &b, SUTRA_IN, 3, nb, 4), 1);
    assert_true(nb[0].confidence == 0.875f);
    assert_int_equal(neighbors_all(&old, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 4), 1);
    assert_true(nb[0].confidence == 0.5f);
    assert_true(nb[0].seq < new_seq);
    assert_int_equal(neighbors_all(&old, &b, SUTRA_IN, SUTRA_ANY_TYPE, nb, 4), 1);
    assert_true(nb[0].confidence == 0.5f);

    /* A second type between the same pair is a different edge. */
    uint64_t g3 = learn_edge(f, &a, &b, 4, 0.125f);
    struct sutra_snapshot s3 = snapshot_now(db);
    assert_int_equal(s3.generation, g3);
    assert_int_equal(neighbors_all(&s3, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 4), 2);
    assert_int_equal(nb[0].type, 4);
    assert_int_equal(nb[1].type, 3);
    /* The earlier snapshots still read as before. */
    assert_int_equal(neighbors_all(&now, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 4), 1);
    sutra_close(db);
}

static void test_graph_neighbors_forget(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b"), c = id_of("c"), d = id_of("d");
    sutra_id ids[] = {a, b, c, d};
    learn_concepts(f, ids, 4);
    request *r = request_new();
    request_edge(r, &a, &b, 1, 0.5f);
    request_edge(r, &a, &c, 1, 0.5f);
    request_edge(r, &c, &d, 1, 0.5f);
    request_edge(r, &d, &c, 2, 0.5f);
    uint64_t g_edges = request_commit(f, r);
    request_forget_edge(r, &a, &b, 1);
    uint64_t g_forget_edge = request_commit(f, r);
    request_forget_concept(r, &c);
    uint64_t g_forget_c = request_commit(f, r);
    /* Learning c again brings the concept back, not its old edges. */
    request_concept(r, &c);
    uint64_t g_relearn = request_commit(f, r);
    free(r);

    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s_edges, s_fe, s_fc, s_rl;
    assert_int_equal(sutra_snapshot_at(db, g_edges, &s_edges), 0);
    assert_int_equal(sutra_snapshot_at(db, g_forget_edge, &s_fe), 0);
    assert_int_equal(sutra_snapshot_at(db, g_forget_c, &s_fc), 0);
    assert_int_equal(sutra_snapshot_at(db, g_relearn, &s_rl), 0);
    sutra_neighbor nb[8];

    assert_int_equal(neighbors_all(&s_edges, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 8), 2);
    assert_int_equal(neighbors_all(&s_fe, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 8), 1);
    assert_true(id_eq(&nb[0].id, &c));
    assert_int_equal(neighbors_all(&s_fe, &b, SUTRA_IN, SUTRA_ANY_TYPE, nb, 8), 0);
    assert_int_equal(neighbors_all(&s_edges, &b, SUTRA_IN, SUTRA_ANY_TYPE, nb, 8), 1);

    /* c forgotten: every edge touching it disappears from later snapshots. */
    assert_int_equal(neighbors_all(&s_fe, &d, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 8), 2);
    assert_int_equal(neighbors_all(&s_fc, &a, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 8), 0);
    assert_int_equal(neighbors_all(&s_fc, &d, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 8), 0);
    sutra_neighbor_iter it;
    assert_int_equal(sutra_neighbors_begin(&s_fc, &c, SUTRA_BOTH, SUTRA_ANY_TYPE, &it),
                     SUTRA_ENOTFOUND);
    assert_int_equal(neighbors_all(&s_rl, &c, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 8), 0);
    assert_int_equal(neighbors_all(&s_rl, &d, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 8), 0);
    /* ... and the older snapshot still has them. */
    assert_int_equal(neighbors_all(&s_fe, &c, SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 8), 3);
    sutra_close(db);
}

static void test_graph_neighbors_many_blocks(void **state)
{
    fixture *f = *state;
    enum { LEAVES = 10000 };
    sutra_id hub = id_of("hub");
    sutra_id *leaves = malloc(LEAVES * sizeof(*leaves));
    request *r = request_new();
    request_concept(r, &hub);
    for (uint32_t i = 0; i < LEAVES; i++) {
        leaves[i] = id_num("leaf", i);
        if (!request_has_room(r))
            request_commit(f, r);
        request_concept(r, &leaves[i]);
    }
    request_commit(f, r);
    /* Edges in many commits, so blocks fill partly and chain. */
    for (uint32_t i = 0; i < LEAVES; i++) {
        if (r->ops > 0 && (!request_has_room(r) || i % 997 == 0))
            request_commit(f, r);
        request_edge(r, &hub, &leaves[i], i % 3, (float)(i % 100) / 100.0f);
    }
    request_commit(f, r);
    free(r);

    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s = snapshot_now(db);
    sutra_neighbor *nb = malloc(LEAVES * sizeof(*nb));
    size_t n = neighbors_all(&s, &hub, SUTRA_OUT, SUTRA_ANY_TYPE, nb, LEAVES);
    assert_int_equal(n, LEAVES);
    /* Newest first: leaf LEAVES-1 first, and each leaf exactly once. */
    for (size_t k = 0; k < n; k++) {
        uint32_t i = (uint32_t)(LEAVES - 1 - k);
        assert_true(id_eq(&nb[k].id, &leaves[i]));
        assert_int_equal(nb[k].type, i % 3);
        assert_true(nb[k].confidence == (float)(i % 100) / 100.0f);
        if (k > 0)
            assert_true(nb[k].seq < nb[k - 1].seq);
    }
    uint64_t degree = 0;
    assert_int_equal(sutra_degree(&s, &hub, SUTRA_OUT, 1, &degree), 0);
    assert_int_equal(degree, LEAVES / 3); /* 3334 of type 0, 3333 of 1 and 2 */
    assert_int_equal(sutra_degree(&s, &hub, SUTRA_IN, SUTRA_ANY_TYPE, &degree), 0);
    assert_int_equal(degree, 0);
    assert_int_equal(neighbors_all(&s, &leaves[1234], SUTRA_BOTH, SUTRA_ANY_TYPE, nb, 4), 1);
    assert_true(id_eq(&nb[0].id, &hub));

    size_t total = 0;
    assert_int_equal(sutra_neighbors(&s, &hub, SUTRA_OUT, SUTRA_ANY_TYPE, nb, 10,
                                     &total), 0);
    assert_int_equal(total, LEAVES);
    assert_true(id_eq(&nb[0].id, &leaves[LEAVES - 1]));
    assert_true(id_eq(&nb[9].id, &leaves[LEAVES - 10]));
    free(nb);
    free(leaves);
    sutra_close(db);
}

/* ---- paths: fixed cases --------------------------------------------------- */

static void test_graph_path_basics(void **state)
{
    fixture *f = *state;
    /* A chain 0 -> 1 -> 2 -> 3 -> 4 of type 1, a shortcut 0 -> 3 of type 2,
     * and an island 5. */
    sutra_id n[6];
    for (uint32_t i = 0; i < 6; i++)
        n[i] = id_num("p", i);
    learn_concepts(f, n, 6);
    request *r = request_new();
    for (uint32_t i = 0; i < 4; i++)
        request_edge(r, &n[i], &n[i + 1], 1, 0.5f);
    request_edge(r, &n[0], &n[3], 2, 0.01f);
    request_commit(f, r);
    free(r);

    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s = snapshot_now(db);
    sutra_traversal *t = NULL;
    assert_int_equal(sutra_traversal_new(&t), 0);
    sutra_id path[8];
    size_t len = 0;
    double strength = 0;

    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[4], 10, SUTRA_OUT,
                                     SUTRA_ANY_TYPE, path, 8, &len), 0);
    assert_int_equal(len, 3); /* 0 -> 3 -> 4 */
    assert_true(id_eq(&path[0], &n[0]) && id_eq(&path[1], &n[3]) &&
                id_eq(&path[2], &n[4]));
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[4], 10, SUTRA_OUT, 1, path,
                                     8, &len), 0);
    assert_int_equal(len, 5);
    for (uint32_t i = 0; i < 5; i++)
        assert_true(id_eq(&path[i], &n[i]));
    /* Depth limits: exactly the path's length works, one less does not. */
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[4], 4, SUTRA_OUT, 1, path,
                                     8, &len), 0);
    len = 77;
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[4], 3, SUTRA_OUT, 1, path,
                                     8, &len), SUTRA_ENOPATH);
    assert_int_equal(len, 77);
    /* Direction: OUT has no way back; IN follows edges backwards; BOTH
     * ignores them. */
    assert_int_equal(sutra_find_path(t, &s, &n[4], &n[0], 10, SUTRA_OUT,
                                     SUTRA_ANY_TYPE, path, 8, &len), SUTRA_ENOPATH);
    assert_int_equal(sutra_find_path(t, &s, &n[4], &n[0], 10, SUTRA_IN,
                                     SUTRA_ANY_TYPE, path, 8, &len), 0);
    assert_int_equal(len, 3);
    assert_true(id_eq(&path[0], &n[4]) && id_eq(&path[1], &n[3]) &&
                id_eq(&path[2], &n[0]));
    assert_int_equal(sutra_find_path(t, &s, &n[4], &n[1], 10, SUTRA_BOTH, 1, path,
                                     8, &len), 0);
    assert_int_equal(len, 4);
    /* Endpoints: to itself, missing, unreachable island. */
    assert_int_equal(sutra_find_path(t, &s, &n[2], &n[2], 0, SUTRA_OUT,
                                     SUTRA_ANY_TYPE, path, 8, &len), 0);
    assert_int_equal(len, 1);
    assert_true(id_eq(&path[0], &n[2]));
    sutra_id none = id_of("none");
    assert_int_equal(sutra_find_path(t, &s, &n[0], &none, 10, SUTRA_OUT,
                                     SUTRA_ANY_TYPE, path, 8, &len), SUTRA_ENOTFOUND);
    assert_int_equal(sutra_find_path(t, &s, &none, &n[0], 10, SUTRA_OUT,
                                     SUTRA_ANY_TYPE, path, 8, &len), SUTRA_ENOTFOUND);
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[5], 10, SUTRA_BOTH,
                                     SUTRA_ANY_TYPE, path, 8, &len), SUTRA_ENOPATH);
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[1], 0, SUTRA_OUT,
                                     SUTRA_ANY_TYPE, path, 8, &len), SUTRA_ENOPATH);
    /* A buffer too small reports the length it needs. */
    len = 0;
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[4], 10, SUTRA_OUT, 1, path,
                                     4, &len), SUTRA_ETOOBIG);
    assert_int_equal(len, 5);
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[0], 10, SUTRA_OUT, 1, NULL,
                                     0, &len), SUTRA_ETOOBIG);
    assert_int_equal(len, 1);
    assert_int_equal(sutra_find_path(t, &s, &n[0], &n[4], 10, (enum sutra_direction)7,
                                     1, path, 8, &len), SUTRA_EINVAL);

    /* Strongest: the chain (0.5^4 = 0.0625) beats the shortcut
     * (0.01 * 0.5); with 2 hops only the shortcut fits. */
    assert_int_equal(sutra_find_strongest_path(t, &s, &n[0], &n[4], 10, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 8, &len,
                                               &strength), 0);
    assert_int_equal(len, 5);
    assert_true(fabs(strength - 0.0625) < 1e-12);
    assert_int_equal(sutra_find_strongest_path(t, &s, &n[0], &n[4], 2, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 8, &len,
                                               &strength), 0);
    assert_int_equal(len, 3);
    assert_true(fabs(strength - (double)0.01f * 0.5) < 1e-12);
    assert_int_equal(sutra_find_strongest_path(t, &s, &n[0], &n[4], 1, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 8, &len,
                                               &strength), SUTRA_ENOPATH);
    assert_int_equal(sutra_find_strongest_path(t, &s, &n[3], &n[3], 0, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 8, &len,
                                               &strength), 0);
    assert_int_equal(len, 1);
    assert_true(strength == 1.0);
    assert_int_equal(sutra_find_strongest_path(t, &s, &n[0], &n[4], 10, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 2, &len,
                                               &strength), SUTRA_ETOOBIG);
    assert_int_equal(len, 5);
    sutra_traversal_free(t);
    sutra_traversal_free(NULL);
    sutra_close(db);
}

static void test_graph_strongest_zero_confidence(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b"), c = id_of("c");
    sutra_id ids[] = {a, b, c};
    learn_concepts(f, ids, 3);
    request *r = request_new();
    request_edge(r, &a, &b, 1, 0.0f);
    request_edge(r, &b, &c, 1, 1.0f);
    request_commit(f, r);
    free(r);
    sutra_db *db = open_dir(f->dir);
    struct sutra_snapshot s = snapshot_now(db);
    sutra_traversal *t = NULL;
    assert_int_equal(sutra_traversal_new(&t), 0);
    sutra_id path[4];
    size_t len;
    double strength;
    /* A confidence-0 edge is an edge for BFS, not for the strongest path. */
    assert_int_equal(sutra_find_path(t, &s, &a, &c, 5, SUTRA_OUT, SUTRA_ANY_TYPE,
                                     path, 4, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(sutra_find_strongest_path(t, &s, &a, &c, 5, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 4, &len,
                                               &strength), SUTRA_ENOPATH);
    assert_int_equal(sutra_find_strongest_path(t, &s, &b, &c, 5, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 4, &len,
                                               &strength), 0);
    assert_true(strength == 1.0);
    sutra_traversal_free(t);
    sutra_close(db);
}

/* ---- damaged files ---------------------------------------------------- */

/* Damage tests work on a copy of the fixture's file in a new directory,
 * written with pwrite, so the store keeps its own file intact. */
static void copy_file(const char *from, char *dir, size_t cap)
{
    fc_copy_file(from, "/tmp/sutra-graph-XXXXXX", dir, cap);
}

static void file_io(const char *dir, uint64_t off, void *bytes, size_t len,
                    bool write_it)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    int fd = open(path, write_it ? O_WRONLY : O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = write_it ? pwrite(fd, bytes, len, (off_t)off)
                         : pread(fd, bytes, len, (off_t)off);
    assert_int_equal(n, (ssize_t)len);
    close(fd);
}

static void damage(const char *dir, uint64_t off, const void *bytes, size_t len)
{
    file_io(dir, off, (void *)(uintptr_t)bytes, len, true);
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Offset of node `node`'s table entry (a node of chunk 0). */
static uint64_t node_entry_offset(const char *dir, uint32_t node)
{
    layout_header h;
    file_io(dir, 0, &h, sizeof(h), false);
    assert_true(node < LAYOUT_NODE_CHUNK0 && h.node_chunk[0] != 0);
    return h.node_chunk[0] + LAYOUT_REGION_BODY + (uint64_t)node * sizeof(layout_node);
}

/* A path search prefetches the head blocks of nodes a few places ahead in
 * its queue, a hint that must stay inside the snapshot.  A damaged out_adj
 * word near the top of the address range must not wrap that bounds check
 * (a pointer overflow, which UBSan reports); the search reports the damage
 * when it reaches the word. */
static void test_graph_path_wild_list_word(void **state)
{
    fixture *f = *state;
    enum { FAN = 8 };
    /* node 0 hub -> nodes 2..9; nodes 10..17 -> node 1 sink */
    sutra_id ids[2 + 2 * FAN];
    ids[0] = id_of("hub");
    ids[1] = id_of("sink");
    for (uint32_t i = 0; i < FAN; i++) {
        ids[2 + i] = id_num("out", i);
        ids[2 + FAN + i] = id_num("in", i);
    }
    learn_concepts(f, ids, 2 + 2 * FAN);
    request *r = request_new();
    for (uint32_t i = 0; i < FAN; i++) {
        request_edge(r, &ids[0], &ids[2 + i], 1, 0.5f);
        request_edge(r, &ids[2 + FAN + i], &ids[1], 1, 0.5f);
    }
    request_commit(f, r);
    free(r);

    char dir[64];
    copy_file(f->path, dir, sizeof(dir));
    const uint64_t wild = UINT64_MAX - 127; /* 64-aligned; + 128 wraps to 0 */
    for (uint32_t i = 0; i < FAN; i++)
        damage(dir, node_entry_offset(dir, 2 + i) + offsetof(layout_node, out_adj),
               &wild, sizeof(wild));
    sutra_db *db = open_dir(dir);
    struct sutra_snapshot s = snapshot_now(db);
    sutra_traversal *t = NULL;
    assert_int_equal(sutra_traversal_new(&t), 0);
    sutra_id path[8];
    size_t len = 77;
    /* Levels: hub's 8 targets, then sink's 8 sources, then the targets'
     * out-lists, whose words the prefetch reads four queue slots ahead. */
    assert_int_equal(sutra_find_path(t, &s, &ids[0], &ids[1], 4, SUTRA_OUT,
                                     SUTRA_ANY_TYPE, path, 8, &len),
                     SUTRA_ECORRUPT);
    assert_int_equal(len, 77);
    sutra_traversal_free(t);
    sutra_close(db);
    remove_dir(dir);
}

/* The traversal state is sized by the snapshot's node_count, a word of
 * the file.  Roots whose node_count the node table does not back (no
 * chunk holds its last node, F-NODE-2) are damage: a search must say so
 * instead of allocating and zeroing state for them: for a count near
 * 2^32, 96 GiB for a shortest path and 192 GiB for a strongest one,
 * however small the file. */
static void test_graph_path_node_count_past_node_table(void **state)
{
    fixture *f = *state;
    sutra_id a = id_of("a"), b = id_of("b");
    sutra_id ids[] = {a, b};
    learn_concepts(f, ids, 2);
    uint64_t g = learn_edge(f, &a, &b, 1, 0.5f);

    char dir[64];
    copy_file(f->path, dir, sizeof(dir));
    uint64_t slot = g % 2 ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0;
    layout_meta m;
    file_io(dir, slot, &m, sizeof(m), false);
    assert_int_equal(m.roots.node_count, 2);
    m.roots.node_count = 1u << 20; /* chunk 10: never allocated */
    layout_meta_seal(&m);
    damage(dir, slot, &m, sizeof(m));

    sutra_db *db = open_dir(dir);
    struct sutra_snapshot s = snapshot_now(db);
    sutra_traversal *t = NULL;
    assert_int_equal(sutra_traversal_new(&t), 0);
    sutra_id path[4];
    size_t len = 77;
    double strength = -1;
    assert_int_equal(sutra_find_path(t, &s, &a, &b, 4, SUTRA_OUT, SUTRA_ANY_TYPE,
                                     path, 4, &len),
                     SUTRA_ECORRUPT);
    assert_int_equal(sutra_find_strongest_path(t, &s, &a, &b, 4, SUTRA_OUT,
                                               SUTRA_ANY_TYPE, path, 4, &len,
                                               &strength),
                     SUTRA_ECORRUPT);
    assert_int_equal(len, 77);
    assert_true(strength == -1);
    /* A path from a node to itself needs no state. */
    assert_int_equal(sutra_find_path(t, &s, &a, &a, 4, SUTRA_OUT, SUTRA_ANY_TYPE,
                                     path, 4, &len),
                     0);
    assert_int_equal(len, 1);
    sutra_traversal_free(t);
    sutra_close(db);
    remove_dir(dir);
}

/* ---- the reference model ---------------------------------------------- */

#define TYPES 3u
#define NO_EDGE (-1.0f)

/* One generation of a random graph as the model holds it. */
typedef struct model_state {
    uint64_t generation;
    bool *live;          /* [n]                                        */
    float *conf;         /* [(s * n + t) * TYPES + type], NO_EDGE      */
} model_state;

typedef struct model {
    uint32_t n;
    sutra_id *ids;
    model_state cur;
    model_state *history;
    size_t history_count;
} model;

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint32_t bound)
{
    return (uint32_t)(rng_next() % bound);
}

static float *model_edge(const model *m, const model_state *st, uint32_t s,
                         uint32_t t, uint32_t type)
{
    return &st->conf[((size_t)s * m->n + t) * TYPES + type];
}

static void model_init(model *m, uint32_t n, uint32_t max_history)
{
    m->n = n;
    m->ids = malloc(n * sizeof(*m->ids));
    for (uint32_t i = 0; i < n; i++)
        m->ids[i] = id_num("g", i);
    m->cur.live = calloc(n, sizeof(bool));
    m->cur.conf = malloc((size_t)n * n * TYPES * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n * TYPES; i++)
        m->cur.conf[i] = NO_EDGE;
    m->history = calloc(max_history, sizeof(*m->history));
    m->history_count = 0;
}

static void model_record(model *m, uint64_t generation)
{
    model_state *h = &m->history[m->history_count++];
    h->generation = generation;
    h->live = malloc(m->n * sizeof(bool));
    memcpy(h->live, m->cur.live, m->n * sizeof(bool));
    size_t bytes = (size_t)m->n * m->n * TYPES * sizeof(float);
    h->conf = malloc(bytes);
    memcpy(h->conf, m->cur.conf, bytes);
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->history_count; i++) {
        free(m->history[i].live);
        free(m->history[i].conf);
    }
    free(m->history);
    free(m->cur.live);
    free(m->cur.conf);
    free(m->ids);
}

static bool type_matches(uint32_t type, uint32_t filter)
{
    return filter == SUTRA_ANY_TYPE || type == filter;
}

/* The best confidence of a step u -> w under dir and filter, NO_EDGE if
 * there is no such edge.  OUT: an edge u->w; IN: w->u; BOTH: either. */
static float model_step(const model *m, const model_state *st, uint32_t u,
                        uint32_t w, enum sutra_direction dir, uint32_t filter)
{
    float best = NO_EDGE;
    for (uint32_t type = 0; type < TYPES; type++) {
        if (!type_matches(type, filter))
            continue;
        if (dir & SUTRA_OUT) {
            float c = *model_edge(m, st, u, w, type);
            if (c > best)
                best = c;
        }
        if (dir & SUTRA_IN) {
            float c = *model_edge(m, st, w, u, type);
            if (c > best)
                best = c;
        }
    }
    return best;
}

/* Plain BFS distance, or -1 when unreachable (no depth bound). */
static int model_distance(const model *m, const model_state *st, uint32_t src,
                          uint32_t dst, enum sutra_direction dir, uint32_t filter)
{
    int *dist = malloc(m->n * sizeof(int));
    uint32_t *queue = malloc(m->n * sizeof(uint32_t));
    for (uint32_t i = 0; i < m->n; i++)
        dist[i] = -1;
    size_t head = 0, tail = 0;
    dist[src] = 0;
    queue[tail++] = src;
    while (head < tail) {
        uint32_t u = queue[head++];
        for (uint32_t w = 0; w < m->n; w++)
            if (dist[w] < 0 && model_step(m, st, u, w, dir, filter) >= 0.0f) {
                dist[w] = dist[u] + 1;
                queue[tail++] = w;
            }
    }
    int d = dist[dst];
    free(dist);
    free(queue);
    return d;
}

/* Plain bounded Bellman-Ford over products: best[k][v] is the largest
 * product of a walk of at most k edges (confidence-0 edges excluded).
 * Returns the product for dst within max_depth, or -1. */
static double model_strongest(const model *m, const model_state *st,
                              uint32_t src, uint32_t dst, uint32_t max_depth,
                              enum sutra_direction dir, uint32_t filter)
{
    uint32_t rounds = max_depth < m->n ? max_depth : m->n;
    double *best = malloc(m->n * sizeof(double));
    double *next = malloc(m->n * sizeof(double));
    for (uint32_t i = 0; i < m->n; i++)
        best[i] = -1.0;
    best[src] = 1.0;
    bool changed = true;
    for (uint32_t k = 0; k < rounds && changed; k++) {
        changed = false;
        memcpy(next, best, m->n * sizeof(double));
        for (uint32_t u = 0; u < m->n; u++) {
            if (best[u] < 0)
                continue;
            for (uint32_t w = 0; w < m->n; w++) {
                float c = model_step(m, st, u, w, dir, filter);
                if (c > 0.0f && best[u] * (double)c > next[w]) {
                    next[w] = best[u] * (double)c;
                    changed = true;
                }
            }
        }
        memcpy(best, next, m->n * sizeof(double));
    }
    double r = best[dst];
    free(best);
    free(next);
    return r;
}

static uint32_t model_index(const model *m, const sutra_id *id)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (id_eq(&m->ids[i], id))
            return i;
    fail_msg("a path holds an id the model does not know");
    return 0;
}

/* ---- the random writer -------------------------------------------------- */

static float random_confidence(void)
{
    uint32_t k = rng_below(11);
    if (k == 0 || k == 10)
        return (float)k / 10.0f;
    return (float)k / 10.0f + (float)rng_below(1000) / 1e5f;
}

/* One random batch: new or re-learned concepts first, then learned edges,
 * forgotten edges and forgotten concepts, each touching only what the
 * batch has not touched yet (so every op is valid when applied). */
static uint64_t model_random_batch(fixture *f, model *m, request *r,
                                   uint32_t concepts_per_batch,
                                   uint32_t edges_per_batch)
{
    bool *touched = calloc(m->n, sizeof(bool));
    uint32_t learns = 1 + rng_below(concepts_per_batch);
    for (uint32_t k = 0; k < learns; k++) {
        uint32_t i = rng_below(m->n);
        if (m->cur.live[i] && rng_below(4) != 0)
            continue;
        request_concept(r, &m->ids[i]);
        m->cur.live[i] = true;
        touched[i] = true;
    }
    for (uint32_t k = 0; k < edges_per_batch; k++) {
        uint32_t s = rng_below(m->n), t = rng_below(m->n), type = rng_below(TYPES);
        if (rng_below(20) == 0)
            t = s; /* self-loop */
        if (!m->cur.live[s] || !m->cur.live[t])
            continue;
        float c = random_confidence();
        request_edge(r, &m->ids[s], &m->ids[t], type, c);
        *model_edge(m, &m->cur, s, t, type) = c;
        touched[s] = touched[t] = true;
    }
    uint32_t forgets = rng_below(3);
    for (uint32_t k = 0; k < forgets * 4; k++) {
        uint32_t s = rng_below(m->n), t = rng_below(m->n), type = rng_below(TYPES);
        float *e = model_edge(m, &m->cur, s, t, type);
        if (*e < 0.0f || touched[s] || touched[t])
            continue;
        request_forget_edge(r, &m->ids[s], &m->ids[t], type);
        *e = NO_EDGE;
        touched[s] = touched[t] = true;
    }
    if (rng_below(3) == 0) {
        uint32_t i = rng_below(m->n);
        if (m->cur.live[i] && !touched[i]) {
            request_forget_concept(r, &m->ids[i]);
            m->cur.live[i] = false;
            for (uint32_t o = 0; o < m->n; o++)
                for (uint32_t type = 0; type < TYPES; type++) {
                    *model_edge(m, &m->cur, i, o, type) = NO_EDGE;
                    *model_edge(m, &m->cur, o, i, type) = NO_EDGE;
                }
        }
    }
    free(touched);
    if (r->ops == 0) {
        request_concept(r, &m->ids[0]);
        m->cur.live[0] = true;
    }
    uint64_t g = request_commit(f, r);
    model_record(m, g);
    return g;
}

/* ---- checking one snapshot against one model state ------------------------ */

typedef struct check_counts {
    uint64_t paths, no_paths, not_found, strongest, neighbor_sets;
} check_counts;

static enum sutra_direction random_dir(void)
{
    static const enum sutra_direction dirs[] = {SUTRA_OUT, SUTRA_IN, SUTRA_BOTH};
    return dirs[rng_below(3)];
}

static uint32_t random_filter(void)
{
    return rng_below(3) == 0 ? SUTRA_ANY_TYPE : rng_below(TYPES + 1);
}

/* The neighbors of node i must be exactly the model's edges, out-list
 * newest first then in-list newest first. */
static void check_neighbors(const model *m, const model_state *st,
                            const struct sutra_snapshot *snap, uint32_t i,
                            check_counts *counts)
{
    enum sutra_direction dir = random_dir();
    uint32_t filter = random_filter();
    size_t cap = (size_t)m->n * TYPES * 2 + 1;
    sutra_neighbor *nb = malloc(cap * sizeof(*nb));
    size_t total = 0;
    int rc = sutra_neighbors(snap, &m->ids[i], dir, filter, nb, cap, &total);
    if (!st->live[i]) {
        assert_int_equal(rc, SUTRA_ENOTFOUND);
        free(nb);
        counts->not_found++;
        return;
    }
    assert_int_equal(rc, 0);
    size_t expect = 0;
    for (uint32_t o = 0; o < m->n; o++)
        for (uint32_t type = 0; type < TYPES; type++) {
            if (!type_matches(type, filter))
                continue;
            if ((dir & SUTRA_OUT) && *model_edge(m, st, i, o, type) >= 0.0f)
                expect++;
            if ((dir & SUTRA_IN) && *model_edge(m, st, o, i, type) >= 0.0f)
                expect++;
        }
    assert_int_equal(total, expect);
    for (size_t k = 0; k < total; k++) {
        uint32_t o = model_index(m, &nb[k].id);
        assert_true(type_matches(nb[k].type, filter) && nb[k].type < TYPES);
        const float *e = nb[k].direction == SUTRA_OUT
                             ? model_edge(m, st, i, o, nb[k].type)
                             : model_edge(m, st, o, i, nb[k].type);
        assert_true(nb[k].direction & dir);
        assert_true(*e == nb[k].confidence);
        assert_true(nb[k].seq > 0 && nb[k].seq <= snap->last_seq);
        if (k > 0 && nb[k].direction == nb[k - 1].direction)
            assert_true(nb[k].seq < nb[k - 1].seq); /* newest first */
        if (k > 0 && nb[k].direction != nb[k - 1].direction)
            assert_true(nb[k].direction == SUTRA_IN); /* out, then in */
        for (size_t j = 0; j < k; j++) /* no key twice */
            assert_false(id_eq(&nb[j].id, &nb[k].id) && nb[j].type == nb[k].type &&
                         nb[j].direction == nb[k].direction);
    }
    free(nb);
    counts->neighbor_sets++;
}

/* A returned path must start at src, end at dst, have len - 1 <= max_depth
 * steps, each an edge of the snapshot; returns its best product. */
static double check_path_valid(const model *m, const model_state *st,
                               const sutra_id *path, size_t len, uint32_t src,
                               uint32_t dst, uint32_t max_depth,
                               enum sutra_direction dir, uint32_t filter)
{
    assert_true(len >= 1 && len - 1 <= max_depth);
    assert_int_equal(model_index(m, &path[0]), src);
    assert_int_equal(model_index(m, &path[len - 1]), dst);
    double product = 1.0;
    for (size_t k = 0; k + 1 < len; k++) {
        float c = model_step(m, st, model_index(m, &path[k]),
                             model_index(m, &path[k + 1]), dir, filter);
        assert_true(c >= 0.0f);
        product *= (double)c;
    }
    return product;
}

static uint32_t random_depth(int dist)
{
    switch (rng_below(6)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return dist > 0 ? (uint32_t)dist : 2;
    case 3: return dist > 0 ? (uint32_t)dist - 1 : 3;
    case 4: return UINT32_MAX;
    default: return rng_below(8);
    }
}

static void check_one_path(const model *m, const model_state *st,
                           const struct sutra_snapshot *snap, sutra_traversal *t,
                           check_counts *counts)
{
    uint32_t src = rng_below(m->n), dst = rng_below(m->n);
    if (rng_below(10) == 0)
        dst = src;
    enum sutra_direction dir = random_dir();
    uint32_t filter = random_filter();
    sutra_id path[64];
    size_t len = 0;
    int rc = sutra_find_path(t, snap, &m->ids[src], &m->ids[dst], 0, dir, filter,
                             path, 64, &len);
    if (!st->live[src] || !st->live[dst]) {
        assert_int_equal(rc, SUTRA_ENOTFOUND);
        double strength;
        assert_int_equal(sutra_find_strongest_path(t, snap, &m->ids[src],
                                                   &m->ids[dst], 5, dir, filter,
                                                   path, 64, &len, &strength),
                         SUTRA_ENOTFOUND);
        counts->not_found++;
        return;
    }
    int dist = model_distance(m, st, src, dst, dir, filter);
    uint32_t depth = random_depth(dist);
    rc = sutra_find_path(t, snap, &m->ids[src], &m->ids[dst], depth, dir, filter,
                         path, 64, &len);
    if (dist < 0 || (uint32_t)dist > depth) {
        assert_int_equal(rc, SUTRA_ENOPATH);
        counts->no_paths++;
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(len, (size_t)dist + 1);
        check_path_valid(m, st, path, len, src, dst, depth, dir, filter);
        counts->paths++;
        if (dist >= 1) { /* too small a buffer: the length it needs */
            size_t need = 0;
            assert_int_equal(sutra_find_path(t, snap, &m->ids[src], &m->ids[dst],
                                             depth, dir, filter, path,
                                             (size_t)dist, &need),
                             SUTRA_ETOOBIG);
            assert_int_equal(need, (size_t)dist + 1);
        }
    }

    double expect = model_strongest(m, st, src, dst, depth, dir, filter);
    double strength = -1;
    rc = sutra_find_strongest_path(t, snap, &m->ids[src], &m->ids[dst], depth, dir,
                                   filter, path, 64, &len, &strength);
    if (expect < 0) {
        assert_int_equal(rc, SUTRA_ENOPATH);
    } else {
        assert_int_equal(rc, 0);
        double along = check_path_valid(m, st, path, len, src, dst, depth, dir,
                                        filter);
        assert_true(fabs(strength - expect) <= 1e-9 * expect);
        assert_true(fabs(along - expect) <= 1e-9 * expect);
        counts->strongest++;
    }
}

static void check_snapshot(const model *m, const model_state *st,
                           const struct sutra_snapshot *snap, sutra_traversal *t,
                           uint32_t queries, check_counts *counts)
{
    assert_int_equal(snap->generation, st->generation);
    for (uint32_t q = 0; q < queries; q++) {
        check_one_path(m, st, snap, t, counts);
        if (q % 4 == 0)
            check_neighbors(m, st, snap, rng_below(m->n), counts);
    }
}

/* Drive `batches` random batches, checking the current snapshot after each,
 * then revisit older generations after all the writes. */
static void run_property(fixture *f, uint64_t seed, uint32_t n, uint32_t batches,
                         uint32_t concepts_per_batch, uint32_t edges_per_batch,
                         uint32_t queries)
{
    rng_state = seed;
    model m;
    model_init(&m, n, batches);
    request *r = request_new();
    sutra_db *db = open_dir(f->dir);
    sutra_traversal *t = NULL;
    assert_int_equal(sutra_traversal_new(&t), 0);
    check_counts counts = {0};
    for (uint32_t b = 0; b < batches; b++) {
        uint64_t g = model_random_batch(f, &m, r, concepts_per_batch,
                                        edges_per_batch);
        struct sutra_snapshot s = snapshot_now(db);
        assert_int_equal(s.generation, g);
        check_snapshot(&m, &m.history[m.history_count - 1], &s, t, queries, &counts);
    }
    for (uint32_t k = 0; k < batches; k++) {
        const model_state *st = &m.history[rng_below((uint32_t)m.history_count)];
        struct sutra_snapshot s;
        assert_int_equal(sutra_snapshot_at(db, st->generation, &s), 0);
        check_snapshot(&m, st, &s, t, queries, &counts);
    }
    print_message("%llu paths, %llu no-paths, %llu strongest, %llu neighbor "
                  "sets, %llu not-found\n", (unsigned long long)counts.paths,
                  (unsigned long long)counts.no_paths,
                  (unsigned long long)counts.strongest,
                  (unsigned long long)counts.neighbor_sets,
                  (unsigned long long)counts.not_found);
    /* Enough of each outcome that the comparison meant something. */
    assert_true(counts.paths > 200);
    assert_true(counts.no_paths > 100);
    assert_true(counts.strongest > 200);
    assert_true(counts.neighbor_sets > 200);
    assert_true(counts.not_found > 10);
    sutra_traversal_free(t);
    sutra_close(db);
    free(r);
    model_free(&m);
}

/* Dense and small: many parallel, re-learned and forgotten edges per node,
 * so lists span several blocks with superseded entries in each. */
static void test_graph_property_dense(void **state)
{
    run_property(*state, 0x5eed0001, 24, 100, 3, 30, 50);
}

/* Sparse and larger: long paths, many unreachable pairs. */
static void test_graph_property_sparse(void **state)
{
    run_property(*state, 0x5eed0002, 160, 100, 12, 20, 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_graph_neighbors_direction_filter_order, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_neighbors_relearn_and_snapshots, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_neighbors_forget, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_neighbors_many_blocks, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_path_basics, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_strongest_zero_confidence, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_path_wild_list_word, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_path_node_count_past_node_table, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_property_dense, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_graph_property_sparse, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
