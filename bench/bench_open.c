/*
 * bench/bench_open.c — attach time: does opening a Sutra file cost the same
 * whatever its size?
 *
 * One attach is sutra_open + the first sutra_snapshot + one sutra_get of a
 * random id (sutra_close is outside the timing), on a file of ~10 MB of log
 * (67 MB on disk: storage.dat grows in steps of at least 64 MiB) and on the
 * 1M-concept file that bench_get uses (~1.9 GB, reused from the data set
 * cache).  Rows name both the committed log and the file's size.  The peer does the same with LMDB: mdb_env_open (read-only) + a
 * read txn + mdb_dbi_open + one mdb_get.  Small and big attaches alternate,
 * each side many times per repeat; a repeat's figure is the median attach,
 * and the table shows the median over repeats.  The page cache is warm: this
 * measures the library's attach work, not the disk.
 *
 * Knobs: SUTRA_BENCH_N (records in the big file), SUTRA_BENCH_OPENS
 * (attaches per size and side per repeat, default 200), SUTRA_BENCH_REPEAT,
 * SUTRA_BENCH_QUICK.
 */
#include "bench/bench.h"

#include <lmdb.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEATS 64
#define SMALL_COUNT 5800u /* ~10 MB of 1.7 KB records */

static volatile float sink;

/* Microseconds for one Sutra attach, or a negative value on failure. */
static double attach_sutra(const char *dir, const sutra_id *id)
{
    uint64_t t0 = bench_now_ns();
    sutra_db *db = NULL;
    struct sutra_snapshot snap;
    sutra_concept c;
    int rc = sutra_open(dir, NULL, &db);
    if (rc == 0)
        rc = sutra_snapshot(db, &snap);
    if (rc == 0)
        rc = sutra_get(&snap, id, &c);
    uint64_t t1 = bench_now_ns();
    if (rc == 0)
        sink += c.strength + c.embedding[0];
    else
        fprintf(stderr, "bench_open: sutra %s: %s\n", dir, sutra_strerror(rc));
    sutra_close(db);
    return rc == 0 ? (double)(t1 - t0) / 1e3 : -1;
}

/* Microseconds for one LMDB attach, or a negative value on failure. */
static double attach_lmdb(const char *dir, const sutra_id *id)
{
    uint64_t t0 = bench_now_ns();
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = { sizeof(*id), (void *)id }, v;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_RDONLY, 0640);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc == 0)
        rc = mdb_get(txn, dbi, &k, &v);
    uint64_t t1 = bench_now_ns();
    if (rc == 0) {
        float strength; /* LMDB aligns values to 2 bytes only */
        memcpy(&strength, v.mv_data, sizeof(strength));
        sink += strength;
    } else
        fprintf(stderr, "bench_open: lmdb %s: %s\n", dir, mdb_strerror(rc));
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc == 0 ? (double)(t1 - t0) / 1e3 : -1;
}

typedef struct open_sample {
    double sutra_small, sutra_big, lmdb_small, lmdb_big;
} open_sample;

/* One repeat: `opens` attaches per size and side, alternating; medians. */
static int one_repeat(const bench_dataset *small, const bench_dataset *big,
                      size_t opens, double *scratch, open_sample *out)
{
    double *v[4] = { scratch, scratch + opens, scratch + 2 * opens,
                     scratch + 3 * opens };
    uint64_t x = 88172645463325252ull + (uint64_t)opens;
    for (size_t i = 0; i < opens; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sutra_id small_id, big_id;
        bench_record_id(x % small->count, &small_id);
        bench_record_id(x % big->count, &big_id);
        v[0][i] = attach_sutra(small->sutra_dir, &small_id);
        v[1][i] = attach_sutra(big->sutra_dir, &big_id);
        v[2][i] = attach_lmdb(small->lmdb_dir, &small_id);
        v[3][i] = attach_lmdb(big->lmdb_dir, &big_id);
        if (v[0][i] < 0 || v[1][i] < 0 || v[2][i] < 0 || v[3][i] < 0)
            return -1;
    }
    out->sutra_small = bench_percentile(v[0], opens, 50);
    out->sutra_big = bench_percentile(v[1], opens, 50);
    out->lmdb_small = bench_percentile(v[2], opens, 50);
    out->lmdb_big = bench_percentile(v[3], opens, 50);
    return 0;
}

