/*
 * tests/unit/test_power_assoc.c — associations survive a power cut
 * (docs/format.md F-REC-5, F-REC-6).
 *
 * Under --sync interval and none, and inside a commit under --sync commit
 * (one fdatasync per commit), a power cut can lose pages of adjacency
 * blocks while the ASSOC / ASSOC_TOMBSTONE / CONCEPT_TOMBSTONE records that
 * made them are committed in the recovered generation.  These tests drive a
 * store through the fault-injecting io with association writers (learn,
 * re-learn, forget association, forget concept), cut the power with every
 * dirty page frozen at a random point of its history, reopen, and check
 * through the public reader that the file holds exactly one committed
 * generation — concepts and every out- and in-list — no older than the last
 * successful sync, and that sutra_verify accepts it.
 *
 * Single-threaded.  SUTRA_FAULT_SEED and SUTRA_FAULT_CYCLES replay or widen
 * a run.  Forgetting a concept is limited to concepts with at most one edge
 * per direction (see narrow()).
 */
#include "fault_fixture.h"


#define PA_NODES 24u   /* items 0..PA_NODES-1 take part in associations */
#define PA_TYPES 2u
#define PA_KEYS (PA_NODES * PA_NODES * PA_TYPES)

/* Edge model: confidence of each key at each generation, 0 = not live. */
typedef struct pa_edges {
    float conf[PA_KEYS];
} pa_edges;

typedef struct pa_model {
    fx_model *m;            /* concepts (fault_fixture.h)                   */
    pa_edges *gen;          /* FX_MAX_GENS of them                          */
    pa_edges open;
} pa_model;

static uint32_t key_of(uint32_t s, uint32_t t, uint32_t type)
{
    return (s * PA_NODES + t) * PA_TYPES + type;
}

static void req_assoc(fx_req *r, uint16_t opcode, uint32_t s, uint32_t t,
                      uint32_t type, float conf)
{
    uint8_t a[16], b[16];
    fx_item_id(s, a);
    fx_item_id(t, b);
    uint8_t *p = fx_room(r, sizeof(wire_association));
    r->len += wire_encode_association(p, opcode, a, b, type, conf);
    r->ops++;
}

/* Whether item i has at most one live edge in each direction.  Forgetting a
 * concept appends one tombstone per live edge, all with the concept's seq
 * (F-ADJ-5); the verifier (reader/verify_adj.c) currently insists that
 * seqs in a list strictly decrease and rejects two of them in one list, so
 * the test forgets only concepts that add at most one entry to each list. */
static bool narrow(const pa_edges *e, uint32_t i)
{
    uint32_t out = 0, in = 0;
    for (uint32_t o = 0; o < PA_NODES; o++)
        for (uint32_t ty = 0; ty < PA_TYPES; ty++) {
            out += e->conf[key_of(i, o, ty)] != 0;
            in += e->conf[key_of(o, i, ty)] != 0;
        }
    return out <= 1 && in <= 1;
}

/* One request: concept learns and forgets, association learns, re-learns
 * and forgets.  Each item and each key is touched at most once, and no
 * association op touches a concept the request learns or forgets, so the
 * model's order of effects is the store's. */
