/*
 * bench/bench_write.c — writes through a real sutra-coordinator process,
 * beside a raw NNG round trip and LMDB inserts of the same records.
 *
 * For each sync policy (none, interval:10, commit) the benchmark starts the
 * coordinator with fork/exec on a fresh directory and measures, from client
 * processes it forks: single-op learn_concept round trips from 1 and from 4
 * clients (per-op clock_gettime around each call; its ~tens of ns are noise
 * at microsecond round trips and are not subtracted) and batched throughput
 * (1,000 ops per request, one client; under --sync none also with two
 * requests in flight through sutra_batch_submit, the way a bulk loader
 * overlaps building the next batch with the coordinator's work, with glibc's
 * allocator thresholds raised as sutra.h's caveat advises for such a
 * client).  Every write is a new concept of the
 * same shape as bench_get's (384 floats, 64..200 bytes of content),
 * generated before the clock starts.
 *
 * Peers, in the same run: (a) a raw NNG REQ/REP round trip with the same
 * request bytes and a 48-byte reply (the size of Sutra's reply header),
 * against a trivial blocking echo server in a forked process — the floor of
 * any IPC write; (b) LMDB: 1,000 puts per txn with MDB_NOSYNC (beside
 * batched --sync none), and durable single-put txns with the default sync
 * from 4 processes (beside --sync commit from 4 clients).
 *
 * Wake-ups: each client reports its getrusage() context switches (all its
 * threads) over its timed loop; the server's (coordinator's or echo
 * server's) are summed over /proc/<pid>/task/<tid>/status, read while the
 * clients hold at a gate before and after their loops.
 *
 * The parent never touches NNG (it is not fork-safe): all NNG work happens
 * in children, which report through shared memory.
 *
 * Knobs: SUTRA_BENCH_OPS (round trips per client, default 4000),
 * SUTRA_BENCH_DURABLE_OPS (per client under --sync commit and for LMDB
 * durable, default 1000), SUTRA_BENCH_BATCHES (1000-op requests per run,
 * default 100), SUTRA_BENCH_REPEAT, SUTRA_BENCH_QUICK.
 */
#include "bench/bench.h"

#include <lmdb.h>
#include <malloc.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "layout/wire.h"

#define MAX_REPEATS 64
#define MAX_CLIENTS 4
#define BATCH_OPS 1000u
#define REPLY_BYTES 48u /* sizeof(wire_reply_header) */

/* ---- pre-generated records -------------------------------------------- */

typedef struct record_set {
    size_t count;
    uint64_t first;          /* record index of element 0                */
    float *embedding;        /* count * BENCH_DIM                        */
    uint8_t *content;        /* count * BENCH_CONTENT_MAX                */
    size_t *content_len;
} record_set;

static int records_make(record_set *rs, uint64_t first, size_t count)
{
    rs->count = count;
    rs->first = first;
    rs->embedding = malloc(count * BENCH_DIM * sizeof(float));
    rs->content = malloc(count * BENCH_CONTENT_MAX);
    rs->content_len = malloc(count * sizeof(size_t));
    if (rs->embedding == NULL || rs->content == NULL || rs->content_len == NULL)
        return -1;
    for (size_t k = 0; k < count; k++) {
        bench_record_embedding(first + k, rs->embedding + k * BENCH_DIM);
        rs->content_len[k] = bench_record_content(first + k,
                                                  rs->content + k * BENCH_CONTENT_MAX);
    }
    return 0;
}

static void record_input(const record_set *rs, size_t k, sutra_concept_input *in)
{
    memset(in, 0, sizeof(*in));
    bench_record_id(rs->first + k, &in->id);
    in->content = rs->content + k * BENCH_CONTENT_MAX;
    in->content_len = rs->content_len[k];
    in->embedding = rs->embedding + k * BENCH_DIM;
    in->dim = BENCH_DIM;
    in->strength = bench_record_strength(rs->first + k);
    in->confidence = bench_record_confidence(rs->first + k);
}

/* ---- jobs run by child processes --------------------------------------- */

enum job_kind { JOB_SUTRA_SINGLE, JOB_SUTRA_BATCH, JOB_SUTRA_PIPE, JOB_RAW_NNG,
                JOB_LMDB_DURABLE, JOB_LMDB_BATCH, JOB_LMDB_BATCH_WRITEMAP };

typedef struct client_result {
    uint64_t end_ns;
    uint64_t ctxsw;
    uint64_t ops;
} client_result;

