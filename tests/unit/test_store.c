/*
 * tests/unit/test_store.c — the coordinator's storage engine
 * (coordinator/store.h): creation, version chains, content sharing, batch
 * atomicity, hash growth, crash recovery, corrupt meta slots, commit history.
 *
 * Every check of what the store wrote reads the file through a separate
 * read-only mapping and the layout/format.h structs, the way a reader
 * process does, so the tests check the bytes, not the store's own memory.
 * Crashes are simulated with a fault-injecting coord_io that stops the store
 * at a chosen point (coordinator/io.h).  The directory, requests, fault io
 * and view are tests/unit/store_fixture.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/committer.h"
#include "coordinator/dedup.h"
#include "coordinator/io.h"
#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/unit/committer_fixture.h"
#include "tests/unit/store_fixture.h"

#define DIM 4u
#define RESERVE (1ull << 34)

static int setup(void **state)
{
    return sf_setup(state, "/tmp/sutra-store-XXXXXX");
}

/* ---- requests ----------------------------------------------------------- */

static void req_learn(sf_req *r, uint64_t i, float strength, const char *content,
                      const float *emb, uint16_t flags)
{
    uint8_t id[16];
    sf_make_id(i, id);
    uint32_t clen = content ? (uint32_t)strlen(content) : 0;
    sf_req_learn_id(r, id, flags, strength, content, clen, emb, emb ? DIM : 0);
}

static void req_flush(sf_req *r)
{
    r->len += wire_encode_simple_op(sf_req_room(r, 8), WIRE_OP_FLUSH);
    r->ops++;
}

static const wire_request *req_done(sf_req *r, uint64_t client, uint64_t no)
{
    static const wire_limits lim = {.max_message = 1ull << 30,
                                    .max_content = 1u << 20,
                                    .max_batch = 1u << 20, .vector_dim = DIM};
    return sf_req_done(r, &lim, client, no);
}

/* Apply a one-request group and commit it, synced or not. */
static coord_commit_info apply_commit_as(coord_store *s, sf_req *r,
                                         uint64_t no, bool sync)
{
    coord_apply_result res;
    coord_error err = {0};
    int rc = coord_store_apply(s, req_done(r, 7, no), &res, &err);
    if (rc)
        print_error("apply: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    coord_commit_info info;
    rc = coord_store_commit(s, sync, &info, &err);
    if (rc)
        print_error("commit: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    sf_req_free(r);
    return info;
}

static coord_commit_info apply_commit(coord_store *s, sf_req *r, uint64_t no)
{
    return apply_commit_as(s, r, no, true);
}

/* ---- reading the file through the view -------------------------------- */

/* Probe the hash table named by `roots` for id i: node number or -1. */
static int64_t find_node(const sf_view *v, const layout_roots *roots, uint64_t i)
{
    uint8_t id[16];
    sf_make_id(i, id);
    const layout_region *r = (const layout_region *)(v->map + roots->hash_root);
    assert_int_equal(r->rec.type, LAYOUT_REC_HASH_TABLE);
    assert_int_equal(r->arg0, roots->hash_slots);
    const uint64_t *slots = (const uint64_t *)(v->map + roots->hash_root + 64);
    uint64_t h = layout_id_hash(id), mask = roots->hash_slots - 1;
    for (uint64_t p = 0; p <= mask; p++) {
        uint64_t w = slots[(h + p) & mask];
        if (w == 0)
            return -1;
        if ((uint32_t)(w >> 32) != (uint32_t)(h >> 32))
            continue;
        uint32_t n = (uint32_t)w - 1;
        if (n < roots->node_count && memcmp(sf_node_of(v, n)->id, id, 16) == 0)
            return n;
    }
    return -1;
}

/* Junk over the middle of both meta slots: neither verifies (F-META-3). */
static void tear_both_meta_slots(const char *path)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t junk[64];
    memset(junk, 0xA5, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, sizeof(junk), LAYOUT_META_OFFSET_0 + 40), 64);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), LAYOUT_META_OFFSET_1 + 40), 64);
    close(fd);
}

/* Ids 0 .. n - 1 are found in the table `roots` names, as nodes 0 .. n - 1
 * (numbered in the order they were first learned, F-NODE-1). */
static void assert_ids_numbered(const sf_view *v, const layout_roots *roots,
                                uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(find_node(v, roots, i), (int64_t)i);
}

static const layout_concept *rec_at(const sf_view *v, uint64_t off)
{
    const layout_concept *c = (const layout_concept *)(v->map + off);
    assert_true(layout_rec_verify(&c->rec));
    return c;
}

/* The head version of id i at the published generation (asserted found). */
static const layout_concept *head_of(const sf_view *v, uint64_t i)
{
    layout_roots roots = sf_roots_of(v);
    int64_t n = find_node(v, &roots, i);
    assert_true(n >= 0);
    uint64_t head = sf_node_of(v, (uint32_t)n)->head;
    assert_true(head < roots.committed_end);
    const layout_concept *c = rec_at(v, head);
    assert_int_equal(c->node, (uint32_t)n);
    return c;
}

static uint64_t count_slots(const sf_view *v, const layout_roots *roots)
{
    const uint64_t *slots = (const uint64_t *)(v->map + roots->hash_root + 64);
    uint64_t used = 0;
    for (uint64_t i = 0; i < roots->hash_slots; i++)
        used += slots[i] != 0;
    return used;
}

/* ---- tests -------------------------------------------------------------- */

