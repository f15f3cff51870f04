/*
 * tests/unit/test_store_assoc.c — associations in the coordinator's storage
 * engine: ASSOC records, adjacency entries in both endpoints' lists,
 * superseding on re-learn and forget, forgetting a concept's edges, batch
 * rules, ADJ_BLOCK growth, crash recovery of the adjacency words and the
 * writer's in-memory key index (docs/format.md F-ASSOC-*, F-ADJ-*, F-REC-4).
 *
 * As in test_store.c, every check of what the store wrote reads the file
 * through a separate read-only mapping and the layout/format.h structs, the
 * way a reader process does.  Crashes are simulated with a fault-injecting
 * coord_io that stops the store before its meta slot is written.  The
 * directory, requests, fault io and view are tests/unit/store_fixture.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/committer.h"
#include "tests/unit/committer_fixture.h"
#include "coordinator/dedup.h"
#include "coordinator/io.h"
#include "coordinator/store.h"
#include "coordinator/store_internal.h" /* index memory, for the report */
#include "layout/format.h"
#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/unit/store_fixture.h"

#define RESERVE (1ull << 34)

/* The store is opened with vector_dim 0: these tests learn no embeddings. */

static int setup(void **state)
{
    return sf_setup(state, "/tmp/sutra-assoc-XXXXXX");
}

/* ---- requests ------------------------------------------------------------ */

static void req_learn(sf_req *r, uint64_t i)
{
    uint8_t id[16];
    sf_make_id(i, id);
    sf_req_learn_id(r, id, 0, 1.0f, NULL, 0, NULL, 0);
}

static void req_edge(sf_req *r, uint16_t opcode, uint64_t from, uint64_t to,
                     uint32_t type, float confidence)
{
    uint8_t a[16], b[16];
    sf_make_id(from, a);
    sf_make_id(to, b);
    r->len += wire_encode_association(sf_req_room(r, sizeof(wire_association)),
                                      opcode, a, b, type, confidence);
    r->ops++;
}

static void req_assoc(sf_req *r, uint64_t from, uint64_t to, uint32_t type,
                      float confidence)
{
    req_edge(r, WIRE_OP_LEARN_ASSOCIATION, from, to, type, confidence);
}

static void req_unassoc(sf_req *r, uint64_t from, uint64_t to, uint32_t type)
{
    req_edge(r, WIRE_OP_FORGET_ASSOCIATION, from, to, type, 0.0f);
}

static const wire_request *req_done(sf_req *r, uint64_t no)
{
    static const wire_limits lim = {.max_message = 1ull << 30,
                                    .max_content = 1u << 20,
                                    .max_batch = 1u << 21, .vector_dim = 0};
    return sf_req_done(r, &lim, 7, no);
}

static uint64_t next_no = 1;

static void apply_only(coord_store *s, sf_req *r)
{
    coord_apply_result res;
    coord_error err = {0};
    int rc = coord_store_apply(s, req_done(r, next_no++), &res, &err);
    if (rc)
        print_error("apply: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    sf_req_free(r);
}

static coord_commit_info commit(coord_store *s)
{
    coord_commit_info info;
    coord_error err = {0};
    int rc = coord_store_commit(s, false, &info, &err);
    if (rc)
        print_error("commit: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    return info;
}

static coord_commit_info apply_commit(coord_store *s, sf_req *r)
{
    apply_only(s, r);
    return commit(s);
}

/* Apply a request that must fail; returns its failed_op. */
static uint32_t apply_fails(coord_store *s, sf_req *r, int code)
{
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(r, next_no++), &res, &err),
                     code);
    /* P-REP-4: a request that broke a rule names it */
    assert_memory_equal(err.message, "P-OP-", 5);
    sf_req_free(r);
    return res.failed_op;
}

static void learn_range(coord_store *s, uint64_t from, uint64_t to)
{
    sf_req q = {0};
    for (uint64_t i = from; i < to; i++)
        req_learn(&q, i);
    apply_commit(s, &q);
}

/* ---- the file, read as a reader does ------------------------------------ */

/* Node number of id i at the published generation (asserted found). */
static uint32_t node_id(const sf_view *v, uint64_t i)
{
    layout_roots r = sf_roots_of(v);
    uint8_t id[16];
    sf_make_id(i, id);
    const uint64_t *slots = (const uint64_t *)(v->map + r.hash_root + 64);
    uint64_t h = layout_id_hash(id), mask = r.hash_slots - 1;
    for (uint64_t p = 0; p <= mask; p++) {
        uint64_t w = slots[(h + p) & mask];
        assert_true(w != 0);
        uint32_t n = (uint32_t)w - 1;
        if ((uint32_t)(w >> 32) == (uint32_t)(h >> 32) && n < r.node_count &&
            memcmp(sf_node_of(v, n)->id, id, 16) == 0)
            return n;
    }
    fail();
    return 0;
}

static uint64_t head_word(const sf_view *v, uint32_t node, uint32_t dir)
{
    const layout_node *e = sf_node_of(v, node);
    return __atomic_load_n(dir == LAYOUT_ADJ_OUT ? &e->out_adj : &e->in_adj,
                           __ATOMIC_ACQUIRE);
}

/* Check one ADJ_BLOCK's descriptor (F-ADJ-1) and return it. */
static const layout_region *block_at(const sf_view *v, uint64_t off,
                                     uint32_t node, uint32_t dir)
{
    assert_int_equal(off % 64, 0);
    const layout_region *r = (const layout_region *)(v->map + off);
    assert_int_equal(r->rec.type, LAYOUT_REC_ADJ_BLOCK);
    assert_true(r->rec.flags & LAYOUT_REC_F_REGION);
    assert_true(layout_rec_verify(&r->rec));
    uint64_t bytes = layout_rec_size(&r->rec);
    assert_true(bytes >= 256 && (bytes & (bytes - 1)) == 0);
    assert_int_equal(r->arg0, (uint64_t)node | (uint64_t)dir << 32);
    assert_int_equal(r->arg1, layout_adj_capacity(bytes));
    assert_true(r->arg2 < off);
    return r;
}

static uint64_t block_count(const sf_view *v, uint64_t off)
{
    return __atomic_load_n((const uint64_t *)(v->map + off + LAYOUT_ADJ_COUNT_OFFSET),
                           __ATOMIC_ACQUIRE);
}

/* The entries of a list in position order (oldest first), as covered by
 * the count words: a malloc'd array of pointers, *n entries. */
static const layout_adj_entry **list_entries(const sf_view *v, uint32_t node,
                                             uint32_t dir, uint64_t *n)
{
    uint64_t blocks[64];
    int nb = 0;
    for (uint64_t off = head_word(v, node, dir); off;
         off = block_at(v, off, node, dir)->arg2) {
        assert_true(nb < 64);
        blocks[nb++] = off;
    }
    uint64_t total = 0;
    for (int i = 0; i < nb; i++)
        total += block_count(v, blocks[i]);
    const layout_adj_entry **out = calloc(total + 1, sizeof(*out));
    uint64_t k = 0;
    for (int i = nb - 1; i >= 0; i--) {
        const layout_region *r = block_at(v, blocks[i], node, dir);
        assert_int_equal(r->reserved[0], k); /* entries in older blocks */
        const layout_adj_entry *e =
            (const layout_adj_entry *)(v->map + blocks[i] + LAYOUT_ADJ_ENTRIES_OFFSET);
        for (uint64_t j = 0; j < block_count(v, blocks[i]); j++)
            out[k++] = &e[j];
    }
    for (uint64_t i = 1; i < total; i++) /* F-ADJ-2: seq order */
        assert_true(out[i]->seq >= out[i - 1]->seq);
    *n = total;
    return out;
}