typedef struct job {
    enum job_kind kind;
    char target[320];        /* coordinator dir, NNG URL or LMDB dir    */
    uint64_t first_record;
    size_t rounds;           /* round trips, requests or txns           */
    bench_gate *start, *end; /* shared                                  */
    client_result *res;      /* shared, this client's                   */
    double *lat_us;          /* shared, rounds entries                  */
} job;

/* Common frame of a client: ready -> timed loop -> report -> hold. */
typedef int (*round_fn)(void *state, size_t k);

static int timed_loop(job *j, round_fn fn, void *state)
{
    bench_gate_enter(j->start);
    uint64_t ctx0 = bench_self_ctxsw();
    for (size_t k = 0; k < j->rounds; k++) {
        uint64_t t0 = bench_now_ns();
        if (fn(state, k) != 0)
            return -1;
        j->lat_us[k] = (double)(bench_now_ns() - t0) / 1e3;
    }
    j->res->end_ns = bench_now_ns();
    j->res->ctxsw = bench_self_ctxsw() - ctx0;
    bench_gate_enter(j->end);
    return 0;
}

#define PIPE_DEPTH 2 /* batches in flight for JOB_SUTRA_PIPE */

typedef struct sutra_state {
    sutra_client *client;
    record_set rs;
    sutra_batch *batch;
    sutra_batch *pipe[PIPE_DEPTH];
    sutra_pending *pending[PIPE_DEPTH];
    size_t rounds;
} sutra_state;

static int sutra_single_round(void *state, size_t k)
{
    sutra_state *s = state;
    sutra_concept_input in;
    sutra_write_result wr;
    record_input(&s->rs, k, &in);
    int rc = sutra_learn_concept(s->client, &in, &wr);
    if (rc != 0)
        fprintf(stderr, "bench_write: learn_concept: %s (%s)\n",
                sutra_strerror(rc), sutra_client_last_error(s->client));
    return rc;
}

static int sutra_batch_round(void *state, size_t k)
{
    sutra_state *s = state;
    sutra_write_result wr;
    sutra_batch_clear(s->batch);
    for (size_t i = 0; i < BATCH_OPS; i++) {
        sutra_concept_input in;
        record_input(&s->rs, k * BATCH_OPS + i, &in);
        if (sutra_batch_learn_concept(s->batch, &in) != 0)
            return -1;
    }
    int rc = sutra_batch_commit(s->client, s->batch, &wr);
    if (rc != 0)
        fprintf(stderr, "bench_write: batch commit: %s (%s)\n",
                sutra_strerror(rc), sutra_client_last_error(s->client));
    return rc;
}

static int pipe_wait(sutra_state *s, size_t slot)
{
    if (s->pending[slot] == NULL)
        return 0;
    sutra_write_result wr;
    int rc = sutra_pending_wait(s->pending[slot], -1, &wr);
    if (rc != 0)
        fprintf(stderr, "bench_write: pipelined batch: %s\n", sutra_strerror(rc));
    sutra_pending_free(s->pending[slot]);
    s->pending[slot] = NULL;
    return rc;
}

/* Round k: wait for the batch sent PIPE_DEPTH rounds ago, then build and
 * submit the next one; the last round also waits for every batch, so the
 * clock stops when all of them are acknowledged. */
static int sutra_pipe_round(void *state, size_t k)
{
    sutra_state *s = state;
    size_t slot = k % PIPE_DEPTH;
    if (pipe_wait(s, slot) != 0)
        return -1;
    sutra_batch *b = s->pipe[slot];
    sutra_batch_clear(b);
    for (size_t i = 0; i < BATCH_OPS; i++) {
        sutra_concept_input in;
        record_input(&s->rs, k * BATCH_OPS + i, &in);
        if (sutra_batch_learn_concept(b, &in) != 0)
            return -1;
    }
    int rc = sutra_batch_submit(s->client, b, &s->pending[slot]);
    if (rc != 0) {
        fprintf(stderr, "bench_write: batch submit: %s\n", sutra_strerror(rc));
        return rc;
    }
    for (size_t d = 0; k + 1 == s->rounds && d < PIPE_DEPTH; d++)
        if (pipe_wait(s, d) != 0)
            return -1;
    return 0;
}