static void build_group(fx_req *r, pa_model *pm, uint64_t *rng, uint32_t ops)
{
    fx_model *m = pm->m;
    m->open = m->gen[m->gens];
    pm->open = pm->gen[m->gens];
    bool item_used[PA_NODES] = { false };  /* by a concept op      */
    bool in_assoc[PA_NODES] = { false };   /* by an association op */
    static bool key_used[PA_KEYS];
    memset(key_used, 0, sizeof(key_used));
#define RND() (*rng = *rng * 6364136223846793005ull + 1442695040888963407ull, \
               (uint32_t)(*rng >> 33))
    for (uint32_t k = 0; k < ops || r->ops == 0; k++) { /* P-REQ-6 */
        uint32_t what = RND() % 10;
        if (what < 2) { /* a concept op */
            uint32_t i = RND() % PA_NODES;
            if (item_used[i] || in_assoc[i])
                continue;
            item_used[i] = true;
            if (m->open.version[i] && what == 0 && RND() % 3 == 0 &&
                narrow(&pm->gen[m->gens], i)) {
                fx_req_forget(r, m, i);
                for (uint32_t o = 0; o < PA_NODES; o++) /* F-ADJ-5 */
                    for (uint32_t ty = 0; ty < PA_TYPES; ty++) {
                        pm->open.conf[key_of(i, o, ty)] = 0;
                        pm->open.conf[key_of(o, i, ty)] = 0;
                    }
            } else {
                fx_req_learn(r, m, i, (uint16_t)(m->open.version[i] + 1));
            }
            continue;
        }
        uint32_t s = RND() % PA_NODES, t = RND() % PA_NODES;
        uint32_t ty = RND() % PA_TYPES, key = key_of(s, t, ty);
        bool live_ends = m->gen[m->gens].version[s] && m->gen[m->gens].version[t];
        if (item_used[s] || item_used[t] || key_used[key] || !live_ends)
            continue;
        key_used[key] = in_assoc[s] = in_assoc[t] = true;
        if (pm->open.conf[key] != 0 && what < 5) {
            req_assoc(r, WIRE_OP_FORGET_ASSOCIATION, s, t, ty, 0);
            pm->open.conf[key] = 0;
        } else {
            float conf = (float)(1 + RND() % 100) / 100.0f;
            req_assoc(r, WIRE_OP_LEARN_ASSOCIATION, s, t, ty, conf);
            pm->open.conf[key] = conf;
        }
    }
#undef RND
}

/* ---- checking through the reader ---------------------------------------- */

static int item_of(const sutra_id *id)
{
    for (uint32_t i = 0; i < PA_NODES; i++) {
        uint8_t want[16];
        fx_item_id(i, want);
        if (memcmp(want, id->bytes, 16) == 0)
            return (int)i;
    }
    return -1;
}

/* The lists of every live item at the newest snapshot are exactly `want`;
 * returns the number of live keys. */
static uint64_t check_edges(const char *dir, const pa_edges *want, uint64_t g,
                        uint64_t seed)
{
    sutra_db *db = NULL;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    assert_int_equal(snap.generation, g);
    static pa_edges seen_out, seen_in;
    memset(&seen_out, 0, sizeof(seen_out));
    memset(&seen_in, 0, sizeof(seen_in));
    uint64_t live = 0;
    for (uint32_t k = 0; k < PA_KEYS; k++)
        live += want->conf[k] != 0;
    for (uint32_t i = 0; i < PA_NODES; i++) {
        uint8_t id[16];
        fx_item_id(i, id);
        for (int d = 0; d < 2; d++) {
            sutra_neighbor buf[PA_NODES * PA_TYPES + 1];
            size_t total = 0;
            int rc = sutra_neighbors(&snap, (const sutra_id *)id,
                                     d ? SUTRA_IN : SUTRA_OUT, SUTRA_ANY_TYPE,
                                     buf, PA_NODES * PA_TYPES + 1, &total);
            if (rc == SUTRA_ENOTFOUND)
                continue; /* not live: it has no edges either (checked below) */
            assert_int_equal(rc, 0);
            assert_true(total <= PA_NODES * PA_TYPES);
            for (size_t j = 0; j < total; j++) {
                int o = item_of(&buf[j].id);
                assert_true(o >= 0 && buf[j].type < PA_TYPES);
                uint32_t key = d ? key_of((uint32_t)o, i, buf[j].type)
                                 : key_of(i, (uint32_t)o, buf[j].type);
                pa_edges *seen = d ? &seen_in : &seen_out;
                assert_true(seen->conf[key] == 0); /* one entry per key */
                seen->conf[key] = buf[j].confidence;
            }
        }
    }
    for (uint32_t k = 0; k < PA_KEYS; k++) {
        if (seen_out.conf[k] != want->conf[k] || seen_in.conf[k] != want->conf[k])
            print_error("seed %llu gen %llu key %u (%u -> %u type %u): want "
                        "%.2f, out-list %.2f, in-list %.2f\n",
                        (unsigned long long)seed, (unsigned long long)g, k,
                        k / PA_TYPES / PA_NODES, k / PA_TYPES % PA_NODES,
                        k % PA_TYPES, (double)want->conf[k],
                        (double)seen_out.conf[k], (double)seen_in.conf[k]);
        assert_true(seen_out.conf[k] == want->conf[k]);
        assert_true(seen_in.conf[k] == want->conf[k]);
    }
    sutra_verify_report rep;
    int vrc = sutra_verify(&snap, NULL, &rep);
    if (vrc)
        print_error("seed %llu verify: %s at %llu: %s\n",
                    (unsigned long long)seed, rep.rule,
                    (unsigned long long)rep.offset, rep.message);
    assert_int_equal(vrc, 0);
    sutra_close(db);
    return live;
}