static void test_store_create_and_reopen(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    sf_view v = sf_view_open(f->path, RESERVE);
    const layout_header *h = sf_hdr_of(&v);
    assert_int_equal(layout_header_check(h, (uint64_t)st.st_size, NULL), 0);
    assert_int_equal(h->vector_dim, DIM);
    assert_int_equal(h->map_reserve, RESERVE);
    assert_int_equal(h->clean_shutdown, 0); /* open */
    assert_int_equal(h->generation, 0);
    const layout_meta *m0 = (const layout_meta *)(v.map + LAYOUT_META_OFFSET_0);
    const layout_meta *m1 = (const layout_meta *)(v.map + LAYOUT_META_OFFSET_1);
    assert_true(layout_meta_valid(m0));
    assert_false(layout_meta_valid(m1));
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.hash_root, LAYOUT_DATA_START);
    assert_int_equal(r.hash_slots, LAYOUT_HASH_MIN_SLOTS);
    assert_int_equal(r.node_count, 0);
    assert_true(h->node_chunk[0] % 64 == 0 && h->node_chunk[0] > r.hash_root);
    const layout_region *chunk = (const layout_region *)(v.map + h->node_chunk[0]);
    assert_true(layout_rec_verify(&chunk->rec));
    assert_int_equal(chunk->arg1, LAYOUT_NODE_CHUNK0);
    assert_int_equal(r.committed_end,
                     h->node_chunk[0] + 64 + LAYOUT_NODE_CHUNK0 * sizeof(layout_node));

    sf_req q = {0};
    req_learn(&q, 1, 1.0f, "hello", NULL, 0);
    coord_commit_info info = apply_commit(s, &q, 1);
    assert_int_equal(info.generation, 1);
    assert_int_equal(info.first_seq, 1);
    assert_true(info.durable);
    coord_store_close(s, true);
    assert_int_equal(sf_hdr_of(&v)->clean_shutdown, 1);

    s = sf_open(f->path, 0, RESERVE, NULL); /* dim 0: keep the file's */
    assert_int_equal(coord_store_dim(s), DIM);
    coord_store_stats stats;
    coord_store_stats_get(s, &stats);
    assert_int_equal(stats.generation, 1);
    assert_int_equal(stats.node_count, 1);
    assert_int_equal(stats.concept_count, 1);
    assert_int_equal(stats.last_seq, 1);
    assert_false(stats.read_only);
    const layout_concept *c = head_of(&v, 1);
    assert_int_equal(c->content_len, 5);
    assert_memory_equal(v.map + c->content_off, "hello", 5);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_learn_forget_relearn_chain(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    const float e1[DIM] = {1, 2, 3, 4};

    sf_req q = {0};
    req_learn(&q, 5, 0.25f, "first", e1, 0);
    apply_commit(s, &q, 1);
    const layout_concept *v1 = head_of(&v, 5);
    uint64_t v1_off = (uint64_t)((const uint8_t *)v1 - v.map);
    assert_int_equal(v1->rec.type, LAYOUT_REC_CONCEPT);
    assert_int_equal(v1->prev, 0);
    assert_int_equal(v1->created_ns, v1->updated_ns);
    assert_int_equal(v1->concept_flags, LAYOUT_CONCEPT_F_EMBEDDING);
    assert_int_equal(v1->embedding_off % 64, 0);
    assert_memory_equal(v.map + v1->embedding_off, e1, sizeof(e1));
    assert_true(v1->strength == 0.25f);

    req_learn(&q, 5, 0.75f, "second", e1, 0);
    apply_commit(s, &q, 2);
    const layout_concept *v2 = head_of(&v, 5);
    uint64_t v2_off = (uint64_t)((const uint8_t *)v2 - v.map);
    assert_int_equal(v2->prev, v1_off);
    assert_int_equal(v2->created_ns, v1->created_ns);
    assert_true(v2->rec.seq > v1->rec.seq);
    assert_memory_equal(v.map + v2->content_off, "second", 6);
    assert_true(v2->concept_flags & LAYOUT_CONCEPT_F_SHARED_EMBEDDING);

    sf_req_forget(&q, 5);
    apply_commit(s, &q, 3);
    const layout_concept *t = head_of(&v, 5);
    uint64_t t_off = (uint64_t)((const uint8_t *)t - v.map);
    assert_int_equal(t->rec.type, LAYOUT_REC_CONCEPT_TOMBSTONE);
    assert_int_equal(t->prev, v2_off);
    assert_int_equal(t->content_len, 0);
    assert_int_equal(t->dim, 0);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.concept_count, 0);
    assert_int_equal(r.tombstone_count, 1);
    assert_int_equal(r.version_count, 2);

    /* Forgetting again is refused and changes nothing. */
    sf_req_forget(&q, 5);
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, 4), &res, &err),
                     SUTRA_ENOTFOUND);
    assert_int_equal(res.failed_op, 0);
    assert_false(coord_store_group_pending(s));
    sf_req_free(&q);

    req_learn(&q, 5, 1.0f, "third", NULL, 0);
    apply_commit(s, &q, 5);
    const layout_concept *v3 = head_of(&v, 5);
    assert_int_equal(v3->prev, t_off);
    assert_int_equal(v3->created_ns, v3->updated_ns); /* reset after forget */
    assert_true(v3->created_ns >= t->updated_ns);
    assert_int_equal(v3->dim, 0);
    r = sf_roots_of(&v);
    assert_int_equal(r.concept_count, 1);
    assert_int_equal(r.version_count, 3);
    assert_int_equal(r.node_count, 1);
    assert_int_equal(r.last_seq, 4);

    /* The chain survives a reopen. */
    coord_store_close(s, true);
    s = sf_open(f->path, DIM, RESERVE, NULL);
    assert_int_equal(head_of(&v, 5)->prev, t_off);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_strength_only_relearn_shares(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    char big[1001];
    memset(big, 'x', 1000);
    big[1000] = 0;
    const float e[DIM] = {0.5f, -1, 2, 8};

    sf_req q = {0};
    req_learn(&q, 9, 0.1f, big, e, 0);
    apply_commit(s, &q, 1);
    const layout_concept *old = head_of(&v, 9);
    assert_true(old->rec.length > 1000);

    req_learn(&q, 9, 0.9f, big, e, 0); /* same bytes: shared */
    apply_commit(s, &q, 2);
    const layout_concept *c = head_of(&v, 9);
    assert_int_equal(c->rec.length, sizeof(layout_concept));
    assert_int_equal(c->content_off, old->content_off);
    assert_int_equal(c->content_len, 1000);
    assert_int_equal(c->embedding_off, old->embedding_off);
    assert_int_equal(c->concept_flags, LAYOUT_CONCEPT_F_EMBEDDING |
                                       LAYOUT_CONCEPT_F_SHARED_CONTENT |
                                       LAYOUT_CONCEPT_F_SHARED_EMBEDDING);
    assert_true(c->strength == 0.9f);

    req_learn(&q, 9, 0.3f, NULL, NULL,
              WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING);
    apply_commit(s, &q, 3);
    const layout_concept *k = head_of(&v, 9);
    assert_int_equal(k->rec.length, sizeof(layout_concept));
    assert_int_equal(k->content_off, old->content_off);
    assert_int_equal(k->content_len, 1000);
    assert_int_equal(k->dim, DIM);
    assert_int_equal(k->embedding_off, old->embedding_off);

    /* Changed content is copied; the unchanged embedding is still shared. */
    req_learn(&q, 9, 0.3f, "other", e, 0);
    apply_commit(s, &q, 4);
    const layout_concept *n = head_of(&v, 9);
    assert_int_equal(n->content_off,
                     (uint64_t)((const uint8_t *)n - v.map) + sizeof(layout_concept));
    assert_int_equal(n->embedding_off, old->embedding_off);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_group_sees_staged_state(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    coord_apply_result res;
    coord_error err = {0};

    sf_req a = {0}, b = {0};
    req_learn(&a, 1, 1, "same", NULL, 0);
    req_learn(&a, 2, 1, NULL, NULL, 0);
    assert_int_equal(coord_store_apply(s, req_done(&a, 7, 1), &res, &err), 0);
    assert_int_equal(res.first_seq, 1);
    assert_int_equal(res.op_count, 2);
    /* A later request of the same group builds on the staged versions. */
    req_learn(&b, 1, 2, "same", NULL, 0);
    sf_req_forget(&b, 2);
    req_flush(&b);
    assert_int_equal(coord_store_apply(s, req_done(&b, 7, 2), &res, &err), 0);
    assert_int_equal(res.first_seq, 3);
    assert_true(coord_store_group_wants_sync(s));
    assert_true(coord_store_group_bytes(s) >= 4 * sizeof(layout_concept));
    coord_commit_info info;
    assert_int_equal(coord_store_commit(s, false, &info, &err), 0);
    assert_true(info.durable); /* the flush forced it */
    assert_int_equal(info.first_seq, 1);
    assert_int_equal(info.last_seq, 4);

    const layout_concept *c1 = head_of(&v, 1);
    const layout_concept *p1 = rec_at(&v, c1->prev);
    assert_int_equal(c1->content_off, p1->content_off);
    assert_int_equal(head_of(&v, 2)->rec.type, LAYOUT_REC_CONCEPT_TOMBSTONE);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.concept_count, 1);
    assert_int_equal(r.node_count, 2);
    sf_req_free(&a);
    sf_req_free(&b);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_batch_is_atomic(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    coord_apply_result res;
    coord_error err = {0};

    sf_req ok = {0};
    req_learn(&ok, 1, 1, "one", NULL, 0);
    assert_int_equal(coord_store_apply(s, req_done(&ok, 7, 1), &res, &err), 0);
    uint64_t bytes = coord_store_group_bytes(s);

    /* learn 2, learn 3, forget 4 (never learned), learn 5: op 2 fails. */
    sf_req bad = {0};
    req_learn(&bad, 2, 1, "two", NULL, 0);
    req_learn(&bad, 3, 1, "three", NULL, 0);
    sf_req_forget(&bad, 4);
    req_learn(&bad, 5, 1, "five", NULL, 0);
    assert_int_equal(coord_store_apply(s, req_done(&bad, 7, 2), &res, &err),
                     SUTRA_ENOTFOUND);
    assert_int_equal(res.failed_op, 2);
    assert_memory_equal(err.message, "P-OP-5:", 7);
    assert_int_equal(coord_store_group_bytes(s), bytes);

    /* Liveness inside one request follows its own earlier ops. */
    sf_req twice = {0};
    req_learn(&twice, 6, 1, NULL, NULL, 0);
    sf_req_forget(&twice, 6);
    sf_req_forget(&twice, 6);
    assert_int_equal(coord_store_apply(s, req_done(&twice, 7, 3), &res, &err),
                     SUTRA_ENOTFOUND);
    assert_int_equal(res.failed_op, 2);
    assert_int_equal(coord_store_group_bytes(s), bytes);

    coord_commit_info info;
    assert_int_equal(coord_store_commit(s, true, &info, &err), 0);
    assert_int_equal(info.first_seq, 1);
    assert_int_equal(info.last_seq, 1);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.node_count, 1);
    assert_int_equal(find_node(&v, &r, 2), -1);
    assert_int_equal(find_node(&v, &r, 6), -1);
    const layout_commit *c = (const layout_commit *)(v.map + r.last_commit);
    assert_true(layout_rec_verify(&c->rec));
    assert_int_equal(c->request_count, 1);

    /* Abort drops a staged group without touching the file. */
    sf_req gone = {0};
    req_learn(&gone, 8, 1, NULL, NULL, 0);
    assert_int_equal(coord_store_apply(s, req_done(&gone, 7, 4), &res, &err), 0);
    coord_store_abort(s);
    assert_false(coord_store_group_pending(s));
    assert_int_equal(coord_store_commit(s, true, &info, &err), 0);
    assert_int_equal(info.generation, 1);
    sf_req_free(&ok);
    sf_req_free(&bad);
    sf_req_free(&twice);
    sf_req_free(&gone);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_rejects_bad_ops(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    coord_apply_result res;
    coord_error err = {0};
    sf_req q = {0};
    req_learn(&q, 1, 1, NULL, NULL, 0);
    const wire_request *w = req_done(&q, 7, 1);
    wire_request control = *w;
    control.is_control = true;
    assert_int_equal(coord_store_apply(s, &control, &res, &err), SUTRA_EINVAL);
    assert_false(coord_store_group_pending(s));
    sf_req_free(&q);
    coord_store_close(s, true);
}

static void commit_many(coord_store *s, uint64_t from, uint64_t to, uint64_t no)
{
    sf_req q = {0};
    for (uint64_t i = from; i < to; i++)
        req_learn(&q, i, 1, NULL, NULL, 0);
    apply_commit(s, &q, no);
}

static void test_store_hash_growth_keeps_every_id(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    layout_roots before[8];
    uint64_t sizes[] = {100, 600, 1200, 3000, 5000, 9000};
    uint64_t done = 0;
    for (int g = 0; g < 6; g++) {
        commit_many(s, done, sizes[g], (uint64_t)g + 1);
        done = sizes[g];
        before[g] = sf_roots_of(&v);
        assert_true(before[g].node_count * 2 <= before[g].hash_slots);
    }
    assert_int_equal(before[5].hash_slots, 32768);
    assert_int_equal(before[0].hash_slots, 1024);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.node_count, 9000);
    assert_int_equal(count_slots(&v, &r), 9000);
    assert_ids_numbered(&v, &r, 9000);
    assert_int_equal(find_node(&v, &r, 9000), -1);
    /* Older tables are untouched: each still holds its own generation. */
    for (int g = 0; g < 5; g++) {
        assert_int_equal(count_slots(&v, &before[g]), before[g].node_count);
        assert_int_equal(find_node(&v, &before[g], before[g].node_count - 1),
                         (int64_t)before[g].node_count - 1);
    }
    /* Node chunks 0..3 cover 9000 nodes (1024 + 2048 + 4096 + 8192). */
    assert_true(sf_hdr_of(&v)->node_chunk[3] != 0);
    assert_int_equal(sf_hdr_of(&v)->node_chunk[4], 0);
    coord_store_close(s, true);
    s = sf_open(f->path, DIM, RESERVE, NULL);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* sutra_verify of the newest generation: every rule, the hash table's
 * slots included (each node named once, reachable from its home slot). */
static void verify_dir(const sf_dir *f)
{
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(f->dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    sutra_verify_report rep;
    int rc = sutra_verify(&snap, NULL, &rep);
    if (rc)
        print_error("verify: %s at %llu: %s\n", rep.rule,
                    (unsigned long long)rep.offset, rep.message);
    assert_int_equal(rc, 0);
    sutra_close(db);
}

/* Commit ids [from, to) in groups of `per`, unsynced; returns the next
 * request number. */
static uint64_t commit_runs(coord_store *s, uint64_t from, uint64_t to,
                            uint64_t per, uint64_t no)
{
    for (uint64_t i = from; i < to; i += per) {
        sf_req q = {0};
        for (uint64_t k = i; k < to && k < i + per; k++)
            req_learn(&q, k, 1, NULL, NULL, 0);
        apply_commit_as(s, &q, no++, false);
    }
    return no;
}

/* F-HASH-4 with the next table filled ahead (coordinator/store_grow.c):
 * the group that takes the table past three eighths allocates the next
 * one, which no roots name while the helper fills it; the group that
 * takes it past one half names it, whole, without allocating anything. */
static void test_store_hash_filled_ahead(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    uint64_t no = commit_runs(s, 0, 384, 384, 1);
    layout_roots first = sf_roots_of(&v);
    no = commit_runs(s, 384, 385, 1, no); /* 385 nodes: past 3/8 of 1024 */
    layout_roots allocated = sf_roots_of(&v);
    assert_int_equal(allocated.hash_root, first.hash_root);
    /* the group holds one record and a 2048-slot region */
    assert_true(allocated.committed_end - first.committed_end >
                LAYOUT_REGION_BODY + 2048 * 8);
    no = commit_runs(s, 385, 512, 16, no);
    layout_roots old = sf_roots_of(&v);
    assert_int_equal(old.hash_root, first.hash_root);
    assert_int_equal(old.node_count, 512);
    no = commit_runs(s, 512, 513, 1, no);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 2048);
    /* named where it was allocated, by a group that allocated nothing */
    assert_true(r.hash_root > first.committed_end &&
                r.hash_root < allocated.committed_end);
    assert_true(r.committed_end - old.committed_end < 4096);
    assert_int_equal(count_slots(&v, &r), 513);
    assert_ids_numbered(&v, &r, 513);
    /* the table snapshots of the generation before still read */
    assert_int_equal(count_slots(&v, &old), 512);
    assert_int_equal(find_node(&v, &old, 511), 511);
    assert_int_equal(find_node(&v, &old, 512), -1);
    /* one group past the filled table's own half: it is left, and the
     * table doubles on the commit path as before */
    no = commit_runs(s, 513, 800, 287, no); /* 800 > 3/8 of 2048 */
    layout_roots ahead = sf_roots_of(&v);
    assert_int_equal(ahead.hash_slots, 2048);
    no = commit_runs(s, 800, 2100, 1300, no);
    r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 8192);
    assert_true(r.hash_root > ahead.committed_end);
    assert_int_equal(count_slots(&v, &r), 2100);
    assert_ids_numbered(&v, &r, 2100);
    coord_store_close(s, true);
    verify_dir(f);
    /* and once more past 3/8 and 1/2 of 8192 after a reopen */
    s = sf_open(f->path, DIM, RESERVE, NULL);
    no = commit_runs(s, 2100, 4200, 300, no);
    r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 16384);
    assert_int_equal(count_slots(&v, &r), 4200);
    coord_store_close(s, true);
    verify_dir(f);
    sf_view_close(&v);
}