static int run_sutra(job *j)
{
    bool batched = j->kind == JOB_SUTRA_BATCH || j->kind == JOB_SUTRA_PIPE;
    size_t records = batched ? j->rounds * BATCH_OPS : j->rounds;
    sutra_state s = { 0 };
    /* A bulk loader with batches in flight keeps freed request memory, as
     * sutra.h's caveat advises; one batch at a time needs no such care. */
    if (j->kind == JOB_SUTRA_PIPE &&
        (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 ||
         mallopt(M_TRIM_THRESHOLD, 64 << 20) != 1))
        fprintf(stderr, "bench_write: mallopt failed\n");
    int rc = records_make(&s.rs, j->first_record, records + 8);
    if (rc == 0)
        rc = sutra_client_connect(j->target, NULL, &s.client);
    if (rc == 0 && batched)
        rc = sutra_batch_new(&s.batch);
    for (size_t d = 0; d < PIPE_DEPTH && rc == 0 && j->kind == JOB_SUTRA_PIPE; d++)
        rc = sutra_batch_new(&s.pipe[d]);
    s.rounds = j->rounds;
    /* warm-up: connect and exercise the path with records past the timed ones */
    for (size_t k = 0; k < 4 && rc == 0; k++) {
        sutra_concept_input in;
        sutra_write_result wr;
        record_input(&s.rs, records + k, &in);
        rc = sutra_learn_concept(s.client, &in, &wr);
    }
    if (rc != 0) {
        fprintf(stderr, "bench_write: client setup: %s\n", sutra_strerror(rc));
        bench_gate_enter(j->start);
        return -1;
    }
    rc = timed_loop(j, j->kind == JOB_SUTRA_PIPE ? sutra_pipe_round
                       : batched              ? sutra_batch_round
                                              : sutra_single_round, &s);
    for (size_t d = 0; d < PIPE_DEPTH; d++) {
        sutra_pending_free(s.pending[d]);
        sutra_batch_free(s.pipe[d]);
    }
    sutra_batch_free(s.batch);
    sutra_client_close(s.client);
    return rc;
}

typedef struct raw_state {
    nng_socket sock;
    uint8_t **msgs;
    size_t *lens;
} raw_state;

static int raw_round(void *state, size_t k)
{
    raw_state *s = state;
    void *reply = NULL;
    size_t reply_len = 0;
    int rc = nng_send(s->sock, s->msgs[k], s->lens[k], 0);
    if (rc == 0)
        rc = nng_recv(s->sock, &reply, &reply_len, NNG_FLAG_ALLOC);
    if (rc == 0)
        nng_free(reply, reply_len);
    return rc;
}

/* The exact request bytes a Sutra client sends for record k. */
static int raw_encode(const record_set *rs, size_t k, uint8_t **msg, size_t *len)
{
    sutra_concept_input in;
    record_input(rs, k, &in);
    size_t n = sizeof(wire_request_header) +
               wire_learn_concept_size((uint32_t)in.content_len, BENCH_DIM);
    uint8_t *m = aligned_alloc(8, (n + 7) / 8 * 8);
    if (m == NULL)
        return -1;
    wire_request_header h;
    wire_request_header_init(&h, 0, 1, k + 1, 1);
    memcpy(m, &h, sizeof(h));
    wire_encode_learn_concept(m + sizeof(h), 0, in.id.bytes, in.strength,
                              in.confidence, in.content, (uint32_t)in.content_len,
                              in.embedding, BENCH_DIM);
    *msg = m;
    *len = n;
    return 0;
}

static int run_raw(job *j)
{
    raw_state s = { 0 };
    record_set rs;
    s.msgs = calloc(j->rounds + 4, sizeof(*s.msgs));
    s.lens = calloc(j->rounds + 4, sizeof(*s.lens));
    int rc = s.msgs && s.lens ? records_make(&rs, j->first_record, j->rounds + 4) : -1;
    for (size_t k = 0; k < j->rounds + 4 && rc == 0; k++)
        rc = raw_encode(&rs, k, &s.msgs[k], &s.lens[k]);
    if (rc == 0)
        rc = nng_req0_open(&s.sock);
    if (rc == 0)
        rc = nng_dial(s.sock, j->target, NULL, NNG_FLAG_NONBLOCK);
    for (size_t k = 0; k < 4 && rc == 0; k++)
        rc = raw_round(&s, j->rounds + k);
    if (rc != 0) {
        fprintf(stderr, "bench_write: raw nng client: %s\n", nng_strerror(rc));
        bench_gate_enter(j->start);
        return -1;
    }
    rc = timed_loop(j, raw_round, &s);
    nng_close(s.sock);
    return rc;
}