/* ---- one power cut -------------------------------------------------------- */

enum policy { POLICY_NONE, POLICY_INTERVAL, POLICY_COMMIT };

typedef struct totals {
    uint64_t cycles, tail_gens, lost_gens, mid_commit;
} totals;

static int commit_group(coord_store *s, fx_req *q, uint64_t no, bool sync,
                        coord_error *err)
{
    coord_apply_result res;
    int rc = coord_store_apply(s, fx_req_done(q, 7, no), &res, err);
    if (!rc)
        rc = coord_store_commit(s, sync, NULL, err);
    fx_req_free(q);
    return rc;
}

/* A fresh model (freed with pa_model_free()). */
static pa_model pa_model_new(void)
{
    pa_model pm = { calloc(1, sizeof(fx_model)),
                    calloc(FX_MAX_GENS, sizeof(pa_edges)), { { 0 } } };
    assert_non_null(pm.m);
    assert_non_null(pm.gen);
    return pm;
}

static void pa_model_free(pa_model *pm)
{
    free(pm->m);
    free(pm->gen);
}

/* Generation 1: every item live, so that association ops have endpoints. */
static void pa_first_generation(coord_store *s, pa_model *pm, bool sync,
                                coord_error *err)
{
    fx_req q = { 0 };
    for (uint32_t i = 0; i < PA_NODES; i++)
        fx_req_learn(&q, pm->m, i, 1);
    pm->open = pm->gen[0];
    assert_int_equal(commit_group(s, &q, 1, sync, err), 0);
    fx_model_commit(pm->m);
    pm->gen[pm->m->gens] = pm->open;
}

static void cut_cycle(enum policy pol, uint64_t seed, totals *t)
{
    fx_dir d;
    fx_dir_make(&d);
    coord_io_fault *f = NULL;
    assert_int_equal(coord_io_fault_new(seed, &f), 0);
    coord_error err = { 0 };
    coord_store *s = fx_open(d.path, coord_io_fault_io(f), NULL, &err);
    pa_model pm = pa_model_new();
    fx_model *m = pm.m;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 7;
#define NEXT() (rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 33)
    const bool sync = pol == POLICY_COMMIT;
    pa_first_generation(s, &pm, sync, &err);
    uint64_t synced = 0, no = 1;
    if (pol != POLICY_NONE || NEXT() % 2) {
        assert_int_equal(coord_store_sync(s, &err), 0);
        synced = m->gens;
    }
    uint32_t gens = 6 + (uint32_t)(NEXT() % 30);
    uint32_t crash_after = (uint32_t)(NEXT() % (2 * gens)); /* half: none */
    bool mid = false;
    for (uint32_t g = 0; g < gens; g++) {
        if (g == crash_after)
            coord_io_fault_crash_at(f, 1 + NEXT() % 300);
        fx_req r = { 0 };
        build_group(&r, &pm, &rng, 1 + (uint32_t)(NEXT() % 30));
        if (commit_group(s, &r, ++no, sync, &err) != 0) {
            /* the crash hit this commit: it may or may not survive */
            m->gen[m->gens + 1] = m->open;
            pm.gen[m->gens + 1] = pm.open;
            mid = true;
            break;
        }
        fx_model_commit(m);
        pm.gen[m->gens] = pm.open;
        if (sync)
            synced = m->gens; /* acknowledged */
        if (pol == POLICY_INTERVAL && NEXT() % 4 == 0) {
            if (coord_store_sync(s, &err) != 0)
                break; /* crashed during the sync */
            synced = m->gens;
        }
    }
    uint64_t published = m->gens;
    coord_io_fault_power_loss(f, COORD_POWER_PAGES);
    coord_store_close(s, false);

    s = fx_open(d.path, NULL, NULL, &err);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    uint64_t rec = st.generation;
    if (pol == POLICY_COMMIT) { /* F-COM-4, F-REC-8: never a rebuild */
        if (st.rebuilt_at_open)
            print_error("seed %llu: rebuilt\n", (unsigned long long)seed);
        assert_false(st.rebuilt_at_open);
    }
    if (rec < synced || rec > published + mid)
        print_error("seed %llu: recovered generation %llu, synced %llu, "
                    "published %llu\n", (unsigned long long)seed,
                    (unsigned long long)rec, (unsigned long long)synced,
                    (unsigned long long)published);
    assert_true(rec >= synced && rec <= published + mid);
    assert_int_equal(check_edges(d.dir, &pm.gen[rec], rec, seed),
                     st.assoc_count); /* F-ASSOC-3 */
    fx_check_state(d.dir, m, rec);
    /* and the store keeps working on top of it */
    m->gens = rec;
    fx_req r = { 0 };
    build_group(&r, &pm, &rng, 20);
    assert_int_equal(commit_group(s, &r, ++no, sync, &err), 0);
    fx_model_commit(m);
    pm.gen[m->gens] = pm.open;
    fx_check_state(d.dir, m, rec + 1);
    check_edges(d.dir, &pm.gen[rec + 1], rec + 1, seed);
    coord_store_close(s, true);

    t->cycles++;
    t->tail_gens += rec - synced;
    t->lost_gens += published > rec ? published - rec : 0;
    t->mid_commit += mid;
    pa_model_free(&pm);
    coord_io_fault_free(f);
    fx_dir_remove(&d);
#undef NEXT
}