static uint64_t sup_of(const layout_adj_entry *e)
{
    return __atomic_load_n(&e->superseded, __ATOMIC_ACQUIRE);
}

/* Edges of the list visible to a snapshot at last_seq (F-ADJ-3). */
static uint64_t visible_count(const sf_view *v, uint32_t node, uint32_t dir,
                              uint64_t last_seq)
{
    uint64_t n, seen = 0;
    const layout_adj_entry **e = list_entries(v, node, dir, &n);
    for (uint64_t i = 0; i < n; i++)
        seen += layout_adj_visible(e[i], sup_of(e[i]), last_seq);
    free(e);
    return seen;
}

/* The ASSOC or ASSOC_TOMBSTONE record with `seq` in [from, to). */
static const layout_assoc *assoc_record(const sf_view *v, uint64_t from,
                                        uint64_t to, uint64_t seq)
{
    uint64_t off = from;
    while (off < to) {
        const layout_rec *r = (const layout_rec *)(v->map + off);
        if (r->type == LAYOUT_REC_PAD && r->length == 0) {
            off += 8; /* F-LOG-4 */
            continue;
        }
        if ((r->type == LAYOUT_REC_ASSOC || r->type == LAYOUT_REC_ASSOC_TOMBSTONE) &&
            r->seq == seq) {
            assert_true(layout_rec_verify(r));
            return (const layout_assoc *)r;
        }
        off += layout_align_up(layout_rec_size(r), 8);
    }
    fail();
    return NULL;
}

static void expect_entry(const layout_adj_entry *e, uint32_t node,
                         uint32_t type, float confidence, uint32_t flags,
                         uint64_t seq, uint64_t superseded)
{
    assert_int_equal(e->node, node);
    assert_int_equal(e->type, type);
    assert_true(e->confidence == confidence);
    assert_int_equal(e->flags, flags);
    assert_int_equal(e->seq, seq);
    assert_int_equal(sup_of(e), superseded);
}

static uint64_t assoc_count_stat(const coord_store *s)
{
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    return st.assoc_count;
}

/* ---- tests -------------------------------------------------------------- */

