/*
 * bench/bench_get.c — point reads: sutra_get on one snapshot beside LMDB
 * mdb_get in one read txn, over the same 1M records and the same random ids.
 *
 * Both sides touch the same bytes per lookup — strength, confidence, the
 * timestamps, seq, the content length, the first content byte and the first
 * embedding float — and fold them into a volatile sink, so neither can win
 * by not reading what the other reads.  Each repeat runs, per side, one
 * untimed-per-op pass (ops/s = lookups / wall time) and one pass timed per
 * op with clock_gettime (vDSO), from which the median cost of a clock call,
 * measured at start, is subtracted; p50/p99 are nearest-rank percentiles of
 * those per-op times.  Sides alternate within every repeat, the side that
 * goes first alternates between repeats, and the table shows the median
 * over repeats.  Before anything is timed, both files are put in the same
 * state: written back, dropped from the page cache, and read once from
 * the start to the end of their data, so neither side benefits from how
 * (or how recently) its file was written.
 *
 * Knobs: SUTRA_BENCH_N (records, default 1,000,000), SUTRA_BENCH_LOOKUPS
 * (lookups per pass, default 1,000,000), SUTRA_BENCH_REPEAT, SUTRA_BENCH_QUICK.
 */
#include "bench/bench.h"

#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REPEATS 64

static volatile uint64_t sink_bits;
static volatile float sink_float;

typedef struct reader_pair {
    struct sutra_snapshot snap;
    MDB_txn *txn;
    MDB_dbi dbi;
    const sutra_id *ids;      /* ids[i] = id of record i              */
    const uint32_t *lookups;  /* record indices to look up, in order  */
    size_t lookup_count;
    double clock_overhead_ns;
    double *lat;              /* per-op ns of the last timed pass     */
    uint64_t errors;
} reader_pair;

/* ---- one lookup per side, touching the same bytes --------------------- */

static inline void sutra_lookup(reader_pair *rp, const sutra_id *id)
{
    sutra_concept c;
    if (sutra_get(&rp->snap, id, &c) != 0 || c.content_len == 0 ||
        c.embedding == NULL) {
        rp->errors++;
        return;
    }
    sink_bits += c.created_ns ^ c.updated_ns ^ c.seq ^ c.content_len ^
                 ((const uint8_t *)c.content)[0];
    sink_float += c.strength + c.confidence + c.embedding[0];
}

static inline void lmdb_lookup(reader_pair *rp, const sutra_id *id)
{
    MDB_val k = { sizeof(*id), (void *)id }, v;
    bench_lmdb_value h;
    if (mdb_get(rp->txn, rp->dbi, &k, &v) != 0 || v.mv_size < sizeof(h)) {
        rp->errors++;
        return;
    }
    const uint8_t *p = v.mv_data;
    float first;
    memcpy(&h, p, sizeof(h));
    memcpy(&first, p + sizeof(h), sizeof(first));
    sink_bits += h.created_ns ^ h.updated_ns ^ h.seq ^ h.content_len ^
                 p[sizeof(h) + h.dim * sizeof(float)];
    sink_float += h.strength + h.confidence + first;
}

/* ---- passes ------------------------------------------------------------ */

/* Lookups per second over one pass, no per-op clock. */
static double pass_throughput(reader_pair *rp, bool sutra)
{
    uint64_t t0 = bench_now_ns();
    for (size_t q = 0; q < rp->lookup_count; q++) {
        const sutra_id *id = &rp->ids[rp->lookups[q]];
        if (sutra)
            sutra_lookup(rp, id);
        else
            lmdb_lookup(rp, id);
    }
    return (double)rp->lookup_count * 1e9 / (double)(bench_now_ns() - t0);
}

/* One pass timed per op; writes p50 and p99 in ns. */
static void pass_latency(reader_pair *rp, bool sutra, double *p50, double *p99)
{
    for (size_t q = 0; q < rp->lookup_count; q++) {
        const sutra_id *id = &rp->ids[rp->lookups[q]];
        uint64_t t0 = bench_now_ns();
        if (sutra)
            sutra_lookup(rp, id);
        else
            lmdb_lookup(rp, id);
        double ns = (double)(bench_now_ns() - t0) - rp->clock_overhead_ns;
        rp->lat[q] = ns > 0 ? ns : 0;
    }
    *p50 = bench_percentile(rp->lat, rp->lookup_count, 50);
    *p99 = bench_percentile(rp->lat, rp->lookup_count, 99);
}