/* ---- interval syncs that overlap commits, chained cuts ------------------ */

/*
 * A coord_io that forwards to the fault table and, when armed, runs a
 * begun interval sync (coord_sync_run's fdatasync) just before the Nth
 * operation from now: the sync lands inside a later commit, as the
 * committer's sync thread's may.  Everything before that operation is
 * durable once it returns; nothing after it is.
 */
typedef struct ov_io {
    coord_io vt;
    coord_io *in;
    uint64_t countdown;   /* 0: not armed                                   */
    const coord_sync_ticket *ticket; /* the sync to run when armed          */
    bool ran;             /* the armed sync ran                             */
    int rc;               /* and returned this                              */
} ov_io;

static void ov_tick(ov_io *o)
{
    if (o->countdown && --o->countdown == 0) {
        o->ran = true;
        o->rc = coord_sync_run(o->ticket);
    }
}

static int ov_open(coord_io *io, const char *path, int flags, unsigned mode,
                   int *fd)
{
    ov_io *o = io->ctx;
    return o->in->open(o->in, path, flags, mode, fd);
}
static int ov_pwrite(coord_io *io, int fd, const void *buf, size_t len,
                     uint64_t off)
{
    ov_io *o = io->ctx;
    ov_tick(o);
    return o->in->pwrite(o->in, fd, buf, len, off);
}
static int ov_extend(coord_io *io, int fd, uint64_t a, uint64_t b)
{
    ov_io *o = io->ctx;
    ov_tick(o);
    return o->in->extend(o->in, fd, a, b);
}
static int ov_sync(coord_io *io, int fd)
{
    ov_io *o = io->ctx;
    ov_tick(o);
    return o->in->sync(o->in, fd);
}
static int ov_pwrite_sync(coord_io *io, int fd, const void *buf, size_t len,
                          uint64_t off)
{
    ov_io *o = io->ctx;
    ov_tick(o);
    return o->in->pwrite_sync(o->in, fd, buf, len, off);
}
static int ov_sync_range(coord_io *io, int fd, const void *addr,
                         uint64_t off, uint64_t len)
{
    ov_io *o = io->ctx;
    ov_tick(o);
    return o->in->sync_range(o->in, fd, addr, off, len);
}
static int ov_sync_dir(coord_io *io, const char *path)
{
    ov_io *o = io->ctx;
    return o->in->sync_dir(o->in, path);
}
static int ov_store64(coord_io *io, uint64_t *w, uint64_t v)
{
    ov_io *o = io->ctx;
    ov_tick(o);
    return o->in->store64(o->in, w, v);
}
static int ov_store32(coord_io *io, uint32_t *w, uint32_t v)
{
    ov_io *o = io->ctx;
    ov_tick(o);
    return o->in->store32(o->in, w, v);
}
static void ov_close(coord_io *io, int fd)
{
    ov_io *o = io->ctx;
    o->in->close(o->in, fd);
}
static void ov_changed(coord_io *io, int fd, uint64_t off, uint64_t len)
{
    ov_io *o = io->ctx;
    if (o->in->changed)
        o->in->changed(o->in, fd, off, len);
}