static void test_store_assoc_learn_creates_both_entries(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 2);
    uint64_t from = sf_roots_of(&v).committed_end;
    sf_req q = {0};
    req_assoc(&q, 0, 1, 7, 0.5f);
    coord_commit_info info = apply_commit(s, &q);
    assert_int_equal(info.first_seq, 3);

    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 1);
    assert_int_equal(assoc_count_stat(s), 1);
    uint32_t a = node_id(&v, 0), b = node_id(&v, 1);
    uint64_t out = head_word(&v, a, LAYOUT_ADJ_OUT);
    uint64_t in = head_word(&v, b, LAYOUT_ADJ_IN);
    assert_true(out && in && out < r.committed_end && in < r.committed_end);
    const layout_region *blk = block_at(&v, out, a, LAYOUT_ADJ_OUT);
    assert_int_equal(layout_rec_size(&blk->rec), LAYOUT_ADJ_MIN_BLOCK);
    assert_int_equal(blk->arg1, 5);
    assert_int_equal(blk->arg2, 0);
    assert_int_equal(blk->reserved[0], 0);
    assert_int_equal(block_count(&v, out), 1);
    assert_int_equal(head_word(&v, a, LAYOUT_ADJ_IN), 0);
    assert_int_equal(head_word(&v, b, LAYOUT_ADJ_OUT), 0);

    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 1);
    expect_entry(e[0], b, 7, 0.5f, 0, 3, 0);
    free(e);
    e = list_entries(&v, b, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 1);
    expect_entry(e[0], a, 7, 0.5f, 0, 3, 0);
    free(e);

    /* F-ASSOC-1: the log holds the write, checksummed. */
    const layout_assoc *rec = assoc_record(&v, from, r.committed_end, 3);
    assert_int_equal(rec->rec.type, LAYOUT_REC_ASSOC);
    assert_int_equal(rec->rec.length, sizeof(layout_assoc));
    uint8_t id0[16], id1[16];
    sf_make_id(0, id0);
    sf_make_id(1, id1);
    assert_memory_equal(rec->source, id0, 16);
    assert_memory_equal(rec->target, id1, 16);
    assert_int_equal(rec->source_node, a);
    assert_int_equal(rec->target_node, b);
    assert_int_equal(rec->type, 7);
    assert_true(rec->confidence == 0.5f);
    assert_true(rec->created_ns > 0 && rec->created_ns <= r.commit_ns);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_relearn_supersedes(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 2);
    sf_req q = {0};
    req_assoc(&q, 0, 1, 1, 0.25f);
    apply_commit(s, &q);
    layout_roots old = sf_roots_of(&v);
    req_assoc(&q, 0, 1, 1, 0.75f);
    uint64_t seq2 = apply_commit(s, &q).first_seq;
    layout_roots now = sf_roots_of(&v);
    assert_int_equal(now.assoc_count, 1);

    uint32_t a = node_id(&v, 0), b = node_id(&v, 1);
    uint64_t n;
    for (uint32_t dir = 0; dir < 2; dir++) {
        const layout_adj_entry **e =
            list_entries(&v, dir ? b : a, dir, &n);
        assert_int_equal(n, 2);
        expect_entry(e[0], dir ? a : b, 1, 0.25f, 0, 3, seq2);
        expect_entry(e[1], dir ? a : b, 1, 0.75f, 0, seq2, 0);
        /* The old snapshot still sees the old confidence, the new one the new. */
        assert_true(layout_adj_visible(e[0], sup_of(e[0]), old.last_seq));
        assert_false(layout_adj_visible(e[1], sup_of(e[1]), old.last_seq));
        assert_false(layout_adj_visible(e[0], sup_of(e[0]), now.last_seq));
        assert_true(layout_adj_visible(e[1], sup_of(e[1]), now.last_seq));
        free(e);
    }
    /* A different type is a different key. */
    req_assoc(&q, 0, 1, 2, 1.0f);
    apply_commit(s, &q);
    assert_int_equal(sf_roots_of(&v).assoc_count, 2);
    assert_int_equal(
        visible_count(&v, a, LAYOUT_ADJ_OUT, sf_roots_of(&v).last_seq), 2);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_forget_association(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 2);
    sf_req q = {0};
    req_assoc(&q, 0, 1, 4, 0.5f);
    apply_commit(s, &q);
    uint64_t from = sf_roots_of(&v).committed_end;
    req_unassoc(&q, 0, 1, 4);
    uint64_t seq = apply_commit(s, &q).first_seq;
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 0);
    assert_int_equal(assoc_count_stat(s), 0);
    const layout_assoc *rec = assoc_record(&v, from, r.committed_end, seq);
    assert_int_equal(rec->rec.type, LAYOUT_REC_ASSOC_TOMBSTONE);
    assert_true(rec->confidence == 0.0f);

    uint32_t a = node_id(&v, 0), b = node_id(&v, 1);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 2);
    expect_entry(e[0], b, 4, 0.5f, 0, seq - 1, seq);
    expect_entry(e[1], b, 4, 0.0f, LAYOUT_ADJ_F_TOMBSTONE, seq, 0);
    assert_false(layout_adj_visible(e[1], 0, r.last_seq));
    free(e);
    assert_int_equal(visible_count(&v, b, LAYOUT_ADJ_IN, r.last_seq), 0);
    assert_int_equal(visible_count(&v, b, LAYOUT_ADJ_IN, seq - 1), 1);

    /* Not live any more: forgetting again changes nothing. */
    req_unassoc(&q, 0, 1, 4);
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 0);
    req_learn(&q, 0);
    req_unassoc(&q, 1, 0, 4); /* the reverse edge never existed */
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 1);
    assert_false(coord_store_group_pending(s));

    req_assoc(&q, 0, 1, 4, 0.125f);
    apply_commit(s, &q);
    assert_int_equal(sf_roots_of(&v).assoc_count, 1);
    e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 3);
    assert_int_equal(sup_of(e[1]), 0); /* a tombstone is never superseded */
    expect_entry(e[2], b, 4, 0.125f, 0, seq + 1, 0);
    free(e);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_forget_concept_ends_its_edges(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 5); /* 0 = X; 1, 2, 3 others; 4 untouched */
    sf_req q = {0};
    req_assoc(&q, 0, 1, 1, 0.5f);
    req_assoc(&q, 0, 2, 1, 0.5f);
    req_assoc(&q, 3, 0, 9, 0.5f);
    req_assoc(&q, 0, 0, 5, 0.5f); /* self-loop */
    req_assoc(&q, 1, 2, 1, 0.5f); /* not X's */
    apply_commit(s, &q);
    req_assoc(&q, 0, 1, 1, 0.9f); /* current entry is in a later block slot */
    apply_commit(s, &q);
    assert_int_equal(sf_roots_of(&v).assoc_count, 5);

    sf_req_forget(&q, 0);
    uint64_t seq = apply_commit(s, &q).first_seq;
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 1);
    assert_int_equal(assoc_count_stat(s), 1);
    uint32_t x = node_id(&v, 0);
    uint32_t n1 = node_id(&v, 1), n2 = node_id(&v, 2), n3 = node_id(&v, 3);
    /* F-ADJ-5: tombstones at the concept tombstone's seq, both lists. */
    uint64_t n, tombs = 0;
    const layout_adj_entry **e = list_entries(&v, x, LAYOUT_ADJ_OUT, &n);
    for (uint64_t i = 0; i < n; i++) {
        if (e[i]->flags & LAYOUT_ADJ_F_TOMBSTONE) {
            assert_int_equal(e[i]->seq, seq);
            tombs++;
        } else if (sup_of(e[i]) == 0) {
            fail_msg("entry %llu of X's out-list is still current",
                     (unsigned long long)i);
        }
    }
    assert_int_equal(tombs, 3); /* to 1, to 2, self */
    free(e);
    assert_int_equal(visible_count(&v, x, LAYOUT_ADJ_IN, r.last_seq), 0);
    assert_int_equal(visible_count(&v, x, LAYOUT_ADJ_IN, seq - 1), 2);
    assert_int_equal(visible_count(&v, n1, LAYOUT_ADJ_IN, r.last_seq), 0);
    assert_int_equal(visible_count(&v, n3, LAYOUT_ADJ_OUT, r.last_seq), 0);
    assert_int_equal(visible_count(&v, n2, LAYOUT_ADJ_IN, r.last_seq), 1);
    assert_int_equal(visible_count(&v, n1, LAYOUT_ADJ_OUT, r.last_seq), 1);
    e = list_entries(&v, n3, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 2);
    expect_entry(e[0], x, 9, 0.5f, 0, 3 + 5, seq);
    expect_entry(e[1], x, 9, 0.0f, LAYOUT_ADJ_F_TOMBSTONE, seq, 0);
    free(e);

    /* Re-learning X revives nothing, and forgetting its edge is refused. */
    req_learn(&q, 0);
    apply_commit(s, &q);
    r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 1);
    assert_int_equal(visible_count(&v, x, LAYOUT_ADJ_OUT, r.last_seq), 0);
    assert_int_equal(visible_count(&v, x, LAYOUT_ADJ_IN, r.last_seq), 0);
    req_unassoc(&q, 3, 0, 9);
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 0);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_batch_creates_concepts_and_edge(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    sf_req q = {0};
    req_learn(&q, 10);
    req_learn(&q, 11);
    req_assoc(&q, 10, 11, 3, 1.0f);
    /* Order within the batch does not matter for liveness at its end. */
    req_assoc(&q, 12, 13, 3, 0.0f);
    req_learn(&q, 12);
    req_learn(&q, 13);
    apply_commit(s, &q);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.node_count, 4);
    assert_int_equal(r.concept_count, 4);
    assert_int_equal(r.assoc_count, 2);
    uint32_t a = node_id(&v, 10), b = node_id(&v, 11);
    uint32_t c = node_id(&v, 12), d = node_id(&v, 13);
    assert_int_equal(visible_count(&v, a, LAYOUT_ADJ_OUT, r.last_seq), 1);
    assert_int_equal(visible_count(&v, b, LAYOUT_ADJ_IN, r.last_seq), 1);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, c, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 1);
    expect_entry(e[0], d, 3, 0.0f, 0, 4, 0);
    free(e);
    /* F-NODE-1: first_seq is the node's first version, not the edge. */
    const layout_concept *first =
        (const layout_concept *)(v.map + sf_node_of(&v, c)->head);
    assert_int_equal(sf_node_of(&v, c)->first_seq, first->rec.seq);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_missing_endpoint_changes_nothing(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 2);
    layout_roots before = sf_roots_of(&v);
    sf_req q = {0};
    req_assoc(&q, 0, 1, 1, 0.5f);
    req_assoc(&q, 0, 99, 1, 0.5f); /* 99 never learned */
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 1);
    req_learn(&q, 2);
    req_learn(&q, 3);
    req_assoc(&q, 2, 3, 1, 0.5f);
    sf_req_forget(&q, 2);              /* the edge's endpoint goes away */
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 2);
    sf_req_forget(&q, 1);
    req_assoc(&q, 0, 1, 1, 0.5f);   /* forgotten earlier in the batch */
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 1);
    assert_false(coord_store_group_pending(s));
    assert_int_equal(coord_store_group_bytes(s), 0);
    commit(s);
    layout_roots after = sf_roots_of(&v);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(head_word(&v, node_id(&v, 0), LAYOUT_ADJ_OUT), 0);

    /* Values the decoder would refuse are refused here too. */
    req_assoc(&q, 0, 1, 1, 0.5f);
    const wire_request *w = req_done(&q, next_no++);
    uint8_t *conf = (uint8_t *)w->ops + offsetof(wire_association, confidence);
    float bad = 2.0f;
    memcpy(conf, &bad, sizeof(bad));
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, w, &res, &err), SUTRA_EINVAL);
    assert_int_equal(res.failed_op, 0);
    assert_memory_equal(err.message, "P-OP-9:", 7);
    sf_req_free(&q);

    /* An aborted group leaves no trace, and the key is not live after it. */
    req_assoc(&q, 0, 1, 1, 0.5f);
    apply_only(s, &q);
    coord_store_abort(s);
    req_unassoc(&q, 0, 1, 1);
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 0);
    commit(s);
    assert_int_equal(sf_roots_of(&v).generation, before.generation);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_failed_write_changes_nothing(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    coord_store *s = sf_open(f->path, 0, RESERVE, &fio.io);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 3);
    sf_req q = {0};
    for (uint32_t t = 0; t < 5; t++) /* fills 0's first block exactly */
        req_assoc(&q, 0, 1, t, 0.5f);
    apply_commit(s, &q);
    layout_roots before = sf_roots_of(&v);
    uint32_t a = node_id(&v, 0), b = node_id(&v, 1);
    uint64_t head = head_word(&v, a, LAYOUT_ADJ_OUT);

    req_assoc(&q, 0, 1, 0, 0.9f); /* supersede, and a new block */
    req_assoc(&q, 0, 2, 0, 0.9f);
    req_unassoc(&q, 0, 1, 1);
    apply_only(s, &q);
    fio.pwrite_err = ENOSPC;
    coord_error err = {0};
    assert_int_equal(coord_store_commit(s, true, NULL, &err), ENOSPC);
    fio.pwrite_err = 0;
    layout_roots after = sf_roots_of(&v);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(head_word(&v, a, LAYOUT_ADJ_OUT), head);
    assert_int_equal(block_count(&v, head), 5);
    assert_int_equal(visible_count(&v, a, LAYOUT_ADJ_OUT, after.last_seq), 5);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(sup_of(e[i]), 0);
    free(e);

    /* The store is still writable and its key index still says gen 2. */
    req_unassoc(&q, 0, 2, 0);
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 0);
    req_assoc(&q, 0, 1, 0, 0.75f);
    uint64_t seq = apply_commit(s, &q).first_seq;
    assert_int_equal(seq, after.last_seq + 1);
    e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 6);
    expect_entry(e[0], b, 0, 0.5f, 0, 4, seq);
    expect_entry(e[5], b, 0, 0.75f, 0, seq, 0);
    free(e);
    assert_int_equal(sf_roots_of(&v).assoc_count, 5);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_self_loop(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 1);
    sf_req q = {0};
    req_assoc(&q, 0, 0, 2, 0.5f);
    apply_commit(s, &q);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 1);
    uint32_t x = node_id(&v, 0);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, x, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 1);
    expect_entry(e[0], x, 2, 0.5f, 0, 2, 0);
    free(e);
    e = list_entries(&v, x, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 1);
    expect_entry(e[0], x, 2, 0.5f, 0, 2, 0);
    free(e);

    sf_req_forget(&q, 0);
    uint64_t seq = apply_commit(s, &q).first_seq;
    assert_int_equal(sf_roots_of(&v).assoc_count, 0);
    for (uint32_t dir = 0; dir < 2; dir++) {
        e = list_entries(&v, x, dir, &n);
        assert_int_equal(n, 2); /* one tombstone per list, not two */
        assert_int_equal(sup_of(e[0]), seq);
        expect_entry(e[1], x, 2, 0.0f, LAYOUT_ADJ_F_TOMBSTONE, seq, 0);
        free(e);
    }
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_group_sees_staged_keys(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 3);
    sf_req q = {0};
    /* learn, re-learn, forget, learn again of one key in one request */
    req_assoc(&q, 0, 1, 1, 0.1f);
    req_assoc(&q, 0, 1, 1, 0.2f);
    req_unassoc(&q, 0, 1, 1);
    req_assoc(&q, 0, 1, 1, 0.3f);
    apply_only(s, &q);
    /* later requests of the same group build on it */
    req_assoc(&q, 0, 1, 1, 0.4f);
    req_assoc(&q, 0, 2, 1, 0.5f);
    apply_only(s, &q);
    req_unassoc(&q, 0, 2, 1);
    sf_req_forget(&q, 1);
    apply_only(s, &q);
    req_unassoc(&q, 0, 1, 1); /* ended by the forget of 1 */
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 0);
    coord_commit_info info = commit(s);
    assert_int_equal(info.first_seq, 4);
    assert_int_equal(info.last_seq, 11);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 0);

    uint32_t a = node_id(&v, 0), b = node_id(&v, 1), c = node_id(&v, 2);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, b, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 6);
    expect_entry(e[0], a, 1, 0.1f, 0, 4, 5);
    expect_entry(e[1], a, 1, 0.2f, 0, 5, 6);
    expect_entry(e[2], a, 1, 0.0f, LAYOUT_ADJ_F_TOMBSTONE, 6, 0);
    expect_entry(e[3], a, 1, 0.3f, 0, 7, 8);
    expect_entry(e[4], a, 1, 0.4f, 0, 8, 11);
    expect_entry(e[5], a, 1, 0.0f, LAYOUT_ADJ_F_TOMBSTONE, 11, 0);
    free(e);
    e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 8); /* 6 to node b, 2 to node c */
    free(e);
    e = list_entries(&v, c, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 2);
    expect_entry(e[0], a, 1, 0.5f, 0, 9, 10);
    free(e);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* Check a list of `total` entries spans the doubling blocks 5, 13, 29, …
 * with a consistent prev chain and reserved[0] counts. */