typedef struct lmdb_state {
    MDB_env *env;
    MDB_dbi dbi;
    uint8_t *values;         /* rounds * per_round values, fixed stride */
    size_t *value_len;
    size_t per_round;        /* puts per txn                             */
    uint64_t first;
} lmdb_state;

static int lmdb_round(void *state, size_t k)
{
    lmdb_state *s = state;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    for (size_t i = 0; i < s->per_round && rc == 0; i++) {
        size_t r = k * s->per_round + i;
        sutra_id id;
        bench_record_id(s->first + r, &id);
        MDB_val key = { sizeof(id), &id };
        MDB_val val = { s->value_len[r], s->values + r * bench_lmdb_value_max() };
        rc = mdb_put(txn, s->dbi, &key, &val, 0);
    }
    if (rc == 0)
        return mdb_txn_commit(txn) == 0 ? 0 : -1;
    mdb_txn_abort(txn);
    fprintf(stderr, "bench_write: lmdb put: %s\n", mdb_strerror(rc));
    return -1;
}

static int lmdb_open(lmdb_state *s, const char *dir, unsigned flags)
{
    MDB_txn *txn;
    int rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, 8ull << 30);
    if (rc == 0)
        rc = mdb_env_open(s->env, dir, flags, 0640);
    if (rc == 0)
        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0 && (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) == 0)
        rc = mdb_txn_commit(txn);
    if (rc != 0)
        fprintf(stderr, "bench_write: lmdb %s: %s\n", dir, mdb_strerror(rc));
    return rc;
}

static int run_lmdb(job *j)
{
    lmdb_state s = { .first = j->first_record };
    bool batch = j->kind != JOB_LMDB_DURABLE;
    s.per_round = batch ? BATCH_OPS : 1;
    size_t records = j->rounds * s.per_round;
    s.values = malloc(records * bench_lmdb_value_max());
    s.value_len = malloc(records * sizeof(size_t));
    if (s.values == NULL || s.value_len == NULL)
        return -1;
    for (size_t r = 0; r < records; r++)
        s.value_len[r] = bench_lmdb_value_encode(
            s.first + r, r + 1, s.values + r * bench_lmdb_value_max());
    /* No sync either way; MDB_WRITEMAP writes the pages in place through a
     * writable mapping, LMDB's fastest mode (a process crash keeps the data
     * in both, an OS crash may lose it, as under --sync none). */
    unsigned flags = !batch ? 0
                     : j->kind == JOB_LMDB_BATCH_WRITEMAP
                         ? MDB_NOSYNC | MDB_WRITEMAP
                         : MDB_NOSYNC;
    if (lmdb_open(&s, j->target, flags) != 0) {
        bench_gate_enter(j->start);
        return -1;
    }
    int rc = timed_loop(j, lmdb_round, &s);
    mdb_env_close(s.env);
    return rc;
}

static int run_job(void *arg)
{
    job *j = arg;
    switch (j->kind) {
    case JOB_SUTRA_SINGLE:
    case JOB_SUTRA_BATCH:
    case JOB_SUTRA_PIPE:
        return run_sutra(j);
    case JOB_RAW_NNG:
        return run_raw(j);
    default:
        return run_lmdb(j);
    }
}

/* ---- the raw echo server ---------------------------------------------- */

static int echo_serve(void *arg)
{
    const char *url = arg;
    nng_socket sock;
    uint8_t reply[REPLY_BYTES] = { 0 };
    int rc = nng_rep0_open(&sock);
    if (rc == 0)
        rc = nng_listen(sock, url, NULL, 0);
    while (rc == 0) {
        void *req = NULL;
        size_t len = 0;
        rc = nng_recv(sock, &req, &len, NNG_FLAG_ALLOC);
        if (rc == 0) {
            nng_free(req, len);
            rc = nng_send(sock, reply, sizeof(reply), 0);
        }
    }
    fprintf(stderr, "bench_write: echo server: %s\n", nng_strerror(rc));
    return -1;
}

/* ---- measurements (parent) ---------------------------------------------- */

typedef struct measure {
    double p50_us, p99_us, ops_s;
    double ctx_client, ctx_server; /* per write (or per request if batched) */
    double group;                  /* requests per commit (coordinator)     */
    double syncs;                  /* fdatasyncs per request (coordinator)  */
} measure;

/* The coordinator's counters, fetched by a short-lived child (the parent
 * never touches NNG). */
typedef struct stats_job {
    char target[320];
    sutra_server_stats *out; /* shared */
} stats_job;

