/*
 * tests/unit/fault_fixture.h — what the fault and recovery tests share: a
 * temporary data directory, requests built with the wire encoders, and a
 * model of every committed generation so that a recovered file can be
 * checked byte for byte through the public reader (sutra_open, sutra_get)
 * and the verifier (sutra_verify).
 *
 * The model: items 0..FX_ITEMS-1, each either absent or at some version;
 * the content of (item, version) is a deterministic string, so checking a
 * concept needs no stored copy.  Every generation's whole item state is
 * kept, so "the file holds exactly generation G" is one comparison.
 *
 * The directory, the request builder and the opener are
 * tests/unit/store_fixture.h's; the fx_ names below bind them to this
 * fixture's dimension, map reserve and wire limits (the thinnest are static
 * inline, since not every fault test uses each one).
 *
 * Header-only (static functions): each unit test binary is built from one
 * .c file.  Single-threaded unless a test says otherwise.
 */
#ifndef SUTRA_TESTS_FAULT_FIXTURE_H
#define SUTRA_TESTS_FAULT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/io_fault.h"
#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/unit/store_fixture.h"

#define FX_DIM 4u
#define FX_ITEMS 640u
#define FX_MAX_GENS 512u
#define FX_RESERVE (1ull << 32)

/* ---- directories ------------------------------------------------------ */

typedef sf_dir fx_dir;

static inline void fx_dir_make(fx_dir *d)
{
    assert_int_equal(sf_dir_make(d, "/tmp/sutra-fault-XXXXXX"), 0);
}

static inline void fx_dir_remove(fx_dir *d)
{
    sf_dir_remove(d);
}

/* ---- the model -------------------------------------------------------- */

/* version 0 = absent (never learned or forgotten) */
typedef struct fx_state {
    uint16_t version[FX_ITEMS];
} fx_state;

typedef struct fx_model {
    fx_state gen[FX_MAX_GENS]; /* state at each generation; gen[0] empty */
    uint64_t gens;             /* highest generation modelled            */
    fx_state open;             /* the group being built                  */
} fx_model;

static void fx_item_id(uint32_t item, uint8_t id[16])
{
    char name[32];
    int n = snprintf(name, sizeof(name), "item-%u", item);
    sutra_id sid;
    sutra_id_from_name(name, (size_t)n, &sid);
    memcpy(id, sid.bytes, 16);
}

static size_t fx_content(uint32_t item, uint32_t version, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "item %u version %u:", item, version);
    size_t len = (size_t)n + (item * 37u + version * 11u) % 200u;
    if (len > cap)
        len = cap;
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)('a' + (item + version + i) % 26u);
    return len;
}

/* ---- requests --------------------------------------------------------- */

typedef sf_req fx_req;

/* Room for ops the model does not track (associations). */
static inline uint8_t *fx_room(fx_req *r, size_t n)
{
    return sf_req_room(r, n);
}

static void fx_req_learn_bytes(fx_req *r, uint32_t item, const void *content,
                               uint32_t len)
{
    uint8_t id[16];
    fx_item_id(item, id);
    float emb[FX_DIM] = { (float)item, 1, 2, 3 };
    sf_req_learn_id(r, id, 0, 1.0f, content, len, emb, FX_DIM);
}

/* Learn (item, version) and note it in the model's open group. */
static void fx_req_learn(fx_req *r, fx_model *m, uint32_t item, uint16_t version)
{
    char content[256];
    size_t len = fx_content(item, version, content, sizeof(content));
    fx_req_learn_bytes(r, item, content, (uint32_t)len);
    if (m)
        m->open.version[item] = version;
}

static void fx_req_forget(fx_req *r, fx_model *m, uint32_t item)
{
    uint8_t id[16];
    fx_item_id(item, id);
    sf_req_forget_id(r, id);
    if (m)
        m->open.version[item] = 0;
}

static const wire_request *fx_req_done(fx_req *r, uint64_t client, uint64_t no)
{
    static const wire_limits lim = { .max_message = 1ull << 31,
                                     .max_content = 1u << 30,
                                     .max_batch = 1u << 20,
                                     .vector_dim = FX_DIM };
    return sf_req_done(r, &lim, client, no);
}