static void check_growth(const sf_view *v, uint32_t node, uint32_t dir,
                         uint64_t total)
{
    uint64_t sizes[64], caps[64], offs[64];
    int nb = 0;
    for (uint64_t off = head_word(v, node, dir); off;) {
        const layout_region *r = block_at(v, off, node, dir);
        offs[nb] = off;
        sizes[nb] = layout_rec_size(&r->rec);
        caps[nb] = r->arg1;
        nb++;
        off = r->arg2;
    }
    uint64_t older = 0;
    for (int i = nb - 1; i >= 0; i--) {
        int k = nb - 1 - i;
        assert_int_equal(sizes[i], (uint64_t)LAYOUT_ADJ_MIN_BLOCK << k);
        assert_int_equal(caps[i], 8ull * (1ull << k) - 3); /* 5, 13, 29, … */
        const layout_region *r = (const layout_region *)(v->map + offs[i]);
        assert_int_equal(r->reserved[0], older);
        if (i > 0)
            assert_int_equal(block_count(v, offs[i]), caps[i]);
        older += block_count(v, offs[i]);
    }
    assert_int_equal(older, total);
    assert_int_equal(nb, 11); /* 5 + 13 + … + 4093 = 8154 < 10000 */
    assert_int_equal(block_count(v, offs[0]), total - 8154);
}