static int fetch_stats(void *arg)
{
    stats_job *j = arg;
    sutra_client *c = NULL;
    int rc = sutra_client_connect(j->target, NULL, &c);
    if (rc == 0)
        rc = sutra_client_stats(c, j->out);
    if (rc != 0)
        fprintf(stderr, "bench_write: stats: %s\n", sutra_strerror(rc));
    sutra_client_close(c);
    return rc;
}

static int server_stats(const char *target, sutra_server_stats *out)
{
    sutra_server_stats *shm = bench_shared_alloc(sizeof(*shm));
    if (shm == NULL)
        return -1;
    stats_job j = { .out = shm };
    snprintf(j.target, sizeof(j.target), "%s", target);
    pid_t pid = bench_spawn(fetch_stats, &j);
    int rc = pid > 0 ? bench_wait(pid, "stats client") : -1;
    if (rc == 0)
        *out = *shm;
    bench_shared_free(shm, sizeof(*shm));
    return rc;
}

static uint64_t next_record_base = 1ull << 40;

/* Fork `clients` copies of `tmpl`, time them between the gates, merge. */
static int run_clients_plain(const job *tmpl, int clients, pid_t server,
                             measure *out)
{
    size_t rounds = tmpl->rounds;
    size_t bytes = 2 * sizeof(bench_gate) + clients * sizeof(client_result) +
                   (size_t)clients * rounds * sizeof(double);
    uint8_t *shm = bench_shared_alloc(bytes);
    if (shm == NULL)
        return -1;
    bench_gate *start = (bench_gate *)(void *)shm, *end = start + 1;
    client_result *res = (client_result *)(void *)(end + 1);
    double *lat = (double *)(void *)(res + clients);
    pid_t pids[MAX_CLIENTS];
    job jobs[MAX_CLIENTS];
    for (int c = 0; c < clients; c++) {
        jobs[c] = *tmpl;
        jobs[c].first_record = next_record_base;
        next_record_base += 1ull << 32;
        jobs[c].start = start;
        jobs[c].end = end;
        jobs[c].res = &res[c];
        jobs[c].lat_us = lat + (size_t)c * rounds;
        pids[c] = bench_spawn(run_job, &jobs[c]);
    }
    /* server counters are read while every client holds at a gate, so
     * connecting, warm-up and disconnecting are not counted */
    int rc = bench_gate_wait(start, clients, pids);
    uint64_t srv0 = server > 0 ? bench_proc_ctxsw(server) : 0;
    bench_gate_release(start);
    if (rc == 0)
        rc = bench_gate_wait(end, clients, pids);
    uint64_t srv1 = server > 0 ? bench_proc_ctxsw(server) : 0;
    bench_gate_release(end);
    for (int c = 0; c < clients; c++)
        if (bench_wait(pids[c], "client") != 0)
            rc = -1;
    if (rc == 0) {
        uint64_t last = 0, ctx = 0;
        for (int c = 0; c < clients; c++) {
            last = res[c].end_ns > last ? res[c].end_ns : last;
            ctx += res[c].ctxsw;
        }
        size_t ops = (size_t)clients * rounds *
                     (tmpl->kind == JOB_SUTRA_BATCH || tmpl->kind == JOB_SUTRA_PIPE ||
                              tmpl->kind == JOB_LMDB_BATCH ||
                              tmpl->kind == JOB_LMDB_BATCH_WRITEMAP
                          ? BATCH_OPS : 1);
        double requests = (double)clients * (double)rounds;
        out->ops_s = (double)ops * 1e9 / (double)(last - start->start_ns);
        out->p50_us = bench_percentile(lat, (size_t)clients * rounds, 50);
        out->p99_us = bench_percentile(lat, (size_t)clients * rounds, 99);
        out->ctx_client = (double)ctx / requests;
        out->ctx_server = server > 0 ? (double)(srv1 - srv0) / requests : NAN;
        out->group = NAN;
        out->syncs = NAN;
    }
    bench_shared_free(shm, bytes);
    return rc;
}

/* As run_clients_plain(), and for Sutra jobs also how many requests each
 * commit carried and how many fdatasyncs each request cost. */