/* F-REC-5: a table filled ahead was allocated in a group that may be long
 * durable, while its slots were stored after that group's sync.  A power
 * cut after the group that names it can keep the group and lose every
 * slot page.  Recovery must fill it again, although the region lies below
 * the durable end. */
static void test_store_recovery_refills_a_table_filled_ahead(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    coord_error err = {0};
    uint64_t no = commit_runs(s, 0, 385, 385, 1); /* allocates the region */
    assert_int_equal(coord_store_sync(s, &err), 0); /* durable end: here */
    no = commit_runs(s, 385, 513, 32, no);            /* names it, unsynced */
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 2048);
    assert_true(r.hash_root < sf_hdr_of(&v)->durable_end);
    coord_store_close(s, false); /* not marked clean: recovery runs */
    /* the power cut: no slot page of the new table reached the disk */
    int fd = open(f->path, O_RDWR);
    static uint64_t zeros[2048];
    assert_int_equal(pwrite(fd, zeros, sizeof(zeros),
                            (off_t)(r.hash_root + LAYOUT_REGION_BODY)),
                     (ssize_t)sizeof(zeros));
    close(fd);
    s = sf_open(f->path, DIM, RESERVE, NULL);
    layout_roots after = sf_roots_of(&v);
    assert_int_equal(after.generation, r.generation);
    assert_int_equal(count_slots(&v, &after), 513);
    assert_ids_numbered(&v, &after, 513);
    coord_store_close(s, true);
    verify_dir(f);
    sf_view_close(&v);
}

/* F-REC-6, F-REC-7: the commits after a table's region was allocated for
 * the helper still name the table before it.  A rebuild from the log
 * (both meta slots torn in a file not closed) keeps every one of them. */
static void test_store_rebuild_past_a_table_filled_ahead(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    uint64_t no = commit_runs(s, 0, 400, 20, 1);
    no = commit_runs(s, 400, 600, 50, no);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 2048);
    no = commit_runs(s, 600, 700, 25, no); /* 700 > 3/8 of 2048 */
    layout_roots want = sf_roots_of(&v);
    assert_int_equal(want.hash_root, r.hash_root);
    coord_store_close(s, false);
    tear_both_meta_slots(f->path);
    s = sf_open(f->path, DIM, RESERVE, NULL);
    layout_roots after = sf_roots_of(&v);
    assert_int_equal(after.generation, want.generation);
    assert_int_equal(after.hash_root, want.hash_root);
    assert_ids_numbered(&v, &after, 700);
    coord_store_close(s, true);
    verify_dir(f);
    sf_view_close(&v);
}

/* F-META-6: a restart in the window between three eighths and one half
 * takes up the table being filled ahead again rather than leaving its
 * region dead and appending another.  Its slots may hold anything (the
 * old helper's, some for nodes a recovery discarded), so they are zeroed
 * first: here every slot holds a word naming node 0, which would leave no
 * empty slot for any insert. */
static void test_store_restart_takes_up_the_table_filled_ahead(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    uint64_t no = commit_runs(s, 0, 384, 384, 1);
    layout_roots first = sf_roots_of(&v);
    assert_int_equal(sf_meta_of(&v)->next_hash_root, 0);
    no = commit_runs(s, 384, 385, 1, no); /* allocates the next table */
    uint64_t ahead = sf_meta_of(&v)->next_hash_root;
    assert_true(ahead > first.committed_end &&
                ahead < sf_roots_of(&v).committed_end);
    no = commit_runs(s, 385, 450, 13, no);
    assert_int_equal(sf_meta_of(&v)->next_hash_root, ahead);
    verify_dir(f);
    coord_store_close(s, false); /* killed: recovery runs */
    int fd = open(f->path, O_RDWR);
    static uint64_t stale[2048];
    for (size_t i = 0; i < 2048; i++)
        stale[i] = 1; /* tag 0, node 0 */
    assert_int_equal(pwrite(fd, stale, sizeof(stale),
                            (off_t)(ahead + LAYOUT_REGION_BODY)),
                     (ssize_t)sizeof(stale));
    close(fd);
    s = sf_open(f->path, DIM, RESERVE, NULL);
    layout_roots reopened = sf_roots_of(&v);
    no = commit_runs(s, 450, 513, 21, no); /* names the table */
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 2048);
    assert_int_equal(r.hash_root, ahead);
    assert_int_equal(sf_meta_of(&v)->next_hash_root, 0);
    /* three groups of records only: no second region was appended */
    assert_true(r.committed_end - reopened.committed_end < 2048 * 8);
    assert_int_equal(count_slots(&v, &r), 513);
    assert_ids_numbered(&v, &r, 513);
    coord_store_close(s, true);
    verify_dir(f);
    sf_view_close(&v);
}

/* The io of test_store_reverify_keeps_the_table_filled_ahead: its pwrites
 * that cover [watch_lo, watch_hi) wait, once armed, until the bytes being
 * written there no longer equal the mapping's (something stored into the
 * mapping after the caller copied them), then a little longer. */
typedef struct watch_io {
    sf_fault_io f;
    uint64_t watch_lo, watch_hi;
    bool armed;
    bool saw_store;
} watch_io;

static int watch_pwrite(coord_io *io, int fd, const void *b, size_t n,
                        uint64_t off)
{
    watch_io *w = (watch_io *)io;
    if (w->armed && w->f.base && off <= w->watch_lo && off + n >= w->watch_hi) {
        const uint8_t *mine = (const uint8_t *)b + (w->watch_lo - off);
        for (int i = 0; i < 2000 && !w->saw_store; i++) {
            if (memcmp(mine, w->f.base + w->watch_lo,
                       w->watch_hi - w->watch_lo) != 0)
                w->saw_store = true;
            else
                usleep(1000);
        }
        usleep(50000);
    }
    return sf_fault_pwrite(io, fd, b, n, off);
}

/* Re-verification after a failed sync rewrites every byte below the
 * committed end from a copy of the mapping (store_reverify.c), the region
 * of the table being filled ahead included.  The helper must not be
 * storing into that region meanwhile: a slot it stores between the copy
 * and the pwrite is overwritten with the copy's zero, the helper counts
 * the node as inserted, and the commit that names the table leaves that
 * id out of it (a lookup misses it; a learn of it makes a second node). */
static void test_store_reverify_keeps_the_table_filled_ahead(void **state)
{
    sf_dir *f = *state;
    watch_io w = { .f = sf_fault_io_make() };
    w.f.io.pwrite = watch_pwrite;
    coord_store *s = sf_open(f->path, DIM, RESERVE, &w.f.io);
    sf_view v = sf_view_open(f->path, RESERVE);
    coord_error err = {0};
    uint64_t no = commit_runs(s, 0, 384, 384, 1);
    layout_roots first = sf_roots_of(&v);
    no = commit_runs(s, 384, 385, 1, no); /* allocates the next table */
    layout_roots allocated = sf_roots_of(&v);
    w.watch_lo = first.committed_end;
    w.watch_hi = allocated.committed_end;
    /* the helper, caught up, backs off to sleeps of 256 ms */
    usleep(400000);
    no = commit_runs(s, 385, 480, 95, no); /* published, not yet inserted */
    w.f.sync_err = EIO;
    assert_int_equal(coord_store_sync(s, &err), EIO);
    w.f.sync_err = 0;
    w.armed = true;
    int rc = coord_store_reverify(s, &err);
    if (rc)
        print_error("reverify: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    w.armed = false;
    no = commit_runs(s, 480, 513, 33, no); /* names the table */
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 2048);
    /* the region filled before the re-verification, taken up again */
    assert_true(r.hash_root > first.committed_end &&
                r.hash_root < allocated.committed_end);
    assert_int_equal(count_slots(&v, &r), 513);
    assert_ids_numbered(&v, &r, 513);
    coord_store_close(s, true);
    verify_dir(f);
    sf_view_close(&v);
}