static void test_store_assoc_blocks_double(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 2);
    /* Uneven groups: heads are filled part-way, then new blocks follow. */
    static const uint32_t sizes[] = {1, 3, 7, 40, 300, 1649, 8000};
    uint32_t type = 0;
    for (size_t g = 0; g < sizeof(sizes) / sizeof(sizes[0]); g++) {
        sf_req q = {0};
        for (uint32_t i = 0; i < sizes[g]; i++)
            req_assoc(&q, 0, 1, type++, 0.5f);
        apply_commit(s, &q);
    }
    assert_int_equal(type, 10000);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 10000);
    uint32_t a = node_id(&v, 0), b = node_id(&v, 1);
    check_growth(&v, a, LAYOUT_ADJ_OUT, 10000);
    check_growth(&v, b, LAYOUT_ADJ_IN, 10000);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    for (uint64_t i = 0; i < n; i++)
        expect_entry(e[i], b, (uint32_t)i, 0.5f, 0, 3 + i, 0);
    free(e);

    /* Forgetting the target tombstones all 10,000 edges in both lists. */
    sf_req q = {0};
    sf_req_forget(&q, 1);
    apply_commit(s, &q);
    r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 0);
    assert_int_equal(visible_count(&v, a, LAYOUT_ADJ_OUT, r.last_seq), 0);
    assert_int_equal(visible_count(&v, a, LAYOUT_ADJ_OUT, r.last_seq - 1), 10000);
    e = list_entries(&v, b, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 20000);
    free(e);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* The real POSIX layer, counting whole-file syncs and ranged sync writes. */
typedef struct sync_count_io {
    coord_io io; /* first: the store sees only this */
    coord_io *real;
    int syncs, ranged;
} sync_count_io;

static int count_sync(coord_io *io, int fd)
{
    sync_count_io *c = (sync_count_io *)io;
    c->syncs++;
    return c->real->sync(c->real, fd);
}

static int count_pwrite_sync(coord_io *io, int fd, const void *buf,
                             size_t len, uint64_t off)
{
    sync_count_io *c = (sync_count_io *)io;
    c->ranged++;
    return c->real->pwrite_sync(c->real, fd, buf, len, off);
}

/* F-COM-6: a synced group that allocates adjacency blocks, in a file with
 * a durable checkpoint, is made durable by one ranged write that carries
 * the blocks; one whose new blocks pass COORD_RANGED_BLOCK_BYTES syncs the
 * whole file.  Both leave lists a reader can follow. */
static void test_store_assoc_new_blocks_synced_by_range(void **state)
{
    sf_dir *f = *state;
    sync_count_io c = { .io = *coord_io_posix(), .real = coord_io_posix() };
    c.io.sync = count_sync;
    c.io.pwrite_sync = count_pwrite_sync;
    coord_store *s = sf_open(f->path, 0, RESERVE, &c.io);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 4);
    coord_error err = {0};
    /* the second sync finds the first one's checkpoint durable (F-HDR-8) */
    for (int i = 0; i < 2; i++)
        assert_int_equal(coord_store_sync(s, &err), 0);

    c.syncs = c.ranged = 0;
    sf_req q = {0};
    req_assoc(&q, 0, 1, 7, 0.5f); /* a first block for four lists */
    req_assoc(&q, 2, 3, 7, 0.25f);
    apply_only(s, &q);
    coord_commit_info info;
    assert_int_equal(coord_store_commit(s, true, &info, &err), 0);
    assert_true(info.durable);
    assert_int_equal(c.ranged, 1);
    assert_int_equal(c.syncs, 0);
    uint32_t n0 = node_id(&v, 0), n1 = node_id(&v, 1), n2 = node_id(&v, 2),
             n3 = node_id(&v, 3);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, n0, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 1);
    expect_entry(e[0], n1, 7, 0.5f, 0, info.first_seq, 0);
    free(e);
    e = list_entries(&v, n3, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 1);
    expect_entry(e[0], n2, 7, 0.25f, 0, info.first_seq + 1, 0);
    free(e);

    c.syncs = c.ranged = 0;
    uint32_t many = (uint32_t)(COORD_RANGED_BLOCK_BYTES /
                               sizeof(layout_adj_entry));
    for (uint32_t t = 100; t < 100 + many; t++)
        req_assoc(&q, 2, 3, t, 0.5f);
    apply_only(s, &q);
    assert_int_equal(coord_store_commit(s, true, &info, &err), 0);
    assert_true(info.durable);
    assert_int_equal(c.ranged, 0);
    assert_int_equal(c.syncs, 1);
    e = list_entries(&v, n2, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 1 + many);
    free(e);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* A power cut can keep a new block's descriptor while its count word's
 * page (the next one, for a block that starts 64 bytes before a page
 * boundary) still holds bytes of a group a recovery discarded.  Recovery
 * replays the block's group and stores its count again (F-REC-5): it must
 * not refuse the file over the stale word first. */
static void test_store_assoc_replay_ignores_a_stale_count(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    learn_range(s, 0, 3);
    coord_error err = {0};
    for (int i = 0; i < 2; i++) /* a checkpoint: the range starts here */
        assert_int_equal(coord_store_sync(s, &err), 0);
    sf_req q = {0};
    req_assoc(&q, 0, 1, 4, 0.5f); /* new blocks, past the checkpoint */
    apply_commit(s, &q);
    coord_store_close(s, false); /* unclean: recovery replays the group */

    sf_view v = sf_view_open(f->path, RESERVE);
    uint32_t n0 = node_id(&v, 0), n1 = node_id(&v, 1);
    uint64_t block = head_word(&v, n0, LAYOUT_ADJ_OUT);
    assert_true(block >= ((const layout_header *)v.map)->durable_end);
    sf_view_close(&v);
    uint64_t stale = 0x1000010012ull; /* a discarded region's first word */
    int fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &stale, sizeof(stale),
                            (off_t)(block + LAYOUT_ADJ_COUNT_OFFSET)),
                     (ssize_t)sizeof(stale));
    close(fd);

    s = sf_open(f->path, 0, RESERVE, NULL);
    v = sf_view_open(f->path, RESERVE);
    assert_int_equal(block_count(&v, block), 1);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, n0, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 1);
    assert_int_equal(e[0]->node, n1);
    free(e);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* A first group with edges; then a second that re-learns, forgets and adds
 * enough edges to allocate blocks, and "crashes" after its sync and every
 * index word, before the generation is published (its meta slot is then
 * invalidated: the group was reported failed). */
static void crash_adjacency_group(const sf_dir *f)
{
    sf_fault_io fio = sf_fault_io_make();
    coord_store *s = sf_open(f->path, 0, RESERVE, &fio.io);
    learn_range(s, 0, 4);
    sf_req q = {0};
    req_assoc(&q, 0, 1, 1, 0.5f);
    req_assoc(&q, 0, 2, 1, 0.5f);
    req_assoc(&q, 3, 0, 1, 0.5f);
    apply_commit(s, &q);

    req_assoc(&q, 0, 1, 1, 0.9f);      /* supersedes a committed entry */
    req_unassoc(&q, 0, 2, 1);
    for (uint32_t t = 2; t < 60; t++)  /* new blocks for 0 and 1 */
        req_assoc(&q, 0, 1, t, 0.5f);
    req_learn(&q, 50);                 /* a new node with edges */
    req_assoc(&q, 50, 3, 1, 0.5f);
    apply_only(s, &q);
    sf_req_forget(&q, 3);                 /* tombstones in 0's in-list */
    apply_only(s, &q);
    fio.publish_err = EIO; /* the index words are stored, then the crash */
    coord_error err = {0};
    assert_int_equal(coord_store_commit(s, true, NULL, &err), EIO);
    coord_store_close(s, true); /* read-only now: not marked clean */
}