static int run_clients(const job *tmpl, int clients, pid_t server, measure *out)
{
    bool sutra = tmpl->kind == JOB_SUTRA_SINGLE || tmpl->kind == JOB_SUTRA_BATCH ||
                 tmpl->kind == JOB_SUTRA_PIPE;
    sutra_server_stats before, after;
    if (!sutra)
        return run_clients_plain(tmpl, clients, server, out);
    if (server_stats(tmpl->target, &before) != 0 ||
        run_clients_plain(tmpl, clients, server, out) != 0 ||
        server_stats(tmpl->target, &after) != 0)
        return -1;
    /* each client also sent 4 warm-up writes */
    double requests = (double)clients * (double)(tmpl->rounds + 4);
    double commits = (double)(after.commits - before.commits);
    out->group = commits > 0 ? requests / commits : NAN;
    out->syncs = (double)(after.syncs - before.syncs) / requests;
    return 0;
}

/* ---- one repeat ---------------------------------------------------------- */

#define POLICIES 3
static const char *const policy_name[POLICIES] = { "none", "interval:10",
                                                   "commit" };

typedef struct sizes {
    size_t ops, durable_ops, batches;
} sizes;

typedef struct repeat_result {
    measure raw1, raw4, lmdb_batch, lmdb_batch_wm, lmdb_durable4;
    measure one[POLICIES], four[POLICIES], batch[POLICIES];
    measure pipe;                       /* --sync none only */
} repeat_result;

static int measure_raw(const sizes *sz, repeat_result *r)
{
    char dir[256];
    if (bench_tempdir("bench-echo", dir) != 0)
        return -1;
    job j = { .kind = JOB_RAW_NNG, .rounds = sz->ops };
    snprintf(j.target, sizeof(j.target), "ipc://%s/echo.sock", dir);
    pid_t server = bench_spawn(echo_serve, j.target);
    int rc = server > 0 ? 0 : -1;
    if (rc == 0)
        rc = run_clients(&j, 1, server, &r->raw1);
    if (rc == 0)
        rc = run_clients(&j, 4, server, &r->raw4);
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    bench_remove_tree(dir);
    return rc;
}

/* The two no-sync modes run in turn, the first one alternating between
 * repeats (repeat `i`), each into a fresh environment. */
static int measure_lmdb(const sizes *sz, repeat_result *r, unsigned i)
{
    char dir[256];
    job j = { .rounds = sz->batches };
    for (unsigned k = 0; k < 2; k++) {
        bool writemap = (k + i) % 2 == 1;
        if (bench_tempdir("bench-lmdb", dir) != 0)
            return -1;
        j.kind = writemap ? JOB_LMDB_BATCH_WRITEMAP : JOB_LMDB_BATCH;
        snprintf(j.target, sizeof(j.target), "%s", dir);
        int rc = run_clients(&j, 1, -1,
                             writemap ? &r->lmdb_batch_wm : &r->lmdb_batch);
        bench_remove_tree(dir);
        if (rc != 0)
            return -1;
    }
    int rc = bench_tempdir("bench-lmdb", dir);
    if (rc != 0)
        return -1;
    j.kind = JOB_LMDB_DURABLE;
    j.rounds = sz->durable_ops;
    snprintf(j.target, sizeof(j.target), "%s", dir);
    rc = run_clients(&j, 4, -1, &r->lmdb_durable4);
    bench_remove_tree(dir);
    return rc;
}

static int measure_policy(const sizes *sz, int p, repeat_result *r)
{
    bench_coord coord;
    if (bench_coord_start(policy_name[p], &coord) != 0)
        return -1;
    size_t single = p == 2 ? sz->durable_ops : sz->ops;
    job j = { .kind = JOB_SUTRA_SINGLE, .rounds = single };
    snprintf(j.target, sizeof(j.target), "%s", coord.dir);
    int rc = run_clients(&j, 1, coord.pid, &r->one[p]);
    if (rc == 0)
        rc = run_clients(&j, 4, coord.pid, &r->four[p]);
    j.kind = JOB_SUTRA_BATCH;
    j.rounds = sz->batches;
    if (rc == 0)
        rc = run_clients(&j, 1, coord.pid, &r->batch[p]);
    j.kind = JOB_SUTRA_PIPE;
    if (rc == 0 && p == 0)
        rc = run_clients(&j, 1, coord.pid, &r->pipe);
    if (bench_coord_stop(&coord) != 0)
        rc = -1;
    return rc;
}

/* ---- report ------------------------------------------------------------- */

enum which { W_RAW1, W_RAW4, W_LMDB_BATCH, W_LMDB_BATCH_WM, W_LMDB_BATCH_BEST,
             W_LMDB_DURABLE4, W_ONE, W_FOUR, W_BATCH, W_PIPE };