static void test_store_hash_doubling_pause_1m(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    const uint64_t million = 1u << 20;
    uint64_t no = 1;
    for (uint64_t from = 0; from < million; from += 65536)
        commit_many(s, from, from + 65536, no++);
    sf_view v = sf_view_open(f->path, RESERVE);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 2 * million);

    /* One new node crosses the 1/2 load: the commit names the table the
     * helper has filled since the load passed 3/8 (store_grow.c), after
     * it has caught up with the last groups.  Here they are 65,536 nodes
     * each, synced, committed back to back: the helper's stores fault
     * again on the pages each sync wrote back, and the commit waits for
     * up to a group of them.  Unsynced, so the time is that wait; the sync
     * after it is the cost of making the new 32 MiB table durable. */
    sf_req q = {0};
    coord_apply_result res;
    coord_error err = {0};
    req_learn(&q, million, 1, NULL, NULL, 0);
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, no++), &res, &err), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(coord_store_commit(s, false, NULL, &err), 0);
    double pause = sf_seconds_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(coord_store_sync(s, &err), 0);
    double sync = sf_seconds_since(&t0);
    sf_req_free(&q);
    r = sf_roots_of(&v);
    assert_int_equal(r.hash_slots, 4 * million);

    req_learn(&q, million + 1, 1, NULL, NULL, 0);
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, no++), &res, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(coord_store_commit(s, false, NULL, &err), 0);
    double plain = sf_seconds_since(&t0);
    sf_req_free(&q);
    print_message("hash table named at %llu nodes (2M -> 4M slots): commit "
                  "%.1f ms, then fdatasync %.1f ms; a one-node commit "
                  "without doubling: %.3f ms\n",
                  (unsigned long long)million + 1, pause * 1e3, sync * 1e3,
                  plain * 1e3);
    r = sf_roots_of(&v);
    for (uint64_t i = 0; i <= million + 1; i += 4099)
        assert_int_equal(find_node(&v, &r, i), (int64_t)i);
    assert_int_equal(find_node(&v, &r, million + 1), (int64_t)million + 1);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* Commit one group; then a second group whose commit "crashes" after its
 * in-place words but before (or while) its meta slot is written. */
static void crash_second_group(const sf_dir *f, int meta_words_before_crash)
{
    sf_fault_io fio = sf_fault_io_make();
    coord_store *s = sf_open(f->path, DIM, RESERVE, &fio.io);
    commit_many(s, 0, 10, 1);

    sf_req q = {0};
    for (uint64_t i = 100; i < 1600; i++) /* new chunk and a doubled table */
        req_learn(&q, i, 1, NULL, NULL, 0);
    for (uint64_t i = 0; i < 5; i++)
        req_learn(&q, i, 2, "changed", NULL, 0);
    sf_req_forget(&q, 9);
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, 2), &res, &err), 0);
    fio.meta_err = EIO;
    fio.meta_words_left = meta_words_before_crash;
    assert_int_equal(coord_store_commit(s, true, NULL, &err), EIO);
    /* The store refuses further writes until it is reopened. */
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, 3), &res, &err),
                     SUTRA_EREADONLY);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    assert_true(st.read_only);
    coord_store_close(s, true); /* read-only: must not mark it clean */
    sf_req_free(&q);
}

static void check_recovered_first_group(const sf_dir *f)
{
    sf_view v = sf_view_open(f->path, RESERVE);
    assert_int_equal(sf_hdr_of(&v)->clean_shutdown, 0);
    assert_int_equal(sf_hdr_of(&v)->generation, 1);
    assert_true(sf_hdr_of(&v)->node_chunk[1] != 0); /* the crashed commit's word */

    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    const layout_header *h = sf_hdr_of(&v);
    assert_int_equal(h->generation, 1);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.node_count, 10);
    assert_int_equal(r.concept_count, 10);
    assert_int_equal(r.hash_slots, 1024);
    assert_int_equal(count_slots(&v, &r), 10);
    assert_int_equal(h->node_chunk[1], 0);
    for (uint64_t i = 0; i < 10; i++) {
        const layout_concept *c = head_of(&v, i);
        assert_int_equal(c->rec.type, LAYOUT_REC_CONCEPT);
        assert_int_equal(c->content_len, 0);
        assert_true(c->rec.seq <= r.last_seq);
    }
    assert_int_equal(find_node(&v, &r, 100), -1);
    static const layout_node zero;
    assert_memory_equal(sf_node_of(&v, 10), &zero, sizeof(zero));
    assert_memory_equal(sf_node_of(&v, 1000), &zero, sizeof(zero));

    /* The store writes on from the recovered state, reusing the torn tail:
     * the doubled table lands where the crashed one was and must be clean. */
    commit_many(s, 100, 1600, 3);
    r = sf_roots_of(&v);
    assert_int_equal(r.generation, 2);
    assert_int_equal(r.node_count, 1510);
    assert_int_equal(count_slots(&v, &r), 1510);
    for (uint64_t i = 100; i < 1600; i++)
        assert_int_equal(find_node(&v, &r, i), (int64_t)(i - 90));
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_recovers_crash_before_meta(void **state)
{
    sf_dir *f = *state;
    crash_second_group(f, 0);
    check_recovered_first_group(f);
}

static void test_store_recovers_torn_meta(void **state)
{
    sf_dir *f = *state;
    crash_second_group(f, 12); /* slot 0 half overwritten */
    sf_view v = sf_view_open(f->path, RESERVE);
    const layout_meta *m0 = (const layout_meta *)(v.map + LAYOUT_META_OFFSET_0);
    assert_false(layout_meta_valid(m0));
    sf_view_close(&v);
    check_recovered_first_group(f);
}

/* A commit whose sync fails is reported failed (EIO) and must stay gone: its
 * meta slot, complete in the page cache, is invalidated, so a restart that
 * follows (no power cut) recovers the generation before it. */
static void test_store_failed_commit_does_not_come_back(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    coord_store *s = sf_open(f->path, DIM, RESERVE, &fio.io);
    commit_many(s, 0, 4, 1);
    sf_req q = {0};
    req_learn(&q, 2, 5, "newer", NULL, 0);
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, 2), &res, &err), 0);
    fio.sync_err = EIO; /* the sync of the group's own write (F-COM-6) */
    fio.syncs_left = 0;
    assert_int_equal(coord_store_commit(s, true, NULL, &err), EIO);
    coord_store_close(s, true); /* read-only: not marked clean */
    sf_req_free(&q);

    sf_view v = sf_view_open(f->path, RESERVE);
    assert_int_equal(sf_hdr_of(&v)->generation, 1);
    const layout_meta *m2 = (const layout_meta *)(v.map + LAYOUT_META_OFFSET_0);
    /* generation 2's slot: never written, or written and invalidated */
    assert_true(!layout_meta_valid(m2) || m2->roots.generation < 2);
    s = sf_open(f->path, DIM, RESERVE, NULL);
    assert_int_equal(sf_hdr_of(&v)->generation, 1);
    const layout_concept *c = head_of(&v, 2);
    assert_int_equal(c->content_len, 0); /* the version of generation 1 */
    assert_int_equal(sf_roots_of(&v).node_count, 4);
    /* and the next commit takes generation 2 */
    commit_many(s, 10, 12, 3);
    assert_int_equal(sf_hdr_of(&v)->generation, 2);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_write_failure_drops_group(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    coord_store *s = sf_open(f->path, DIM, RESERVE, &fio.io);
    sf_view v = sf_view_open(f->path, RESERVE);
    commit_many(s, 0, 3, 1);
    layout_roots before = sf_roots_of(&v);

    sf_req q = {0};
    req_learn(&q, 50, 1, "lost", NULL, 0);
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, 2), &res, &err), 0);
    fio.pwrite_err = ENOSPC;
    assert_int_equal(coord_store_commit(s, true, NULL, &err), ENOSPC);
    assert_true(strstr(err.message, "write") != NULL);
    fio.pwrite_err = 0;
    assert_false(coord_store_group_pending(s));
    layout_roots after = sf_roots_of(&v);
    assert_memory_equal(&before, &after, sizeof(before));

    /* Still writable: the next group commits normally. */
    sf_req_free(&q);
    commit_many(s, 60, 62, 3);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.generation, 2);
    assert_int_equal(find_node(&v, &r, 50), -1);
    assert_int_equal(find_node(&v, &r, 61), 4);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_full_file(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    coord_store_options o = {.vector_dim = DIM, .map_reserve = 256 * 1024,
                             .io = &fio.io};
    coord_store *s = NULL;
    coord_error err = {0};
    assert_int_equal(coord_store_open(f->path, &o, &s, &err), 0);
    char content[40001];
    memset(content, 'c', 40000);
    content[40000] = 0;
    int rc = 0;
    uint64_t i;
    for (i = 0; i < 20 && rc == 0; i++) {
        sf_req q = {0};
        req_learn(&q, i, 1, content, NULL, 0);
        coord_apply_result res;
        rc = coord_store_apply(s, req_done(&q, 7, i + 1), &res, &err);
        if (rc == 0)
            rc = coord_store_commit(s, false, NULL, &err);
        sf_req_free(&q);
    }
    assert_int_equal(rc, SUTRA_EFULL);
    assert_true(i > 2);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    assert_false(st.read_only);
    assert_true(st.file_size <= 256 * 1024);
    coord_store_close(s, true);
}

/* The 513th node doubles the hash table (F-HASH-4) to 2048 slots, a 16 KiB
 * region.  With less than that left, a request that adds a node must fail
 * at apply, alone: it used to pass (apply counted only record bytes) and
 * fail its whole group at commit, the other request of the group with it.
 * Past 3/8 the next table's region is allocated ahead only when the group
 * fits with it (store_grow.c): nodes 385..512 need no region. */