static void test_store_assoc_recovers_adjacency(void **state)
{
    sf_dir *f = *state;
    crash_adjacency_group(f);
    sf_view v = sf_view_open(f->path, RESERVE);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.generation, 2);
    assert_int_equal(r.assoc_count, 3);
    uint32_t a = node_id(&v, 0), b = node_id(&v, 1), c = node_id(&v, 2),
             d = node_id(&v, 3);
    /* The crashed commit's words are in the file ... */
    assert_true(head_word(&v, a, LAYOUT_ADJ_OUT) >= r.committed_end);
    assert_int_equal(block_count(&v, head_word(&v, d, LAYOUT_ADJ_OUT)), 2);
    uint64_t n;
    const layout_adj_entry **e = list_entries(&v, c, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 2);
    assert_true(sup_of(e[0]) > r.last_seq);
    free(e);

    /* ... and recovery takes them back to generation 2. */
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    assert_int_equal(assoc_count_stat(s), 3);
    uint64_t heads[4][2];
    uint32_t nodes[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        for (uint32_t dir = 0; dir < 2; dir++) {
            heads[i][dir] = head_word(&v, nodes[i], dir);
            assert_true(heads[i][dir] < r.committed_end);
            e = list_entries(&v, nodes[i], dir, &n);
            for (uint64_t j = 0; j < n; j++) {
                assert_true(e[j]->seq <= r.last_seq);
                assert_int_equal(sup_of(e[j]), 0);
            }
            free(e);
        }
    e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 2);
    free(e);
    e = list_entries(&v, a, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 1);
    free(e);
    assert_int_equal(block_count(&v, head_word(&v, d, LAYOUT_ADJ_OUT)), 1);
    e = list_entries(&v, c, LAYOUT_ADJ_IN, &n);
    assert_int_equal(n, 1);
    free(e);

    /* The key index was rebuilt from the repaired lists: a re-learn
     * supersedes generation 2's entry, a forget finds its key. */
    sf_req q = {0};
    req_assoc(&q, 0, 1, 1, 0.75f);
    req_unassoc(&q, 0, 2, 1);
    uint64_t seq = apply_commit(s, &q).first_seq;
    r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 2);
    e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 4); /* written over the crashed tail's slots */
    expect_entry(e[0], b, 1, 0.5f, 0, 5, seq);
    expect_entry(e[1], c, 1, 0.5f, 0, 6, seq + 1);
    expect_entry(e[2], b, 1, 0.75f, 0, seq, 0);
    expect_entry(e[3], c, 1, 0.0f, LAYOUT_ADJ_F_TOMBSTONE, seq + 1, 0);
    free(e);
    coord_store_close(s, true);
    s = sf_open(f->path, 0, RESERVE, NULL);
    assert_int_equal(assoc_count_stat(s), 2);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_index_rebuilt_after_reopen(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    sf_view v = sf_view_open(f->path, RESERVE);
    learn_range(s, 0, 50);
    sf_req q = {0};
    for (uint64_t i = 0; i < 50; i++)
        for (uint64_t j = 0; j < 10; j++)
            req_assoc(&q, i, (i + j) % 50, (uint32_t)j, 0.5f);
    apply_commit(s, &q);
    req_assoc(&q, 7, 8, 1, 0.6f); /* the current entry is not the first */
    apply_commit(s, &q);
    coord_store_close(s, true);

    s = sf_open(f->path, 0, RESERVE, NULL);
    assert_int_equal(assoc_count_stat(s), 500);
    req_assoc(&q, 7, 8, 1, 0.7f);
    req_unassoc(&q, 9, 9, 0);
    uint64_t seq = apply_commit(s, &q).first_seq;
    assert_int_equal(sf_roots_of(&v).assoc_count, 499);
    uint32_t a = node_id(&v, 7), b = node_id(&v, 8);
    uint64_t n, current = 0;
    const layout_adj_entry **e = list_entries(&v, a, LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, 12);
    for (uint64_t i = 0; i < n; i++)
        current += e[i]->node == b && e[i]->type == 1 && sup_of(e[i]) == 0;
    assert_int_equal(current, 1);
    assert_int_equal(sup_of(e[1]), 551);   /* the first learn, by the 0.6 */
    assert_int_equal(sup_of(e[10]), seq);  /* the 0.6, by the 0.7 */
    assert_true(e[11]->confidence == 0.7f);
    free(e);
    req_unassoc(&q, 9, 9, 0);
    assert_int_equal(apply_fails(s, &q, SUTRA_ENOTFOUND), 0);
    coord_store_close(s, true);
    sf_view_close(&v);
}

static void test_store_assoc_index_rebuild_1m(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    const uint64_t nodes = 1024, per = 1024;
    learn_range(s, 0, nodes);
    for (uint64_t i = 0; i < nodes; i += 64) {
        sf_req q = {0};
        for (uint64_t k = i; k < i + 64; k++)
            for (uint64_t j = 0; j < per; j++)
                req_assoc(&q, k, j, 0, 0.5f);
        apply_commit(s, &q);
    }
    coord_store_close(s, true);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s = sf_open(f->path, 0, RESERVE, NULL);
    double open_s = sf_seconds_since(&t0);
    assert_int_equal(assoc_count_stat(s), nodes * per);
    assert_false(s->assoc_index_built); /* open reads no adjacency */
    sf_req q = {0};
    req_assoc(&q, 5, 6, 0, 0.25f);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    apply_only(s, &q); /* the first association op builds the index */
    double build_s = sf_seconds_since(&t0);
    assert_true(s->assoc_index_built);
    assert_int_equal(s->assoc_index.count, nodes * per);
    double per_edge = (double)(s->assoc_index.cap * sizeof(coord_assoc_slot)) /
                      (double)s->assoc_index.count;
    commit(s);
    print_message("key index rebuild for %llu edges: %.1f ms (open before "
                  "it: %.2f ms); %.1f bytes of index per edge (%zu-byte "
                  "slots, %llu slots)\n",
                  (unsigned long long)(nodes * per), build_s * 1e3,
                  open_s * 1e3, per_edge, sizeof(coord_assoc_slot),
                  (unsigned long long)s->assoc_index.cap);
    coord_store_close(s, true);
}

/* ---- the file's maximum size (F-ADJ-4) ---------------------------------- */

#define SMALL_RESERVE (8ull << 20)
/* 5 + 13 + ... + 4093: the blocks of 256 B to 128 KiB, all full. */
#define FULL_HEAD_ENTRIES 8154u