static const measure *pick(const repeat_result *r, enum which w, int p)
{
    switch (w) {
    case W_RAW1: return &r->raw1;
    case W_RAW4: return &r->raw4;
    case W_LMDB_BATCH: return &r->lmdb_batch;
    case W_LMDB_BATCH_WM: return &r->lmdb_batch_wm;
    case W_LMDB_BATCH_BEST: /* the faster no-sync mode of this repeat */
        return r->lmdb_batch_wm.ops_s > r->lmdb_batch.ops_s
                   ? &r->lmdb_batch_wm : &r->lmdb_batch;
    case W_LMDB_DURABLE4: return &r->lmdb_durable4;
    case W_ONE: return &r->one[p];
    case W_FOUR: return &r->four[p];
    case W_PIPE: return &r->pipe;
    default: return &r->batch[p];
    }
}

enum field { F_P50, F_P99, F_OPS, F_CTX_CLIENT, F_CTX_SERVER, F_GROUP,
             F_SYNCS };

static double field_of(const measure *m, enum field f)
{
    switch (f) {
    case F_P50: return m->p50_us;
    case F_P99: return m->p99_us;
    case F_OPS: return m->ops_s;
    case F_CTX_CLIENT: return m->ctx_client;
    case F_CTX_SERVER: return m->ctx_server;
    case F_GROUP: return m->group;
    default: return m->syncs;
    }
}

/* One side of a row: which measurement of each repeat, and which field. */
typedef struct side {
    enum which w;
    const char *name; /* peer label; NULL = no peer */
} side;

/*
 * Print one row: medians over repeats of each side, and the median of the
 * per-repeat ratios (both sides of a ratio were measured minutes apart at
 * most, so the per-repeat ratio cancels the machine's slow drifts).
 */
static void row(const char *label, const repeat_result *r, unsigned n, int p,
                enum which sutra, side peer, enum field f, const char *target)
{
    double sv[MAX_REPEATS], pv[MAX_REPEATS], rv[MAX_REPEATS];
    for (unsigned i = 0; i < n; i++) {
        sv[i] = field_of(pick(&r[i], sutra, p), f);
        pv[i] = peer.name != NULL ? field_of(pick(&r[i], peer.w, p), f) : NAN;
        rv[i] = sv[i] / pv[i];
    }
    char metric[128];
    snprintf(metric, sizeof(metric), "%s [%s]", label,
             peer.name != NULL ? peer.name : "-");
    bench_row(metric, bench_median(sv, n), bench_median(pv, n),
              bench_median(rv, n), target);
}