static void test_store_hash_growth_past_the_end(void **state)
{
    sf_dir *f = *state;
    const uint64_t reserve = 1ull << 20;
    coord_store *s = sf_open(f->path, DIM, reserve, NULL);
    sf_view v = sf_view_open(f->path, reserve);
    sf_req q = {0};
    for (uint64_t i = 0; i < 384; i++)
        req_learn(&q, i, 1.0f, NULL, NULL, 0);
    apply_commit_as(s, &q, 1, false);
    assert_int_equal(sf_roots_of(&v).hash_slots, LAYOUT_HASH_MIN_SLOTS);
    /* Re-learn concept 0 with content until 13 to 14 KiB are left after
     * 128 more concept records (104 bytes each). */
    const uint64_t keep = 13 * 1024 + 128 * 104 + 512;
    static char content[65537];
    uint64_t no = 2, left;
    while ((left = reserve - sf_roots_of(&v).committed_end) >= keep + 1024) {
        size_t n = left - keep > 65536 ? 65536 : left - keep;
        memset(content, 'x', n);
        content[n] = 0;
        req_learn(&q, 0, 1.0f, content, NULL, 0);
        apply_commit_as(s, &q, no++, false);
    }
    /* nodes 385..512: past 3/8, no room for the table ahead, none needed */
    for (uint64_t i = 384; i < 512; i++)
        req_learn(&q, i, 1.0f, NULL, NULL, 0);
    apply_commit_as(s, &q, no++, false);
    assert_int_equal(sf_roots_of(&v).node_count, 512);
    left = reserve - sf_roots_of(&v).committed_end;
    assert_true(left > 12 * 1024 && left < 16 * 1024);

    req_learn(&q, 1, 0.25f, "room for this", NULL, 0);
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, no++), &res, &err), 0);
    sf_req_free(&q);
    req_learn(&q, 512, 1.0f, NULL, NULL, 0); /* node 513 */
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, no++), &res, &err),
                     SUTRA_EFULL);
    sf_req_free(&q);
    assert_false(res.group_dropped); /* refused before it was staged */
    assert_non_null(strstr(err.message, "maximum size"));
    assert_int_equal(coord_store_commit(s, false, NULL, &err), 0);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.node_count, 512);
    assert_int_equal(r.hash_slots, LAYOUT_HASH_MIN_SLOTS);
    const layout_node *n1 = sf_node_of(&v, (uint32_t)find_node(&v, &r, 1));
    const layout_concept *c = rec_at(&v, n1->head);
    assert_true(c->strength == 0.25f);
    assert_int_equal(find_node(&v, &r, 512), -1);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_near_full_after_reopen_in_grow_window(void **state)
{
    sf_dir *f = *state;
    const uint64_t reserve = 1ull << 20;
    coord_store *s = sf_open(f->path, DIM, reserve, NULL);
    sf_view v = sf_view_open(f->path, reserve);
    sf_req q = {0};
    for (uint64_t i = 0; i < 400; i++) /* past 3/8: allocates the region */
        req_learn(&q, i, 1.0f, NULL, NULL, 0);
    apply_commit_as(s, &q, 1, false);
    assert_int_equal(sf_roots_of(&v).hash_slots, LAYOUT_HASH_MIN_SLOTS);
    static char content[65537];
    uint64_t no = 2, left;
    while ((left = reserve - sf_roots_of(&v).committed_end) >= 14 * 1024) {
        size_t n = left - 13 * 1024 > 65536 ? 65536 : left - 13 * 1024;
        memset(content, 'x', n);
        content[n] = 0;
        req_learn(&q, 0, 1.0f, content, NULL, 0);
        apply_commit_as(s, &q, no++, false);
    }
    assert_true(left > 12 * 1024);
    coord_store_close(s, true);

    s = sf_open(f->path, DIM, reserve, NULL);
    req_learn(&q, 1, 0.25f, "room for this", NULL, 0);
    coord_apply_result res;
    coord_error err = {0};
    int rc = coord_store_apply(s, req_done(&q, 7, no++), &res, &err);
    if (rc)
        print_error("apply: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    sf_req_free(&q);
    assert_int_equal(coord_store_commit(s, false, NULL, &err), 0);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.node_count, 400);
    const layout_node *n1 = sf_node_of(&v, (uint32_t)find_node(&v, &r, 1));
    assert_true(rec_at(&v, n1->head)->strength == 0.25f);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_both_meta_slots_corrupt(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    commit_many(s, 0, 2, 1);
    coord_store_close(s, true);

    tear_both_meta_slots(f->path);
    coord_store_options o = {.vector_dim = DIM};
    coord_error err = {0};
    s = NULL;
    assert_int_equal(coord_store_open(f->path, &o, &s, &err), SUTRA_ECORRUPT);
    assert_null(s);
    assert_int_equal(err.code, SUTRA_ECORRUPT);
    assert_non_null(strstr(err.message, "meta"));
}

static void test_store_reopen_with_other_dim(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    coord_store_close(s, true);
    coord_store_options o = {.vector_dim = DIM + 1};
    coord_error err = {0};
    s = NULL;
    assert_int_equal(coord_store_open(f->path, &o, &s, &err), SUTRA_EDIM);
    assert_null(s);
    sf_req q = {0};
    /* An embedding of the wrong size is refused at apply, too. */
    s = sf_open(f->path, 0, RESERVE, NULL);
    float e[DIM + 1] = {0};
    uint8_t id[16];
    sf_make_id(1, id);
    uint8_t *p = sf_req_room(&q, wire_learn_concept_size(0, DIM + 1));
    q.len += wire_encode_learn_concept(p, 0, id, 1, 1, NULL, 0, e, DIM + 1);
    q.ops++;
    wire_request_header_init((wire_request_header *)q.words, 0, 7, 1, 1);
    wire_limits lim = {.max_message = 1 << 20, .max_content = 1 << 20,
                       .max_batch = 16, .vector_dim = DIM + 1};
    wire_request w;
    uint32_t failed;
    const char *why;
    assert_int_equal(wire_request_decode(q.words, q.len, &lim, &w, &failed, &why), 0);
    coord_apply_result res;
    assert_int_equal(coord_store_apply(s, &w, &res, &err), SUTRA_EDIM);
    assert_int_equal(res.failed_op, 0);
    assert_memory_equal(err.message, "P-OP-3:", 7);
    sf_req_free(&q);
    coord_store_close(s, true);
}

typedef struct poller {
    const coord_store *s;
    int stop;                 /* atomic */
    uint64_t last_gen;
    bool went_back;
    uint64_t syncs_at_open;
} poller;

static void *poll_stats(void *arg)
{
    poller *p = arg;
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        coord_store_stats st;
        coord_store_stats_get(p->s, &st);
        if (st.generation < p->last_gen)
            p->went_back = true;
        p->last_gen = st.generation;
    }
    return NULL;
}

static void test_store_stats_from_another_thread(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    poller p = {.s = s};
    coord_store_stats st0;
    coord_store_stats_get(s, &st0);
    p.syncs_at_open = st0.syncs;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, poll_stats, &p), 0);
    for (uint64_t g = 0; g < 20; g++)
        commit_many(s, g * 10, g * 10 + 10, g + 1);
    __atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    assert_false(p.went_back);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    assert_int_equal(st.generation, 20);
    assert_int_equal(st.node_count, 200);
    assert_int_equal(st.syncs - p.syncs_at_open, 20); /* one per commit */
    coord_store_close(s, true);
}

typedef struct visits {
    uint64_t request_no[16];
    uint64_t generation[16];
    int n;
} visits;

static void visit(void *ctx, const layout_commit_entry *e, uint64_t gen)
{
    visits *v = ctx;
    assert_true(v->n < 16);
    v->request_no[v->n] = e->request_no;
    v->generation[v->n] = gen;
    v->n++;
}

static void test_store_recent_commits_newest_first(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    coord_apply_result res;
    coord_error err = {0};
    uint64_t no = 1;
    for (int g = 0; g < 3; g++) {
        for (int r = 0; r < 2; r++) {
            sf_req q = {0};
            req_learn(&q, no, 1, NULL, NULL, 0);
            assert_int_equal(coord_store_apply(s, req_done(&q, 7, no), &res, &err), 0);
            sf_req_free(&q);
            no++;
        }
        assert_int_equal(coord_store_commit(s, false, NULL, &err), 0);
    }
    assert_false(coord_store_synced(s));
    assert_int_equal(coord_store_sync(s, &err), 0);
    assert_true(coord_store_synced(s));
    coord_store_close(s, true);
    s = sf_open(f->path, DIM, RESERVE, NULL);

    visits v = {0};
    assert_int_equal(coord_store_recent_commits(s, 100, visit, &v), 0);
    assert_int_equal(v.n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(v.request_no[i], 6 - i);
        assert_int_equal(v.generation[i], 3 - i / 2);
    }
    visits few = {0};
    assert_int_equal(coord_store_recent_commits(s, 3, visit, &few), 0);
    assert_int_equal(few.n, 3);
    assert_int_equal(few.request_no[2], 4);
    coord_store_close(s, true);
}

/* ---- new node entries (store_commit.c, write_new_nodes) --------------- */

/* The POSIX io, also noting the address of every word stored through the
 * mapping (up to `cap` of them). */
typedef struct store_log {
    sf_fault_io f; /* first: the store sees f.io */
    uintptr_t *addr;
    size_t count, cap;
    bool changes_only; /* log only stores of a value other than the word's */
} store_log;

static int store_log_store64(coord_io *io, uint64_t *w, uint64_t v)
{
    store_log *l = (store_log *)(void *)io;
    if (l->count < l->cap && (!l->changes_only || *w != v))
        l->addr[l->count++] = (uintptr_t)w;
    return sf_fault_store64(io, w, v);
}

/* Whether the store's mapping offset `off` lies inside the entry of a node
 * in [first, end). */
static bool in_entries(const sf_view *v, uint64_t off, uint32_t first,
                       uint32_t end)
{
    for (uint32_t n = first; n < end; n++) {
        uint64_t e = (uint64_t)((const uint8_t *)sf_node_of(v, n) - v->map);
        if (off >= e && off < e + sizeof(layout_node))
            return true;
    }
    return false;
}

/* The entries of a group's new nodes are written whole as file bytes:
 * 3,100 new ids spanning node chunks 0..2 (two of them allocated by the
 * group) and a doubled hash table, one of them learned and forgotten in the
 * same group, beside a re-learn of an existing id.  Every new entry holds
 * its id, first_seq and head, its other words zero; no word of a new entry
 * was stored through the mapping, while the existing node's head was; and
 * the same holds after a reopen that recovers from an unclean close. */