/* A store of SMALL_RESERVE bytes holding concepts 0 and 1, with key
 * (0, 1, 1) learned FULL_HEAD_ENTRIES times, so 0's out-list and 1's
 * in-list each end exactly at the end of a full 128 KiB head; then 16 KiB
 * concepts (numbers from 100) until between 64 and 300 KiB are left: room
 * for small writes, not for the two 256 KiB blocks one more entry on each
 * list needs. */
static coord_store *open_nearly_full(const char *path, coord_io *io,
                                     sf_view *view)
{
    coord_store *s = sf_open(path, 0, SMALL_RESERVE, io);
    *view = sf_view_open(path, SMALL_RESERVE);
    const sf_view *v = view;
    learn_range(s, 0, 2);
    for (uint32_t done = 0; done < FULL_HEAD_ENTRIES;) {
        sf_req q = {0};
        for (uint32_t i = 0; i < 1000 && done < FULL_HEAD_ENTRIES; i++, done++)
            req_assoc(&q, 0, 1, 1, 0.5f);
        apply_commit(s, &q);
    }
    uint32_t a = node_id(v, 0);
    uint64_t head = head_word(v, a, LAYOUT_ADJ_OUT);
    assert_int_equal(layout_rec_size(&block_at(v, head, a, LAYOUT_ADJ_OUT)->rec),
                     128 * 1024);
    assert_int_equal(block_count(v, head), layout_adj_capacity(128 * 1024));
    static char content[16384];
    uint64_t left = 0;
    for (uint64_t i = 100; left == 0 || left >= 300 * 1024; i++) {
        sf_req q = {0};
        uint8_t id[16];
        sf_make_id(i, id);
        sf_req_learn_id(&q, id, 0, 1.0f, content, sizeof(content), NULL, 0);
        left = SMALL_RESERVE - apply_commit(s, &q).committed_end;
    }
    assert_true(left > 64 * 1024);
    return s;
}

/* The current entry of key (0, 1, 1) and the length of 0's out-list. */
static void check_key_0_1(const sf_view *v, float confidence, uint64_t len)
{
    uint64_t n;
    const layout_adj_entry **e = list_entries(v, node_id(v, 0), LAYOUT_ADJ_OUT, &n);
    assert_int_equal(n, len);
    assert_true(e[n - 1]->confidence == confidence);
    assert_int_equal(sup_of(e[n - 1]), 0);
    free(e);
}

/* The blocks n more entries start in a list of len (capacities 5, 13, 29,
 * ... for blocks of 256, 512, 1024, ... bytes). */
static void test_store_assoc_new_block_bytes(void **state)
{
    (void)state;
    assert_int_equal(coord_adj_new_block_bytes(0, 0), 0);
    assert_int_equal(coord_adj_new_block_bytes(0, 1), 256);
    assert_int_equal(coord_adj_new_block_bytes(1, 4), 0);      /* 1..4 */
    assert_int_equal(coord_adj_new_block_bytes(4, 1), 0);
    assert_int_equal(coord_adj_new_block_bytes(4, 2), 512);    /* 5 starts */
    assert_int_equal(coord_adj_new_block_bytes(5, 1), 512);
    assert_int_equal(coord_adj_new_block_bytes(0, 18), 768);   /* 0 and 5 */
    assert_int_equal(coord_adj_new_block_bytes(0, 19), 1792);  /* and 18 */
    assert_int_equal(coord_adj_new_block_bytes(0, FULL_HEAD_ENTRIES),
                     256 * 1024 - 256);
    assert_int_equal(coord_adj_new_block_bytes(FULL_HEAD_ENTRIES, 1),
                     256 * 1024);
    assert_int_equal(coord_adj_new_block_bytes(FULL_HEAD_ENTRIES - 1, 1), 0);
}

/* Apply a request that must fail SUTRA_EFULL; returns res.group_dropped. */
static bool apply_full(coord_store *s, sf_req *q)
{
    coord_apply_result res;
    coord_error err = {0};
    assert_int_equal(coord_store_apply(s, req_done(q, next_no++), &res, &err),
                     SUTRA_EFULL);
    sf_req_free(q);
    assert_int_equal(res.op_count, 0);
    assert_non_null(strstr(err.message, "maximum size"));
    return res.group_dropped;
}

/* One more entry on each of the full lists needs two new 256 KiB blocks,
 * which the file has no room for.  Such a request used to pass apply
 * (which budgeted 64 bytes per entry) and fail its whole group at commit,
 * unrelated requests included.  An association is now refused before it
 * is staged.  A forget_concept's tombstones are known only once staged: the
 * store then drops the group, and its other request, staged again,
 * commits. */
static void test_store_assoc_block_past_the_end_fails_alone(void **state)
{
    sf_dir *f = *state;
    sf_view v;
    coord_store *s = open_nearly_full(f->path, NULL, &v);
    uint64_t gen = sf_roots_of(&v).generation;

    sf_req q = {0};
    req_learn(&q, 5); /* an unrelated request of the same group */
    apply_only(s, &q);
    req_assoc(&q, 0, 1, 1, 0.7f);
    assert_false(apply_full(s, &q)); /* refused before staging */
    assert_true(coord_store_group_pending(s));
    req_unassoc(&q, 0, 1, 1);        /* a forget appends entries too */
    assert_false(apply_full(s, &q));
    assert_true(coord_store_group_pending(s));
    sf_req_forget(&q, 1);            /* F-ADJ-5: the edge's tombstones */
    assert_true(apply_full(s, &q));  /* found once staged */
    assert_false(coord_store_group_pending(s));

    /* The caller stages the group again; a new edge between new concepts
     * needs two 256-byte blocks, which fit. */
    req_learn(&q, 5);
    apply_only(s, &q);
    req_learn(&q, 6);
    req_learn(&q, 7);
    req_assoc(&q, 6, 7, 2, 0.25f);
    apply_only(s, &q);
    coord_commit_info info = commit(s);
    assert_int_equal(info.generation, gen + 1);
    assert_true(info.committed_end <= SMALL_RESERVE);
    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.assoc_count, 2);
    (void)node_id(&v, 5);
    assert_int_equal(visible_count(&v, node_id(&v, 6), LAYOUT_ADJ_OUT, r.last_seq), 1);
    check_key_0_1(&v, 0.5f, FULL_HEAD_ENTRIES);

    /* Alone in their groups, they fail the same way and change nothing. */
    req_assoc(&q, 0, 1, 1, 0.7f);
    assert_false(apply_full(s, &q));
    assert_false(coord_store_group_pending(s));
    sf_req_forget(&q, 1);
    assert_true(apply_full(s, &q));
    assert_false(coord_store_group_pending(s));
    assert_int_equal(sf_roots_of(&v).generation, gen + 1);
    assert_int_equal(sf_roots_of(&v).concept_count, r.concept_count);
    check_key_0_1(&v, 0.5f, FULL_HEAD_ENTRIES);
    coord_store_close(s, true);
    sf_view_close(&v);
}

/* Writes through a committer, with the group's record write held at will. */
static _Atomic int gate_hold, gate_held;