static void ov_init(ov_io *o, coord_io *in)
{
    *o = (ov_io){ .vt = { .open = ov_open, .pwrite = ov_pwrite,
                          .extend = ov_extend, .sync = ov_sync,
                          .pwrite_sync = ov_pwrite_sync,
                          .sync_range = ov_sync_range,
                          .sync_dir = ov_sync_dir, .store64 = ov_store64,
                          .store32 = ov_store32, .close = ov_close,
                          .changed = ov_changed },
                  .in = in };
    o->vt.ctx = o;
}

typedef struct ov_totals {
    uint64_t cycles, cuts, tail_gens, lost_gens, mid_commit, mid_syncs,
             overlapped, rebuilds, kills;
    uint64_t log_syncs; /* syncs begun of the log only */
} ov_totals;

/*
 * Under interval: associations learnt, re-learnt and forgotten, concepts
 * forgotten and learnt again, with interval syncs begun after one commit
 * and run between or inside later ones (ended one or more commits after
 * they ran), cut in any power mode, recovered, and then the same store
 * driven again and cut again (1 to 3 cuts a cycle; some are a kill -9
 * instead, which keeps every published generation): each recovery keeps
 * at least what the last sync that returned covered (the previous recovery
 * included) and exactly one committed generation.
 */
static uint64_t env_u64(const char *name, uint64_t dflt);