static void fx_req_free(fx_req *r)
{
    sf_req_free(r);
}

/* ---- driving the store ------------------------------------------------ */

/* Open or create the store at `path`.  With rc_out, the open's code goes
 * there (and err says why); without, a failure fails the test. */
static coord_store *fx_open(const char *path, coord_io *io, int *rc_out,
                            coord_error *err)
{
    if (!rc_out)
        return sf_open(path, FX_DIM, FX_RESERVE, io);
    coord_store *s = NULL;
    *rc_out = sf_try_open(path, FX_DIM, FX_RESERVE, io, &s, err);
    return s;
}

/* One generation that changes a few items: each step learns a new version
 * of (seeded) items, and now and then forgets one.  The model's open group
 * is updated; the caller commits and then calls fx_model_commit(). */
static void fx_build_group(fx_req *r, fx_model *m, uint64_t seed, uint32_t ops)
{
    m->open = m->gen[m->gens];
    for (uint32_t k = 0; k < ops; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t item = (uint32_t)(seed >> 33) % FX_ITEMS;
        /* one op per item per group keeps the model simple */
        if (m->open.version[item] != m->gen[m->gens].version[item])
            continue;
        if (m->open.version[item] && (seed >> 20) % 7 == 0)
            fx_req_forget(r, m, item);
        else
            fx_req_learn(r, m, item, (uint16_t)(m->open.version[item] + 1 +
                                                 (m->gens % 3)));
    }
}

static void fx_model_commit(fx_model *m)
{
    assert_true(m->gens + 1 < FX_MAX_GENS);
    m->gen[++m->gens] = m->open;
}

/* Apply one request and commit it as one generation.  Returns the commit's
 * status (0 or the error); the model advances only on success. */
static int fx_commit(coord_store *s, fx_req *r, fx_model *m, uint64_t no,
                     bool sync, coord_error *err)
{
    coord_apply_result res;
    int rc = coord_store_apply(s, fx_req_done(r, 7, no), &res, err);
    if (!rc)
        rc = coord_store_commit(s, sync, NULL, err);
    if (!rc && m)
        fx_model_commit(m);
    fx_req_free(r);
    return rc;
}

/* ---- checking through the reader -------------------------------------- */

/* The file in `dir` holds exactly the model's generation `g` (via a fresh
 * reader snapshot of the newest generation, which must be g). */
static void fx_check_state(const char *dir, const fx_model *m, uint64_t g)
{
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    assert_int_equal(snap.generation, g);
    const fx_state *st = &m->gen[g];
    uint64_t live = 0;
    for (uint32_t i = 0; i < FX_ITEMS; i++) {
        uint8_t id[16];
        fx_item_id(i, id);
        sutra_concept c;
        int rc = sutra_get(&snap, (const sutra_id *)id, &c);
        if (st->version[i] == 0) {
            if (rc != SUTRA_ENOTFOUND)
                print_error("item %u: expected absent at gen %llu, rc %d\n", i,
                            (unsigned long long)g, rc);
            assert_int_equal(rc, SUTRA_ENOTFOUND);
            continue;
        }
        live++;
        if (rc != 0)
            print_error("item %u v%u: rc %d at gen %llu\n", i, st->version[i],
                        rc, (unsigned long long)g);
        assert_int_equal(rc, 0);
        char want[256];
        size_t len = fx_content(i, st->version[i], want, sizeof(want));
        assert_int_equal(c.content_len, len);
        assert_memory_equal(c.content, want, len);
        assert_int_equal(c.dim, FX_DIM);
        assert_true(c.embedding[0] == (float)i);
    }
    assert_int_equal(snap.concept_count, live);
    sutra_verify_report rep;
    int vrc = sutra_verify(&snap, NULL, &rep);
    if (vrc)
        print_error("verify: %s at %llu: %s\n", rep.rule,
                    (unsigned long long)rep.offset, rep.message);
    assert_int_equal(vrc, 0);
    sutra_close(db);
}

#endif