static void test_store_new_nodes_written_whole(void **state)
{
    sf_dir *f = *state;
    store_log log = {.f = sf_fault_io_make(), .cap = 1u << 20};
    log.f.io.store64 = store_log_store64;
    log.addr = malloc(log.cap * sizeof(*log.addr));
    assert_non_null(log.addr);
    coord_store *s = sf_open(f->path, DIM, RESERVE, &log.f.io);
    sf_view v = sf_view_open(f->path, RESERVE);
    sf_req q = {0};
    for (uint64_t i = 0; i < 10; i++)
        req_learn(&q, i, 1, "old", NULL, 0);
    apply_commit_as(s, &q, 1, false);
    layout_roots before = sf_roots_of(&v);
    assert_int_equal(before.node_count, 10);

    const float emb[DIM] = {1.0f, 2.0f, 3.0f, 4.0f};
    req_learn(&q, 5, 2, "old, again", NULL, 0);
    for (uint64_t i = 10000; i < 13100; i++)
        req_learn(&q, i, 1, "new", emb, 0);
    req_learn(&q, 20000, 1, "learned, then forgotten", NULL, 0);
    sf_req_forget(&q, 20000);
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(&q, 7, 2), &res, &err), 0);
    log.count = 0;
    coord_commit_info info;
    assert_int_equal(coord_store_commit(s, false, &info, &err), 0);
    sf_req_free(&q);

    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.node_count, 10 + 3101);
    assert_true(r.hash_slots > before.hash_slots);
    assert_int_equal(count_slots(&v, &r), r.node_count);
    for (uint32_t n = 10; n < r.node_count; n++) {
        const layout_node *e = sf_node_of(&v, n);
        const layout_concept *c = rec_at(&v, e->head);
        assert_int_equal(c->node, n);
        assert_memory_equal(c->id, e->id, 16);
        assert_true(e->out_adj == 0 && e->in_adj == 0);
        assert_true(e->reserved[0] == 0 && e->reserved[1] == 0);
        if (c->rec.type == LAYOUT_REC_CONCEPT) {
            assert_int_equal(e->first_seq, c->rec.seq);
            continue;
        }
        assert_int_equal(c->rec.type, LAYOUT_REC_CONCEPT_TOMBSTONE);
        assert_int_equal(find_node(&v, &r, 20000), (int64_t)n);
        assert_int_equal(e->first_seq, rec_at(&v, c->prev)->rec.seq);
    }
    for (uint64_t i = 10000; i < 13100; i += 97)
        assert_memory_equal(v.map + head_of(&v, i)->embedding_off, emb,
                            sizeof(emb));

    /* The log saw the stores: the re-learned node's head among them. */
    uint64_t old_head = (uint64_t)((const uint8_t *)&sf_node_of(&v, 5)->head - v.map);
    bool saw_old_head = false;
    for (size_t k = 0; k < log.count; k++) {
        uint64_t off = (uint64_t)((const uint8_t *)log.addr[k] - log.f.base);
        assert_false(in_entries(&v, off, 10, (uint32_t)r.node_count));
        saw_old_head |= off == old_head;
    }
    assert_true(saw_old_head);
    assert_memory_equal(v.map + head_of(&v, 5)->content_off, "old, again", 10);

    coord_store_close(s, false); /* unclean: the next open recovers */
    s = sf_open(f->path, DIM, RESERVE, NULL);
    layout_roots again = sf_roots_of(&v);
    assert_int_equal(again.node_count, r.node_count);
    assert_int_equal(count_slots(&v, &again), again.node_count);
    for (uint64_t i = 10000; i < 13100; i++)
        assert_int_equal(head_of(&v, i)->rec.type, LAYOUT_REC_CONCEPT);
    coord_store_close(s, true);
    sf_view_close(&v);
    free(log.addr);
}

/* F-LOG-4: the bytes between a version's content and its 64-aligned
 * embedding are zero, however the group buffer was used before: groups
 * of versions with embeddings and contents of every length mod 64, so that
 * each group's gaps lie over the previous group's embedding bytes. */