/* ---- setup ------------------------------------------------------------- */

static int open_lmdb(const char *dir, MDB_env **env, reader_pair *rp)
{
    int rc = mdb_env_create(env);
    if (rc == 0)
        rc = mdb_env_open(*env, dir, MDB_RDONLY, 0640);
    if (rc == 0)
        rc = mdb_txn_begin(*env, NULL, MDB_RDONLY, &rp->txn);
    if (rc == 0)
        rc = mdb_dbi_open(rp->txn, NULL, 0, &rp->dbi);
    if (rc != 0)
        fprintf(stderr, "bench_get: lmdb %s: %s\n", dir, mdb_strerror(rc));
    return rc;
}

static int open_sutra(const char *dir, sutra_db **db, reader_pair *rp)
{
    int rc = sutra_open(dir, NULL, db);
    if (rc == 0)
        rc = sutra_snapshot(*db, &rp->snap);
    if (rc != 0)
        fprintf(stderr, "bench_get: sutra %s: %s\n", dir, sutra_strerror(rc));
    return rc;
}

static int fill_inputs(reader_pair *rp, uint64_t count, size_t lookups)
{
    sutra_id *ids = malloc(count * sizeof(*ids));
    uint32_t *seq = malloc(lookups * sizeof(*seq));
    rp->lat = malloc(lookups * sizeof(*rp->lat));
    if (ids == NULL || seq == NULL || rp->lat == NULL)
        return -1;
    for (uint64_t i = 0; i < count; i++)
        bench_record_id(i, &ids[i]);
    uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift64, fixed seed */
    for (size_t q = 0; q < lookups; q++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seq[q] = (uint32_t)(x % count);
    }
    rp->ids = ids;
    rp->lookups = seq;
    rp->lookup_count = lookups;
    return 0;
}

/* ---- report -------------------------------------------------------------- */

typedef struct get_results {
    double s_ops[MAX_REPEATS], l_ops[MAX_REPEATS];
    double s_p50[MAX_REPEATS], l_p50[MAX_REPEATS];
    double s_p99[MAX_REPEATS], l_p99[MAX_REPEATS];
} get_results;

/* Median over runs of the per-run ratio a[i] / b[i]: both were measured
 * seconds apart, so the ratio cancels the machine's slower drifts. */
static double median_ratio(const double *a, const double *b, unsigned reps)
{
    double v[MAX_REPEATS];
    for (unsigned i = 0; i < reps; i++)
        v[i] = a[i] / b[i];
    return bench_median(v, reps);
}

static void report(const get_results *r, unsigned reps, const bench_dataset *ds)
{
    char title[200];
    snprintf(title, sizeof(title),
             "bench_get: point reads, %llu concepts, dim %u (median of %u runs)",
             (unsigned long long)ds->count, BENCH_DIM, reps);
    bench_table_begin("reads", title, "lmdb");
    if (ds->sutra_load_s > 0)
        bench_row("load time (s, built this run)", ds->sutra_load_s,
                  ds->lmdb_load_s, ds->sutra_load_s / ds->lmdb_load_s, NULL);
    bench_row("data size (MB: committed log / used pages)",
              (double)ds->sutra_bytes / 1e6, (double)ds->lmdb_bytes / 1e6,
              (double)ds->sutra_bytes / (double)ds->lmdb_bytes, NULL);
    bench_row("get p50 (ns/op)", bench_median(r->s_p50, reps),
              bench_median(r->l_p50, reps),
              median_ratio(r->s_p50, r->l_p50, reps), NULL);
    bench_row("get p99 (ns/op)", bench_median(r->s_p99, reps),
              bench_median(r->l_p99, reps),
              median_ratio(r->s_p99, r->l_p99, reps), NULL);
    bench_row("get throughput (ops/s), sutra/lmdb", bench_median(r->s_ops, reps),
              bench_median(r->l_ops, reps),
              median_ratio(r->s_ops, r->l_ops, reps), ">= 2");
    bench_row("sutra p99 vs lmdb p50 (ns/op)", bench_median(r->s_p99, reps),
              bench_median(r->l_p50, reps),
              median_ratio(r->s_p99, r->l_p50, reps), "<= 1");
}