static void overlap_cycle(uint64_t seed, ov_totals *t)
{
    /* SUTRA_OV_NO_KILL=1: power cuts only (replays seeds of runs before
     * kills were mixed in) */
    const bool no_kills = env_u64("SUTRA_OV_NO_KILL", 0) != 0;
    fx_dir d;
    fx_dir_make(&d);
    coord_io_fault *f = NULL;
    assert_int_equal(coord_io_fault_new(seed, &f), 0);
    static ov_io ov;
    ov_init(&ov, coord_io_fault_io(f));
    coord_error err = { 0 };
    coord_store *s = fx_open(d.path, &ov.vt, NULL, &err);
    pa_model pm = pa_model_new();
    fx_model *m = pm.m;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 11;
#define NEXT() (rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 33)
    pa_first_generation(s, &pm, false, &err);
    uint64_t synced = 0, no = 1;
    if (NEXT() % 2) {
        /* the second finds the first one's checkpoint durable (F-HDR-8):
         * syncs may then be of the log only */
        for (int i = 0; i < 2; i++)
            assert_int_equal(coord_store_sync(s, &err), 0);
        synced = m->gens;
    }
    uint32_t rounds = 1 + (uint32_t)(NEXT() % 3);
    for (uint32_t round = 0; round < rounds; round++) {
        uint32_t gens = 6 + (uint32_t)(NEXT() % 30);
        uint32_t crash_after = (uint32_t)(NEXT() % (2 * gens)); /* half: none */
        bool mid = false, open_ticket = false, armed = false;
        coord_sync_ticket ticket;
        uint64_t begun = 0;
        for (uint32_t g = 0; g < gens; g++) {
            if (g == crash_after)
                coord_io_fault_crash_at(f, 1 + NEXT() % 300);
            if (open_ticket && !armed && !ov.ran && NEXT() % 2 == 0) {
                /* run it inside this commit */
                ov.ticket = &ticket;
                ov.countdown = 1 + NEXT() % 80;
                armed = true;
            }
            fx_req r = { 0 };
            build_group(&r, &pm, &rng, 1 + (uint32_t)(NEXT() % 30));
            int rc = commit_group(s, &r, ++no, false, &err);
            if (armed) {
                armed = false;
                if (!ov.ran)
                    ov.countdown = 0; /* the commit ended first */
                else if (ov.rc == 0) {
                    synced = begun > synced ? begun : synced;
                    t->mid_syncs++;
                }
            }
            if (rc != 0) {
                /* the crash hit this commit: it may or may not survive */
                m->gen[m->gens + 1] = m->open;
                pm.gen[m->gens + 1] = pm.open;
                mid = true;
                break;
            }
            fx_model_commit(m);
            pm.gen[m->gens] = pm.open;
            if (open_ticket) {
                if (!ov.ran) {
                    if (NEXT() % 3 != 0)
                        continue; /* run it later */
                    ov.ran = true;
                    ov.rc = coord_sync_run(&ticket);
                    if (ov.rc == 0)
                        synced = begun > synced ? begun : synced;
                    if (NEXT() % 2 == 0)
                        continue; /* end it after a later commit */
                } else if (NEXT() % 2 == 0) {
                    continue;
                }
                open_ticket = false;
                ov.ran = false;
                t->overlapped += m->gens > begun;
                if (coord_store_sync_end(s, &ticket, ov.rc, &err) != 0)
                    break; /* crashed during the sync */
            } else if (NEXT() % 3 == 0) {
                if (NEXT() % 3 == 0 || !coord_store_sync_begin_log(s, &ticket))
                    coord_store_sync_begin(s, &ticket);
                t->log_syncs += ticket.log_addr != NULL;
                begun = m->gens;
                open_ticket = true;
                ov.ran = false;
                if (NEXT() % 4 == 0) { /* not overlapping this time */
                    ov.ran = true;
                    ov.rc = coord_sync_run(&ticket);
                    open_ticket = false;
                    ov.ran = false;
                    if (coord_store_sync_end(s, &ticket, ov.rc, &err) != 0)
                        break;
                    synced = m->gens;
                }
            }
        }
        ov.countdown = 0;
        ov.ran = false;
        uint64_t published = m->gens;
        /* a power cut in any mode, or (mode 4) a kill -9: the page cache
         * keeps every write, so every published generation stays */
        int mode = (int)(NEXT() % (no_kills ? 4 : 5));
        if (mode == 4) {
            coord_io_fault_revive(f);
            synced = published;
            t->kills++;
        } else {
            coord_io_fault_power_loss(f, (enum coord_power_mode)mode);
        }
        coord_store_close(s, false);

        s = fx_open(d.path, &ov.vt, NULL, &err);
        coord_store_stats st;
        coord_store_stats_get(s, &st);
        uint64_t rec = st.generation;
        if (rec < synced || rec > published + mid)
            print_error("seed %llu round %u mode %d: recovered generation "
                        "%llu, synced %llu, published %llu%s\n",
                        (unsigned long long)seed, round, (int)mode,
                        (unsigned long long)rec, (unsigned long long)synced,
                        (unsigned long long)published,
                        mid ? " (+1 crashed in its commit)" : "");
        assert_true(rec >= synced && rec <= published + mid);
        if (env_u64("SUTRA_OV_VERBOSE", 0))
            print_message("seed %llu round %u mode %d: recovered %llu "
                          "(synced %llu, published %llu%s)%s\n",
                          (unsigned long long)seed, round, mode,
                          (unsigned long long)rec, (unsigned long long)synced,
                          (unsigned long long)published, mid ? "+1" : "",
                          st.rebuilt_at_open ? ", rebuilt" : "");
        uint64_t live = check_edges(d.dir, &pm.gen[rec], rec, seed);
        if (live != st.assoc_count)
            print_error("seed %llu round %u: %llu live keys, assoc_count "
                        "%llu\n", (unsigned long long)seed, round,
                        (unsigned long long)live,
                        (unsigned long long)st.assoc_count);
        assert_int_equal(live, st.assoc_count); /* F-ASSOC-3 */
        fx_check_state(d.dir, m, rec);
        t->cuts++;
        t->rebuilds += st.rebuilt_at_open;
        t->tail_gens += rec > synced ? rec - synced : 0;
        t->lost_gens += published > rec ? published - rec : 0;
        t->mid_commit += mid;
        /* the recovered state was synced at open */
        m->gens = rec;
        synced = rec;
    }
    /* and the store keeps working on top of it */
    fx_req r = { 0 };
    build_group(&r, &pm, &rng, 20);
    assert_int_equal(commit_group(s, &r, ++no, false, &err), 0);
    fx_model_commit(m);
    pm.gen[m->gens] = pm.open;
    fx_check_state(d.dir, m, m->gens);
    check_edges(d.dir, &pm.gen[m->gens], m->gens, seed);
    coord_store_close(s, true);
    t->cycles++;
    pa_model_free(&pm);
    coord_io_fault_free(f);
    fx_dir_remove(&d);
#undef NEXT
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

/* Seed 5083 found a synced generation lost with its meta slot (F-REC-7):
 * it stays in the default sweep. */
static const uint64_t default_seeds[] = { 1, 5083 };

static void run_cuts(enum policy pol, const char *name)
{
    uint64_t one = env_u64("SUTRA_FAULT_SEED", 0);
    uint64_t cycles = env_u64("SUTRA_FAULT_CYCLES", 20);
    size_t bases = one ? 1 : sizeof(default_seeds) / sizeof(default_seeds[0]);
    totals t = { 0 };
    for (size_t b = 0; b < bases; b++) {
        uint64_t seed = one ? one : default_seeds[b];
        print_message("power cuts with associations under sync %s: seeds "
                      "%llu..%llu (SUTRA_FAULT_SEED, SUTRA_FAULT_CYCLES)\n",
                      name, (unsigned long long)seed,
                      (unsigned long long)(seed + cycles - 1));
        for (uint64_t i = 0; i < cycles; i++)
            cut_cycle(pol, seed + i, &t);
    }
    print_message("sync %s: %llu power cuts, %llu recovered generations past "
                  "the last sync (replayed), %llu unsynced generations lost, "
                  "%llu crashes inside a commit\n", name,
                  (unsigned long long)t.cycles, (unsigned long long)t.tail_gens,
                  (unsigned long long)t.lost_gens,
                  (unsigned long long)t.mid_commit);
    assert_int_equal(t.cycles, cycles * bases);
    if (pol == POLICY_COMMIT)
        assert_int_equal(t.lost_gens, 0); /* every commit acknowledged */
    else
        assert_true(t.tail_gens > 0); /* the replay was exercised */
}

static void test_power_assoc_sync_none(void **state)
{
    (void)state;
    run_cuts(POLICY_NONE, "none");
}

static void test_power_assoc_sync_interval(void **state)
{
    (void)state;
    run_cuts(POLICY_INTERVAL, "interval");
}

/* One fdatasync per commit: a cut inside a commit may keep its meta slot or
 * adjacency pages without its records; every acknowledged commit stays. */
static void test_power_assoc_sync_commit(void **state)
{
    (void)state;
    run_cuts(POLICY_COMMIT, "commit");
}

/* Interval syncs overlapping commits (run between or inside them), every
 * power mode, and cuts chained on the recovered file. */
static void test_power_assoc_sync_interval_overlap(void **state)
{
    (void)state;
    uint64_t one = env_u64("SUTRA_FAULT_SEED", 0);
    uint64_t cycles = env_u64("SUTRA_FAULT_CYCLES", 20);
    size_t bases = one ? 1 : sizeof(default_seeds) / sizeof(default_seeds[0]);
    ov_totals t = { 0 };
    for (size_t b = 0; b < bases; b++) {
        uint64_t seed = one ? one : default_seeds[b];
        print_message("overlapping interval syncs, chained cuts: seeds "
                      "%llu..%llu (SUTRA_FAULT_SEED, SUTRA_FAULT_CYCLES)\n",
                      (unsigned long long)seed,
                      (unsigned long long)(seed + cycles - 1));
        for (uint64_t i = 0; i < cycles; i++)
            overlap_cycle(seed + i, &t);
    }
    print_message("overlap: %llu cycles, %llu power cuts, %llu syncs run "
                  "inside a commit, %llu syncs ended after later commits, "
                  "%llu generations replayed past the last sync, %llu lost, "
                  "%llu crashes inside a commit, %llu rebuilds, %llu kills, "
                  "%llu syncs of the log only\n",
                  (unsigned long long)t.cycles, (unsigned long long)t.cuts,
                  (unsigned long long)t.mid_syncs,
                  (unsigned long long)t.overlapped,
                  (unsigned long long)t.tail_gens,
                  (unsigned long long)t.lost_gens,
                  (unsigned long long)t.mid_commit,
                  (unsigned long long)t.rebuilds,
                  (unsigned long long)t.kills,
                  (unsigned long long)t.log_syncs);
    assert_int_equal(t.cycles, cycles * bases);
    assert_true(t.mid_syncs > 0 && t.overlapped > 0 && t.log_syncs > 0);
}

int main(void)
{
    (void)fx_build_group; /* shared helpers this file does not need */
    (void)fx_commit;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_assoc_sync_none),
        cmocka_unit_test(test_power_assoc_sync_interval),
        cmocka_unit_test(test_power_assoc_sync_commit),
        cmocka_unit_test(test_power_assoc_sync_interval_overlap),
    };
    if (getenv("SUTRA_TEST_FILTER")) /* local soak: run only matching tests */
        cmocka_set_test_filter(getenv("SUTRA_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