static void test_store_embedding_gap_is_zero(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    const float emb[DIM] = {1.1f, -2.3f, 3.7f, 1e30f}; /* no zero bytes */
    char content[80];
    memset(content, 'c', sizeof(content));
    for (uint64_t group = 0; group < 4; group++) {
        sf_req q = {0};
        for (uint64_t i = 0; i < 64; i++) {
            uint8_t id[16];
            sf_make_id(group * 100 + i, id);
            sf_req_learn_id(&q, id, 0, 1, content, (uint32_t)(i + group) % 80,
                            emb, DIM);
        }
        apply_commit_as(s, &q, group + 1, false);
    }
    for (uint64_t group = 0; group < 4; group++) {
        for (uint64_t i = 0; i < 64; i++) {
            const layout_concept *c = head_of(&v, group * 100 + i);
            uint64_t head = sf_node_of(&v, c->node)->head;
            uint64_t gap = head + sizeof(layout_concept) + c->content_len;
            for (uint64_t b = gap; b < c->embedding_off; b++)
                assert_int_equal(v.map[b], 0);
            assert_memory_equal(v.map + c->embedding_off, emb, sizeof(emb));
        }
    }
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* A group larger than the buffer the store keeps between groups (16 MiB):
 * 20 ops of 1 MiB, then a small group in the buffer allocated again. */
static void test_store_group_larger_than_the_kept_buffer(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    const uint32_t mib = 1u << 20;
    uint8_t *content = malloc(mib);
    assert_non_null(content);
    sf_req big = {0};
    for (uint32_t k = 0; k < 20; k++) {
        memset(content, 'a' + (int)k, mib);
        uint8_t id[16];
        sf_make_id(610 + k, id);
        sf_req_learn_id(&big, id, 0, 1, content, mib, NULL, 0);
    }
    apply_commit_as(s, &big, 1, false);
    sf_req small = {0};
    req_learn(&small, 600, 1, "after the large group", NULL, 0);
    apply_commit_as(s, &small, 2, true);
    assert_memory_equal(v.map + head_of(&v, 600)->content_off,
                        "after the large group", 21);
    for (uint32_t k = 0; k < 20; k++) {
        const layout_concept *c = head_of(&v, 610 + k);
        assert_int_equal(c->content_len, mib);
        memset(content, 'a' + (int)k, mib);
        assert_memory_equal(v.map + c->content_off, content, mib);
    }
    free(content);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* A kill -9 leaves every word stored, and the next open replays the log
 * past durable_end (F-REC-5), in which one node may have several versions
 * and its lists several blocks.  Its head and newest-block words already
 * name the newest: the replay must not store them back to older ones on
 * the way, or a reader of the current generation gets an older version or
 * list for the moment.  After a kill no word of the data area changes
 * value at all. */
static void test_store_tail_replay_never_moves_a_head_back(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    sf_req q = {0};
    for (uint64_t k = 0; k < 5; k++) { /* unsynced: all past durable_end */
        char text[32];
        snprintf(text, sizeof(text), "version %llu", (unsigned long long)k);
        req_learn(&q, 1, 1.0f, text, NULL, 0);
        req_learn(&q, 100 + k, 1.0f, "another", NULL, 0);
        for (uint64_t t = 0; t < 8; t++) { /* list 1 grows block by block */
            uint8_t from[16], to[16];
            sf_make_id(1, from);
            sf_make_id(100 + k, to);
            q.len += wire_encode_association(sf_req_room(&q, 48), WIRE_OP_LEARN_ASSOCIATION,
                                       from, to, (uint32_t)t + 1, 0.5f);
            q.ops++;
        }
        apply_commit_as(s, &q, 10 + k, false);
    }
    layout_roots r = sf_roots_of(&v);
    int64_t n = find_node(&v, &r, 1);
    assert_true(n >= 0);
    const layout_node *e = sf_node_of(&v, (uint32_t)n);
    uint64_t newest = e->head, newest_block = e->out_adj;
    assert_true(newest_block > ((const layout_header *)v.map)->durable_end);
    assert_true(((const layout_header *)v.map)->durable_end < rec_at(&v, newest)->prev);
    coord_store_close(s, false); /* as a kill leaves it */

    store_log log = {.f = sf_fault_io_make(), .cap = 1u << 16,
                     .changes_only = true};
    log.f.io.store64 = store_log_store64;
    log.addr = malloc(log.cap * sizeof(*log.addr));
    assert_non_null(log.addr);
    s = sf_open(f->path, DIM, RESERVE, &log.f.io);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    assert_false(st.rebuilt_at_open); /* the tail replay, not a rebuild */
    for (size_t k = 0; k < log.count; k++) {
        uint64_t off = (uint64_t)((const uint8_t *)log.addr[k] - log.f.base);
        if (off >= LAYOUT_DATA_START)
            print_error("word at %llu changed (head word %llu, "
                        "out_adj word %llu)\n", (unsigned long long)off,
                        (unsigned long long)((const uint8_t *)&e->head - v.map),
                        (unsigned long long)((const uint8_t *)&e->out_adj - v.map));
        assert_true(off < LAYOUT_DATA_START);
    }
    assert_int_equal(e->head, newest);
    assert_int_equal(e->out_adj, newest_block);
    assert_memory_equal(v.map + head_of(&v, 1)->content_off, "version 4", 9);
    coord_store_close(s, true);
    sf_view_close(&v);
    free(log.addr);
}

/* F-REC-5 checks the tail's commit chain from its first commit on: a
 * commit record that checks (F-LOG-6) but links to another commit than the
 * one before it (F-COM-2) is not a generation to keep.  In one file the
 * tail's first commit is spoiled (it must continue durable_commit, F-HDR-8),
 * in another a later one; each open falls back (F-REC-8, F-REC-6) and
 * recovers the generation before the spoiled one. */
static void test_store_tail_commit_chain_checked(void **state)
{
    sf_dir *f = *state;
    for (int later = 0; later < 2; later++) {
        unlink(f->path);
        coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
        sf_view v = sf_view_open(f->path, RESERVE);
        uint64_t commit_of[8] = {0};
        for (uint64_t g = 1; g <= 7; g++) {
            sf_req q = {0};
            req_learn(&q, g, 1.0f, "chained", NULL, 0);
            apply_commit_as(s, &q, g, g <= 3); /* the tail: unsynced ones */
            commit_of[g] = sf_roots_of(&v).last_commit;
        }
        uint64_t durable = ((const layout_header *)v.map)->durable_end;
        uint64_t first = 1;
        while (commit_of[first] < durable)
            first++;
        assert_true(first >= 2 && first <= 4);
        uint64_t spoiled = first + (later ? 2 : 0);
        coord_store_close(s, false); /* unclean: the tail is checked */

        const layout_commit *c =
            (const layout_commit *)(v.map + commit_of[spoiled]);
        uint32_t len = c->rec.length;
        layout_commit *copy = malloc(len);
        memcpy(copy, c, len);
        copy->prev_commit = commit_of[spoiled - 2]; /* earlier, but not its own */
        layout_rec_seal(&copy->rec);
        int fd = open(f->path, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, copy, len, (off_t)commit_of[spoiled]),
                         (ssize_t)len);
        close(fd);
        free(copy);

        s = sf_open(f->path, DIM, RESERVE, NULL);
        layout_roots r = sf_roots_of(&v);
        if (r.generation != spoiled - 1)
            print_error("spoiled generation %llu, recovered %llu\n",
                        (unsigned long long)spoiled,
                        (unsigned long long)r.generation);
        assert_int_equal(r.generation, spoiled - 1);
        assert_int_equal(r.concept_count, spoiled - 1);
        coord_store_close(s, true);
        sf_view_close(&v);
    }
}

/* P-IDEM-1 at the committer: a request number 1024 or more below the
 * client's newest is refused.  Applying it could overwrite the newest
 * one's duplicate entry (they share a slot), and a resend of the newest
 * would then be applied a second time. */
static void test_store_request_far_below_the_newest_is_refused(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    coord_dedup *dd = NULL;
    coord_counters counters = {0};
    coord_committer *c = NULL;
    coord_committer_config cfg = {.sync_policy = COORD_SYNC_NONE};
    assert_int_equal(coord_dedup_create(COORD_DEDUP_WINDOW, 16, &dd), 0);
    assert_int_equal(coord_committer_start(s, dd, &counters, &cfg, &c), 0);
    static const uint64_t nos[] = {5000, 5000 - 1024, 5000, 5000 - 1023};
    static const int32_t want[] = {0, SUTRA_EPROTO, 0, 0};
    static const uint64_t ids[] = {200, 201, 200, 202};
    for (int i = 0; i < 4; i++) {
        cf_waiter w = {0};
        sf_req q = {0};
        req_learn(&q, ids[i], 1.0f, "numbered", NULL, 0);
        cf_submit(c, &w, req_done(&q, 7, nos[i]));
        assert_int_equal(cf_wait(&w, 5000), want[i]);
        sf_req_free(&q);
    }
    assert_int_equal(coord_committer_stop(c), 0);
    coord_dedup_destroy(dd);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.version_count, 2); /* 200 once, 202; never 201 */
    assert_true(find_node(&v, &r, 201) < 0);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* ---- syncs that overlap commits (the interval policy) ------------------ */

/* F-HDR-7 for a sync that overlaps commits: the durable words name what
 * was published when it began, and the store counts as synced only once a
 * sync begun after the last commit has returned. */
static void test_store_sync_ticket_names_its_generation(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    const layout_header *h = (const layout_header *)v.map;
    sf_req r = {0};
    req_learn(&r, 1, 1.0f, "one", NULL, 0);
    apply_commit_as(s, &r, 1, false);
    layout_roots at_begin = sf_roots_of(&v);
    coord_sync_ticket t;
    coord_store_sync_begin(s, &t);
    req_learn(&r, 2, 1.0f, "two", NULL, 0);
    apply_commit_as(s, &r, 2, false); /* published while the sync runs */
    coord_error err = {0};
    assert_int_equal(coord_store_sync_end(s, &t, coord_sync_run(&t), &err), 0);
    assert_true(at_begin.committed_end < sf_roots_of(&v).committed_end);
    assert_int_equal(h->durable_end, at_begin.committed_end);
    assert_int_equal(h->durable_commit, at_begin.last_commit);
    assert_false(coord_store_synced(s));

    coord_store_sync_begin(s, &t);
    assert_int_equal(coord_store_sync_end(s, &t, coord_sync_run(&t), &err), 0);
    assert_int_equal(h->durable_end, sf_roots_of(&v).committed_end);
    assert_int_equal(h->durable_commit, sf_roots_of(&v).last_commit);
    assert_true(coord_store_synced(s));

    /* a failed one turns the store read-only, as coord_store_sync() does */
    req_learn(&r, 3, 1.0f, "three", NULL, 0);
    apply_commit_as(s, &r, 3, false);
    coord_store_sync_begin(s, &t);
    assert_int_equal(coord_store_sync_end(s, &t, EIO, &err), EIO);
    assert_non_null(strstr(err.message, "fdatasync"));
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    assert_true(st.read_only);
    assert_false(coord_store_synced(s));
    coord_store_close(s, false);
    sf_view_close(&v);
}

/* A sync that can be held or failed, and a count of those that returned
 * (atomics: the committer's sync thread calls it while the test sets them). */
static _Atomic int sync_hold, sync_held, sync_fail, syncs_returned;

static int held_sync(coord_io *io, int fd)
{
    while (atomic_load(&sync_hold)) {
        atomic_store(&sync_held, 1);
        usleep(1000);
    }
    int rc = atomic_load(&sync_fail) ? EIO : sf_fault_sync(io, fd);
    atomic_fetch_add(&syncs_returned, 1);
    return rc;
}

static int held_sync_range(coord_io *io, int fd, const void *addr,
                           uint64_t off, uint64_t len)
{
    while (atomic_load(&sync_hold)) {
        atomic_store(&sync_held, 1);
        usleep(1000);
    }
    int rc = atomic_load(&sync_fail) ? EIO
                                     : sf_fault_sync_range(io, fd, addr, off,
                                                           len);
    atomic_fetch_add(&syncs_returned, 1);
    return rc;
}

static void wait_until_held(void)
{
    for (int i = 0; i < 5000 && !atomic_load(&sync_held); i++)
        usleep(1000);
    assert_true(atomic_load(&sync_held));
}

/* Under --sync interval the committer acknowledges writes while the
 * interval's fdatasync runs; once the next sync is due it waits for the one
 * still running (the bound on an acknowledged write's exposure), and so
 * does a flush; once a sync has failed, the next group is refused
 * (SUTRA_EREADONLY). */
static void test_store_interval_sync_beside_commits(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    fio.io.sync = held_sync;
    fio.io.sync_range = held_sync_range;
    coord_store *s = sf_open(f->path, DIM, RESERVE, &fio.io);
    sf_view v = sf_view_open(f->path, RESERVE);
    const layout_header *h = (const layout_header *)v.map;
    coord_dedup *dd = NULL;
    coord_counters counters = {0};
    coord_committer *c = NULL;
    coord_committer_config cfg = {.sync_policy = COORD_SYNC_INTERVAL,
                                  .sync_interval_ms = 200};
    assert_int_equal(coord_dedup_create(64, 16, &dd), 0);
    assert_int_equal(coord_committer_start(s, dd, &counters, &cfg, &c), 0);
    enum { N = 6 };
    cf_waiter *w = calloc(N, sizeof(*w));
    sf_req msg[N] = {{0}};
    atomic_store(&sync_held, 0);
    atomic_store(&sync_fail, 0);
    atomic_store(&syncs_returned, 0);
    atomic_store(&sync_hold, 1);

    req_learn(&msg[0], 1, 1.0f, "before the sync", NULL, 0);
    cf_submit(c, &w[0], req_done(&msg[0], 7, 1));
    assert_int_equal(cf_wait(&w[0], 5000), 0);
    wait_until_held(); /* the interval's sync began */

    req_learn(&msg[1], 2, 1.0f, "during the sync", NULL, 0);
    cf_submit(c, &w[1], req_done(&msg[1], 7, 2));
    assert_int_equal(cf_wait(&w[1], 5000), 0);
    assert_int_equal(atomic_load(&syncs_returned), 0);

    usleep(300 * 1000); /* the next sync is due: the committer waits */
    req_learn(&msg[2], 3, 1.0f, "after the interval", NULL, 0);
    cf_submit(c, &w[2], req_done(&msg[2], 7, 3));
    usleep(100 * 1000);
    assert_false(atomic_load(&w[2].done));
    assert_int_equal(atomic_load(&counters.sync_waits), 1);
    atomic_store(&sync_held, 0);
    atomic_store(&sync_hold, 0);
    assert_int_equal(cf_wait(&w[2], 5000), 0);

    /* a flush waits for the sync in flight, then syncs everything */
    atomic_store(&sync_hold, 1);
    wait_until_held();
    uint64_t before_flush = sf_roots_of(&v).committed_end;
    req_flush(&msg[3]);
    cf_submit(c, &w[3], req_done(&msg[3], 7, 4));
    usleep(100 * 1000);
    assert_false(atomic_load(&w[3].done));
    assert_int_equal(atomic_load(&counters.sync_waits), 2);
    atomic_store(&sync_hold, 0);
    assert_int_equal(cf_wait(&w[3], 5000), 0);
    /* the flush's own generation is synced by fdatasync, which names the
     * end before it (F-HDR-7) */
    assert_int_equal(h->durable_end, before_flush);

    /* the next interval sync fails: no write is acknowledged after it */
    atomic_store(&sync_fail, 1);
    req_learn(&msg[4], 4, 1.0f, "before the failed sync", NULL, 0);
    cf_submit(c, &w[4], req_done(&msg[4], 7, 5));
    assert_int_equal(cf_wait(&w[4], 5000), 0);
    int before = atomic_load(&syncs_returned);
    for (int i = 0; i < 5000 && atomic_load(&syncs_returned) == before; i++)
        usleep(1000);
    assert_true(atomic_load(&syncs_returned) > before);
    usleep(50 * 1000);
    req_learn(&msg[5], 5, 1.0f, "after the failed sync", NULL, 0);
    cf_submit(c, &w[5], req_done(&msg[5], 7, 6));
    assert_int_equal(cf_wait(&w[5], 5000), SUTRA_EREADONLY);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    assert_true(st.read_only);

    /* the last sync at a stop is refused too: the stop reports it */
    assert_int_equal(coord_committer_stop(c), SUTRA_EREADONLY);
    coord_dedup_destroy(dd);
    for (int i = 0; i < N; i++)
        sf_req_free(&msg[i]);
    free(w);
    coord_store_close(s, false);
    sf_view_close(&v);
}

/* Interval syncs start every MS under a queue that never empties too,
 * when every group closes because it is full: the bound on what an
 * acknowledged write waits for must not depend on the committer idling.
 * (Each group's write takes at least 2 ms here, so the queue stays
 * non-empty for 300 ms or more.) */
static _Atomic int syncs_counted;

static int counted_sync(coord_io *io, int fd)
{
    atomic_fetch_add(&syncs_counted, 1);
    return sf_fault_sync(io, fd);
}

static int counted_sync_range(coord_io *io, int fd, const void *addr,
                              uint64_t off, uint64_t len)
{
    atomic_fetch_add(&syncs_counted, 1);
    return sf_fault_sync_range(io, fd, addr, off, len);
}

static int slow_pwrite(coord_io *io, int fd, const void *b, size_t n,
                       uint64_t off)
{
    usleep(2000);
    return sf_fault_pwrite(io, fd, b, n, off);
}

static void test_store_interval_syncs_under_a_full_queue(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    fio.io.sync = counted_sync;
    fio.io.sync_range = counted_sync_range;
    fio.io.pwrite = slow_pwrite;
    coord_store *s = sf_open(f->path, DIM, RESERVE, &fio.io);
    coord_dedup *dd = NULL;
    coord_counters counters = {0};
    coord_committer *c = NULL;
    coord_committer_config cfg = {.sync_policy = COORD_SYNC_INTERVAL,
                                  .sync_interval_ms = 20, .group_max_ops = 4};
    assert_int_equal(coord_dedup_create(COORD_DEDUP_WINDOW, 16, &dd), 0);
    assert_int_equal(coord_committer_start(s, dd, &counters, &cfg, &c), 0);
    enum { N = 600 };
    cf_waiter *w = calloc(N, sizeof(*w));
    wire_request *wr = calloc(N, sizeof(*wr));
    sf_req q = {0};
    req_learn(&q, 1, 1.0f, "a full queue", NULL, 0);
    const wire_request *base = req_done(&q, 7, 1);
    atomic_store(&syncs_counted, 0);
    for (int i = 0; i < N; i++) { /* consecutive numbers, one body */
        wr[i] = *base;
        wr[i].header.request_no = (uint64_t)i + 1;
        cf_submit(c, &w[i], &wr[i]);
    }
    int while_busy = 0;
    while (atomic_load(&counters.queue_depth) > 0) {
        while_busy = atomic_load(&syncs_counted);
        usleep(1000);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(cf_wait(&w[i], 10000), 0);
    print_message("%d interval syncs while the queue was never empty\n",
                  while_busy);
    assert_true(while_busy >= 3);
    assert_int_equal(coord_committer_stop(c), 0);
    coord_dedup_destroy(dd);
    sf_req_free(&q);
    free(wr);
    free(w);
    coord_store_close(s, true);
}

/* Whole-file syncs and syncs of a range, with the last range's bounds. */
static _Atomic int whole_syncs, range_syncs;
static _Atomic uint64_t range_from, range_len;

static int whole_counted(coord_io *io, int fd)
{
    atomic_fetch_add(&whole_syncs, 1);
    return sf_fault_sync(io, fd);
}

static int range_counted(coord_io *io, int fd, const void *addr, uint64_t off,
                         uint64_t len)
{
    atomic_store(&range_from, off);
    atomic_store(&range_len, len);
    atomic_fetch_add(&range_syncs, 1);
    return sf_fault_sync_range(io, fd, addr, off, len);
}

static void wait_for_count(_Atomic int *n, int at_least, int ms)
{
    for (int i = 0; i < ms && atomic_load(n) < at_least; i++)
        usleep(1000);
    assert_true(atomic_load(n) >= at_least);
}

/* Under --sync interval, in a file with a durable checkpoint, the syncs
 * between checkpoints make the log written since the last one durable by
 * range and leave the durable words alone (F-COM-6); a whole-file sync
 * follows within the checkpoint interval and names the generation. */
static void test_store_interval_syncs_the_log_between_checkpoints(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    fio.io.sync = whole_counted;
    fio.io.sync_range = range_counted;
    coord_store *s = sf_open(f->path, DIM, RESERVE, &fio.io);
    sf_view v = sf_view_open(f->path, RESERVE);
    const layout_header *h = (const layout_header *)v.map;
    coord_error err = {0};
    sf_req q = {0};
    req_learn(&q, 9, 1.0f, "a first generation", NULL, 0);
    apply_commit(s, &q, 100);
    /* the second finds the first one's checkpoint durable (F-HDR-8) */
    for (int i = 0; i < 2; i++)
        assert_int_equal(coord_store_sync(s, &err), 0);
    uint64_t checkpoint_end = h->durable_end;
    assert_int_equal(checkpoint_end, sf_roots_of(&v).committed_end);
    coord_dedup *dd = NULL;
    coord_counters counters = {0};
    coord_committer *c = NULL;
    coord_committer_config cfg = {.sync_policy = COORD_SYNC_INTERVAL,
                                  .sync_interval_ms = 20,
                                  .checkpoint_ms = 600};
    assert_int_equal(coord_dedup_create(64, 16, &dd), 0);
    atomic_store(&whole_syncs, 0);
    atomic_store(&range_syncs, 0);
    assert_int_equal(coord_committer_start(s, dd, &counters, &cfg, &c), 0);
    cf_waiter w = {0};
    req_learn(&q, 1, 1.0f, "synced by range", NULL, 0);
    cf_submit(c, &w, req_done(&q, 7, 1));
    assert_int_equal(cf_wait(&w, 5000), 0);
    wait_for_count(&range_syncs, 1, 400);
    uint64_t end = sf_roots_of(&v).committed_end;
    assert_int_equal(atomic_load(&range_from), checkpoint_end);
    assert_int_equal(atomic_load(&range_len), end - checkpoint_end);
    assert_int_equal(atomic_load(&whole_syncs), 0);
    assert_int_equal(h->durable_end, checkpoint_end);

    wait_for_count(&whole_syncs, 1, 2000); /* the checkpoint */
    for (int i = 0; i < 1000 && h->durable_end != end; i++)
        usleep(1000);
    assert_int_equal(h->durable_end, end);
    assert_int_equal(atomic_load(&range_syncs), 1); /* nothing new since */
    assert_int_equal(coord_committer_stop(c), 0);
    coord_dedup_destroy(dd);
    sf_req_free(&q);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* coord_store_sync_begin_log(): only in a checkpointed file, only with
 * log to sync, and never over a node chunk allocated since the last sync
 * (its header word goes with a whole-file sync, F-NODE-2). */
static void test_store_log_sync_only_where_it_can(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, DIM, RESERVE, NULL);
    coord_sync_ticket t;
    coord_error err = {0};
    sf_req q = {0};
    uint64_t no = 1;
    req_learn(&q, 0, 1.0f, "first", NULL, 0);
    apply_commit_as(s, &q, no++, false);
    assert_false(coord_store_sync_begin_log(s, &t)); /* no checkpoint yet */
    assert_null(t.log_addr);
    assert_int_equal(coord_store_sync_end(s, &t, coord_sync_run(&t), &err), 0);
    assert_int_equal(coord_store_sync(s, &err), 0); /* now one is durable */
    assert_false(coord_store_sync_begin_log(s, &t)); /* nothing to sync */

    req_learn(&q, 1, 1.0f, "second", NULL, 0);
    apply_commit_as(s, &q, no++, false);
    assert_false(coord_store_log_durable(s));
    assert_true(coord_store_sync_begin_log(s, &t));
    assert_non_null(t.log_addr);
    assert_int_equal(coord_store_sync_end(s, &t, coord_sync_run(&t), &err), 0);
    assert_true(coord_store_log_durable(s));
    assert_false(coord_store_synced(s)); /* the words wait */

    /* past the first node chunk (LAYOUT_NODE_CHUNK0 nodes): chunk 1 */
    for (uint64_t i = 2; i < LAYOUT_NODE_CHUNK0 + 8; i++)
        req_learn(&q, i, 1.0f, "more", NULL, 0);
    apply_commit_as(s, &q, no++, false);
    assert_false(coord_store_sync_begin_log(s, &t));
    assert_null(t.log_addr);
    assert_int_equal(coord_store_sync_end(s, &t, coord_sync_run(&t), &err), 0);
    assert_true(coord_store_synced(s));
    sf_req_free(&q);
    coord_store_close(s, true);
}

#define STORE_TEST(t) cmocka_unit_test_setup_teardown(t, setup, sf_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_store_create_and_reopen),
        STORE_TEST(test_store_learn_forget_relearn_chain),
        STORE_TEST(test_store_strength_only_relearn_shares),
        STORE_TEST(test_store_group_sees_staged_state),
        STORE_TEST(test_store_batch_is_atomic),
        STORE_TEST(test_store_rejects_bad_ops),
        STORE_TEST(test_store_hash_growth_keeps_every_id),
        STORE_TEST(test_store_hash_filled_ahead),
        STORE_TEST(test_store_recovery_refills_a_table_filled_ahead),
        STORE_TEST(test_store_rebuild_past_a_table_filled_ahead),
        STORE_TEST(test_store_reverify_keeps_the_table_filled_ahead),
        STORE_TEST(test_store_restart_takes_up_the_table_filled_ahead),
        STORE_TEST(test_store_near_full_after_reopen_in_grow_window),
        STORE_TEST(test_store_hash_doubling_pause_1m),
        STORE_TEST(test_store_recovers_crash_before_meta),
        STORE_TEST(test_store_recovers_torn_meta),
        STORE_TEST(test_store_failed_commit_does_not_come_back),
        STORE_TEST(test_store_write_failure_drops_group),
        STORE_TEST(test_store_full_file),
        STORE_TEST(test_store_hash_growth_past_the_end),
        STORE_TEST(test_store_both_meta_slots_corrupt),
        STORE_TEST(test_store_reopen_with_other_dim),
        STORE_TEST(test_store_recent_commits_newest_first),
        STORE_TEST(test_store_stats_from_another_thread),
        STORE_TEST(test_store_new_nodes_written_whole),
        STORE_TEST(test_store_group_larger_than_the_kept_buffer),
        STORE_TEST(test_store_embedding_gap_is_zero),
        STORE_TEST(test_store_tail_replay_never_moves_a_head_back),
        STORE_TEST(test_store_tail_commit_chain_checked),
        STORE_TEST(test_store_request_far_below_the_newest_is_refused),
        STORE_TEST(test_store_sync_ticket_names_its_generation),
        STORE_TEST(test_store_interval_sync_beside_commits),
        STORE_TEST(test_store_interval_syncs_under_a_full_queue),
        STORE_TEST(test_store_interval_syncs_the_log_between_checkpoints),
        STORE_TEST(test_store_log_sync_only_where_it_can),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