/* Write back, drop from the page cache, then read [0, bytes) of
 * dir/name sequentially, as cat would. */
static int settle_file(const char *dir, const char *name, uint64_t bytes)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    /* a failure only leaves the cache state as it was: say so, go on */
    if (fdatasync(fd) != 0)
        perror(path);
    int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (rc != 0)
        fprintf(stderr, "%s: posix_fadvise: %s\n", path, strerror(rc));
    static char buf[1 << 20];
    for (uint64_t off = 0; off < bytes;) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
        if (n <= 0)
            break;
        off += (uint64_t)n;
    }
    close(fd);
    return 0;
}

static int run(const bench_dataset *ds, reader_pair *rp, unsigned reps,
               get_results *r)
{
    if (settle_file(ds->sutra_dir, "storage.dat", ds->sutra_bytes) != 0 ||
        settle_file(ds->lmdb_dir, "data.mdb", ds->lmdb_bytes) != 0)
        return -1;
    /* one warm pass each: fault in both mappings before anything is timed */
    pass_throughput(rp, true);
    pass_throughput(rp, false);
    for (unsigned i = 0; i < reps; i++) {
        bool sutra_first = i % 2 == 0;
        for (int k = 0; k < 2; k++) {
            bool s = sutra_first == (k == 0);
            if (s)
                r->s_ops[i] = pass_throughput(rp, true);
            else
                r->l_ops[i] = pass_throughput(rp, false);
        }
        for (int k = 0; k < 2; k++) {
            bool s = sutra_first == (k == 0);
            if (s)
                pass_latency(rp, true, &r->s_p50[i], &r->s_p99[i]);
            else
                pass_latency(rp, false, &r->l_p50[i], &r->l_p99[i]);
        }
        printf("  run %u: sutra %.0f ops/s p50 %.0f p99 %.0f ns | lmdb %.0f "
               "ops/s p50 %.0f p99 %.0f ns\n", i + 1, r->s_ops[i], r->s_p50[i],
               r->s_p99[i], r->l_ops[i], r->l_p50[i], r->l_p99[i]);
        fflush(stdout);
    }
    if (rp->errors != 0) {
        fprintf(stderr, "bench_get: %llu lookups failed on %s\n",
                (unsigned long long)rp->errors, ds->sutra_dir);
        return -1;
    }
    return 0;
}

int main(void)
{
    uint64_t count = bench_knob("SUTRA_BENCH_N", 1000000, 20000);
    size_t lookups = bench_knob("SUTRA_BENCH_LOOKUPS", 1000000, 20000);
    unsigned reps = bench_repeats();
    if (reps > MAX_REPEATS)
        reps = MAX_REPEATS;
    bench_dataset ds;
    if (bench_dataset_ensure(bench_dataset_root(), count, &ds) != 0)
        return 1;
    reader_pair rp = { .errors = 0 };
    if (fill_inputs(&rp, count, lookups) != 0)
        return 1;
    rp.clock_overhead_ns = bench_clock_overhead_ns();
    printf("bench_get: %zu random lookups per pass; per-op clock cost %.1f ns "
           "(subtracted)\n", lookups, rp.clock_overhead_ns);
    sutra_db *db = NULL;
    MDB_env *env = NULL;
    if (open_sutra(ds.sutra_dir, &db, &rp) != 0 ||
        open_lmdb(ds.lmdb_dir, &env, &rp) != 0)
        return 1;
    get_results r;
    int rc = run(&ds, &rp, reps, &r);
    if (rc == 0) {
        report(&r, reps, &ds);
        bench_summary("bench_get");
    }
    mdb_txn_abort(rp.txn);
    mdb_env_close(env);
    sutra_close(db);
    free((void *)rp.ids);
    free((void *)rp.lookups);
    free(rp.lat);
    return rc == 0 ? 0 : 1;
}