static void report_policy(const repeat_result *r, unsigned n, int p,
                          const sizes *sz)
{
    bool commit = p == 2;
    char title[200], tag[32];
    snprintf(title, sizeof(title),
             "bench_write: sutra-coordinator --sync %s, %zu round trips/client,"
             " %zu x %u-op batches (median of %u runs)", policy_name[p],
             commit ? sz->durable_ops : sz->ops, sz->batches, BATCH_OPS, n);
    snprintf(tag, sizeof(tag), "sync %s", policy_name[p]);
    bench_table_begin(tag, title, "peer");
    side raw1 = { W_RAW1, "raw nng" }, raw4 = { W_RAW4, "raw nng" };
    side lmdb_batch = { W_LMDB_BATCH, "lmdb nosync" };
    side lmdb_wm = { W_LMDB_BATCH_WM, "lmdb nosync+writemap" };
    side lmdb_best = { W_LMDB_BATCH_BEST, "lmdb, faster mode" };
    side peer4 = commit ? (side){ W_LMDB_DURABLE4, "lmdb durable x4" } : raw4;
    side echo1 = { W_RAW1, "echo server" }, echo4 = { W_RAW4, "echo server" };
    side none = { W_RAW1, NULL };
    row("1 client p50 (us)", r, n, p, W_ONE, raw1, F_P50,
        p == 0 ? "<= 1.5" : NULL); /* the target is for --sync none */
    row("1 client p99 (us)", r, n, p, W_ONE, raw1, F_P99, NULL);
    row("1 client ops/s", r, n, p, W_ONE, raw1, F_OPS, NULL);
    row("4 clients p50 (us)", r, n, p, W_FOUR, peer4, F_P50, NULL);
    row("4 clients p99 (us)", r, n, p, W_FOUR, peer4, F_P99, NULL);
    row("4 clients ops/s", r, n, p, W_FOUR, peer4, F_OPS,
        commit ? ">= 3" : NULL);
    /* The same 4 synchronous IPC clients against a bare echo server: the
     * most any server could reach here, whatever its commit costs. */
    if (commit)
        row("4 clients ops/s, raw nng echo (no commit)", r, n, p, W_RAW4,
            peer4, F_OPS, NULL);
    /* The target is against whichever of LMDB's no-sync modes was faster
     * in each repeat. */
    row("batched ops/s", r, n, p, W_BATCH, lmdb_best, F_OPS,
        p == 0 ? ">= 3" : NULL);
    if (p == 0) {
        row("batched ops/s", r, n, p, W_BATCH, lmdb_batch, F_OPS, NULL);
        row("batched ops/s", r, n, p, W_BATCH, lmdb_wm, F_OPS, NULL);
        row("batched ops/s, 2 requests in flight", r, n, p, W_PIPE,
            lmdb_best, F_OPS, NULL);
    }
    row("ctx switches/write, 1 client: clients", r, n, p, W_ONE, raw1,
        F_CTX_CLIENT, NULL);
    row("ctx switches/write, 1 client: server", r, n, p, W_ONE, echo1,
        F_CTX_SERVER, NULL);
    row("ctx switches/write, 4 clients: clients", r, n, p, W_FOUR, peer4,
        F_CTX_CLIENT, NULL);
    row("ctx switches/write, 4 clients: server", r, n, p, W_FOUR,
        commit ? none : echo4, F_CTX_SERVER, NULL);
    row("ctx switches/batch request: clients", r, n, p, W_BATCH, lmdb_batch,
        F_CTX_CLIENT, NULL);
    row("ctx switches/batch request: server", r, n, p, W_BATCH, none,
        F_CTX_SERVER, NULL);
    row("requests per commit, 1 client", r, n, p, W_ONE, none, F_GROUP, NULL);
    row("requests per commit, 4 clients", r, n, p, W_FOUR, none, F_GROUP, NULL);
    row("syncs per write (fdatasync, RWF_DSYNC, msync), 1 client", r, n, p, W_ONE,
        none, F_SYNCS, NULL);
    row("syncs per write (fdatasync, RWF_DSYNC, msync), 4 clients", r, n, p, W_FOUR,
        none, F_SYNCS, NULL);
}

static void print_repeat(unsigned i, const repeat_result *r)
{
    printf("  run %u: raw nng p50 %.1f us | lmdb batch %.0f ops/s, with "
           "writemap %.0f ops/s, durable x4 %.0f ops/s\n", i + 1,
           r->raw1.p50_us, r->lmdb_batch.ops_s, r->lmdb_batch_wm.ops_s,
           r->lmdb_durable4.ops_s);
    for (int p = 0; p < POLICIES; p++)
        printf("  run %u: --sync %-11s 1c p50 %.1f us %.0f ops/s | 4c %.0f "
               "ops/s | batched %.0f ops/s\n", i + 1, policy_name[p],
               r->one[p].p50_us, r->one[p].ops_s, r->four[p].ops_s,
               r->batch[p].ops_s);
    fflush(stdout);
}

int main(void)
{
    sizes sz = {
        .ops = bench_knob("SUTRA_BENCH_OPS", 4000, 200),
        .durable_ops = bench_knob("SUTRA_BENCH_DURABLE_OPS", 1000, 50),
        .batches = bench_knob("SUTRA_BENCH_BATCHES", 100, 5),
    };
    unsigned reps = bench_repeats();
    if (reps > MAX_REPEATS)
        reps = MAX_REPEATS;
    printf("bench_write: coordinator %s\n", bench_coord_path());
    static repeat_result results[MAX_REPEATS];
    /* Odd repeats run the peers last: a side that writes into page cache
     * another side just freed is faster than one that faults in new pages
     * on this VM, so a fixed order would favour one side every time. */
    for (unsigned i = 0; i < reps; i++) {
        bool peers_first = i % 2 == 0;
        if (peers_first && (measure_raw(&sz, &results[i]) != 0 ||
                            measure_lmdb(&sz, &results[i], i) != 0))
            return 1;
        for (int p = 0; p < POLICIES; p++)
            if (measure_policy(&sz, p, &results[i]) != 0)
                return 1;
        if (!peers_first && (measure_lmdb(&sz, &results[i], i) != 0 ||
                             measure_raw(&sz, &results[i]) != 0))
            return 1;
        print_repeat(i, &results[i]);
    }
    for (int p = 0; p < POLICIES; p++)
        report_policy(results, reps, p, &sz);
    bench_summary("bench_write");
    return 0;
}