static int gate_pwrite(coord_io *io, int fd, const void *b, size_t n,
                       uint64_t off)
{
    while (atomic_load(&gate_hold)) {
        atomic_store(&gate_held, 1);
        usleep(1000);
    }
    return sf_fault_pwrite(io, fd, b, n, off);
}


/* The same through the committer: while the previous group is being
 * written, a learn, the association, a forget of concept 1 and another
 * learn arrive and form one group.  The association is refused, the
 * forget drops the group, which is staged again once; both learns are
 * acknowledged and committed. */
static void test_store_assoc_block_past_the_end_in_a_group(void **state)
{
    sf_dir *f = *state;
    sf_fault_io fio = sf_fault_io_make();
    fio.io.pwrite = gate_pwrite;
    sf_view v;
    coord_store *s = open_nearly_full(f->path, &fio.io, &v);
    uint64_t gen = sf_roots_of(&v).generation;

    coord_dedup *dd = NULL;
    coord_counters counters = {0};
    coord_committer *c = NULL;
    coord_committer_config cfg = {.sync_policy = COORD_SYNC_NONE};
    assert_int_equal(coord_dedup_create(64, 16, &dd), 0);
    assert_int_equal(coord_committer_start(s, dd, &counters, &cfg, &c), 0);

    cf_waiter *w = calloc(5, sizeof(*w));
    sf_req msg[5] = {{0}};
    atomic_store(&gate_held, 0);
    atomic_store(&gate_hold, 1);
    req_learn(&msg[0], 8);
    cf_submit(c, &w[0], req_done(&msg[0], next_no++));
    for (int i = 0; i < 10000 && !atomic_load(&gate_held); i++)
        usleep(1000);
    assert_true(atomic_load(&gate_held)); /* the committer is in a commit */
    req_learn(&msg[1], 5);
    req_assoc(&msg[2], 0, 1, 1, 0.7f);
    sf_req_forget(&msg[3], 1);
    req_learn(&msg[4], 9);
    for (int i = 1; i < 5; i++)
        cf_submit(c, &w[i], req_done(&msg[i], next_no++));
    atomic_store(&gate_hold, 0);
    static const int32_t want[] = {0, 0, SUTRA_EFULL, SUTRA_EFULL, 0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(cf_wait(&w[i], 10000), want[i]);
    assert_int_equal(atomic_load(&counters.groups_restaged), 1);
    assert_int_equal(coord_committer_stop(c), 0);
    coord_dedup_destroy(dd);
    for (int i = 0; i < 5; i++)
        sf_req_free(&msg[i]);
    free(w);

    layout_roots r = sf_roots_of(&v);
    assert_int_equal(r.generation, gen + 2);
    (void)node_id(&v, 8);
    (void)node_id(&v, 5);
    (void)node_id(&v, 9);
    check_key_0_1(&v, 0.5f, FULL_HEAD_ENTRIES);
    coord_store_close(s, true);
    sf_view_close(&v);
}


/* Every entry of both lists of nodes 0 .. n-1 (numbered as ids), copied. */
static uint64_t copy_lists(const sf_view *v, uint64_t n, layout_adj_entry *out,
                           uint64_t cap)
{
    uint64_t k = 0;
    for (uint64_t i = 0; i < n; i++)
        for (uint32_t dir = 0; dir < 2; dir++) {
            uint64_t len;
            const layout_adj_entry **e = list_entries(v, node_id(v, i), dir, &len);
            for (uint64_t j = 0; j < len; j++) {
                assert_true(k < cap);
                out[k++] = *e[j];
            }
            free(e);
        }
    return k;
}

/* Recovery replays the groups past the last checkpoint as one (F-REC-5).
 * The tombstones of a forgotten concept (F-ADJ-5) must land where the
 * writer put them, whichever of the concept's edges were committed before
 * the checkpoint and which after: after a process crash every word it
 * stores equals the one already there. */
static void test_store_assoc_replay_keeps_tombstone_order(void **state)
{
    sf_dir *f = *state;
    coord_store *s = sf_open(f->path, 0, RESERVE, NULL);
    learn_range(s, 0, 10);
    sf_req q = {0};
    for (uint64_t t = 1; t <= 5; t++) { /* fill 0's first blocks */
        req_assoc(&q, 0, t, 1, 0.5f);
        req_assoc(&q, t, 0, 2, 0.5f);
    }
    apply_commit(s, &q);
    coord_error err = {0};
    for (int i = 0; i < 2; i++) /* a checkpoint: the range starts here */
        assert_int_equal(coord_store_sync(s, &err), 0);
    req_assoc(&q, 0, 6, 1, 0.5f); /* in a second block of each list */
    req_assoc(&q, 6, 0, 2, 0.5f);
    apply_commit(s, &q);
    sf_req_forget(&q, 0);
    apply_commit(s, &q);

    sf_view v = sf_view_open(f->path, RESERVE);
    layout_adj_entry before[64], after[64];
    uint64_t n = copy_lists(&v, 10, before, 64);
    coord_store_close(s, false); /* unclean: recovery replays both groups */
    s = sf_open(f->path, 0, RESERVE, NULL);
    assert_int_equal(copy_lists(&v, 10, after, 64), n);
    for (uint64_t i = 0; i < n; i++)
        if (memcmp(&before[i], &after[i], sizeof(before[i])) != 0)
            fail_msg("entry %llu: node %u seq %llu became node %u seq %llu",
                     (unsigned long long)i, before[i].node,
                     (unsigned long long)before[i].seq, after[i].node,
                     (unsigned long long)after[i].seq);
    coord_store_close(s, true);
    sf_view_close(&v);
}

#define ASSOC_TEST(t) cmocka_unit_test_setup_teardown(t, setup, sf_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        ASSOC_TEST(test_store_assoc_learn_creates_both_entries),
        ASSOC_TEST(test_store_assoc_relearn_supersedes),
        ASSOC_TEST(test_store_assoc_forget_association),
        ASSOC_TEST(test_store_assoc_forget_concept_ends_its_edges),
        ASSOC_TEST(test_store_assoc_batch_creates_concepts_and_edge),
        ASSOC_TEST(test_store_assoc_missing_endpoint_changes_nothing),
        ASSOC_TEST(test_store_assoc_failed_write_changes_nothing),
        ASSOC_TEST(test_store_assoc_self_loop),
        ASSOC_TEST(test_store_assoc_group_sees_staged_keys),
        ASSOC_TEST(test_store_assoc_blocks_double),
        ASSOC_TEST(test_store_assoc_new_blocks_synced_by_range),
        ASSOC_TEST(test_store_assoc_replay_ignores_a_stale_count),
        ASSOC_TEST(test_store_assoc_replay_keeps_tombstone_order),
        ASSOC_TEST(test_store_assoc_new_block_bytes),
        ASSOC_TEST(test_store_assoc_block_past_the_end_fails_alone),
        ASSOC_TEST(test_store_assoc_block_past_the_end_in_a_group),
        ASSOC_TEST(test_store_assoc_recovers_adjacency),
        ASSOC_TEST(test_store_assoc_index_rebuilt_after_reopen),
        ASSOC_TEST(test_store_assoc_index_rebuild_1m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