static double median_of(const double *v, unsigned reps)
{
    return bench_median(v, reps);
}

/* The table: medians over runs; each ratio is the median of the per-run
 * ratios (both sides of a run were measured interleaved). */
/* Bytes of storage.dat on disk (its size, not the log it holds). */
static double file_mb(const bench_dataset *ds)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/storage.dat", ds->sutra_dir);
    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
}

static void report(const open_sample *s, unsigned reps,
                   const bench_dataset *small, const bench_dataset *big)
{
    double ss[MAX_REPEATS], sb[MAX_REPEATS], ls[MAX_REPEATS], lb[MAX_REPEATS];
    double r_small[MAX_REPEATS], r_big[MAX_REPEATS];
    double s_growth[MAX_REPEATS], l_growth[MAX_REPEATS];
    for (unsigned i = 0; i < reps; i++) {
        ss[i] = s[i].sutra_small;
        sb[i] = s[i].sutra_big;
        ls[i] = s[i].lmdb_small;
        lb[i] = s[i].lmdb_big;
        r_small[i] = ss[i] / ls[i];
        r_big[i] = sb[i] / lb[i];
        s_growth[i] = sb[i] / ss[i];
        l_growth[i] = lb[i] / ls[i];
    }
    char title[200], small_row[96], big_row[96];
    snprintf(title, sizeof(title),
             "bench_open: attach = open + snapshot + one get (median of %u runs)",
             reps);
    snprintf(small_row, sizeof(small_row),
             "attach, %llu concepts, %.0f MB log, %.0f MB file (us)",
             (unsigned long long)small->count,
             (double)small->sutra_bytes / 1e6, file_mb(small));
    snprintf(big_row, sizeof(big_row),
             "attach, %llu concepts, %.0f MB log, %.0f MB file (us)",
             (unsigned long long)big->count, (double)big->sutra_bytes / 1e6,
             file_mb(big));
    bench_table_begin("attach", title, "lmdb");
    bench_row(small_row, median_of(ss, reps), median_of(ls, reps),
              median_of(r_small, reps), NULL);
    bench_row(big_row, median_of(sb, reps), median_of(lb, reps),
              median_of(r_big, reps), NULL);
    bench_row("attach big / small (x); ratio = sutra's",
              median_of(s_growth, reps), median_of(l_growth, reps),
              median_of(s_growth, reps), "<= 2");
}

int main(void)
{
    uint64_t big_count = bench_knob("SUTRA_BENCH_N", 1000000, 20000);
    size_t opens = bench_knob("SUTRA_BENCH_OPENS", 200, 20);
    unsigned reps = bench_repeats();
    if (reps > MAX_REPEATS)
        reps = MAX_REPEATS;
    bench_dataset small, big;
    if (bench_dataset_ensure(bench_dataset_root(), SMALL_COUNT, &small) != 0 ||
        bench_dataset_ensure(bench_dataset_root(), big_count, &big) != 0)
        return 1;
    printf("bench_open: %zu attaches per file and side per run; files of %.1f "
           "and %.1f MB holding %.1f and %.1f MB of committed log\n", opens,
           file_mb(&small), file_mb(&big), (double)small.sutra_bytes / 1e6,
           (double)big.sutra_bytes / 1e6);
    double *scratch = malloc(4 * opens * sizeof(double));
    open_sample samples[MAX_REPEATS];
    if (scratch == NULL)
        return 1;
    for (unsigned i = 0; i < reps; i++) {
        if (one_repeat(&small, &big, opens, scratch, &samples[i]) != 0) {
            free(scratch);
            return 1;
        }
        printf("  run %u: sutra %.1f / %.1f us | lmdb %.1f / %.1f us "
               "(small / big)\n", i + 1, samples[i].sutra_small,
               samples[i].sutra_big, samples[i].lmdb_small, samples[i].lmdb_big);
    }
    free(scratch);
    report(samples, reps, &small, &big);
    bench_summary("bench_open");
    return 0;
}
