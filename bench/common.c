/*
 * bench/common.c — knobs, clock, statistics, the result table and the
 * deterministic records shared by every benchmark.
 *
 * The table is the benchmarks' whole output contract: every line is
 * `metric  sutra  peer  ratio  target`, and every row with a target also
 * yields one "summary:" line, which bench/run.sh gathers at the end of the
 * run.  Targets are reported as met or missed, never asserted: performance
 * is measured here, and a missed target is not a failure to run.
 *
 * Records are generated from their index alone, so Sutra and its peers
 * store byte-identical content and embeddings, and a lookup sequence drawn
 * from a fixed seed is the same for both sides.
 *
 * Single-threaded: the remembered summary lines are process-local state.
 */
#include "bench/bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- knobs ------------------------------------------------------------ */

bool bench_quick(void)
{
    const char *q = getenv("SUTRA_BENCH_QUICK");
    return q != NULL && q[0] != '\0' && strcmp(q, "0") != 0;
}

uint64_t bench_knob(const char *name, uint64_t dflt, uint64_t quick)
{
    const char *v = getenv(name);
    if (v != NULL && v[0] != '\0') {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno == 0 && end != NULL && *end == '\0' && n > 0)
            return n;
        fprintf(stderr, "bench: ignoring %s=%s (not a positive integer)\n",
                name, v);
    }
    return bench_quick() ? quick : dflt;
}

unsigned bench_repeats(void)
{
    return (unsigned)bench_knob("SUTRA_BENCH_REPEAT", 5, 1);
}

const char *bench_build_dir(void)
{
    const char *b = getenv("BUILD");
    return b != NULL && b[0] != '\0' ? b : "build";
}

/* ---- clock and statistics --------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bench_clock_overhead_ns(void)
{
    enum { ROUNDS = 15, CALLS = 10000 };
    double per_call[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < CALLS; i++)
            (void)bench_now_ns();
        per_call[r] = (double)(bench_now_ns() - t0) / CALLS;
    }
    return bench_median(per_call, ROUNDS);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(*v), compare_double);
    /* nearest rank: the smallest value with at least p% at or below it */
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

double bench_median(const double *v, size_t n)
{
    double copy[64];
    size_t m = 0;
    for (size_t i = 0; i < n && m < 64; i++)
        if (!isnan(v[i]))
            copy[m++] = v[i];
    if (m == 0)
        return NAN;
    qsort(copy, m, sizeof(*copy), compare_double);
    return m % 2 ? copy[m / 2] : (copy[m / 2 - 1] + copy[m / 2]) / 2.0;
}

/* ---- the table -------------------------------------------------------- */

#define SUMMARY_MAX 64
static char summary_lines[SUMMARY_MAX][256];
static int summary_count;
static char table_tag[32];

static void format_value(double v, char *out, size_t len)
{
    if (isnan(v))
        snprintf(out, len, "-");
    else if (fabs(v) >= 100000.0)
        snprintf(out, len, "%.0f", v);
    else if (fabs(v) >= 100.0)
        snprintf(out, len, "%.1f", v);
    else
        snprintf(out, len, "%.3g", v);
}

void bench_table_begin(const char *tag, const char *title, const char *peer)
{
    snprintf(table_tag, sizeof(table_tag), "%s", tag);
    printf("\n== %s ==\n", title);
    printf("%-52s %12s %12s %8s  %s\n", "metric", "sutra", peer, "ratio",
           "target");
    fflush(stdout);
}

/* Whether `ratio` meets a target written as ">= x" or "<= x". */
static const char *target_verdict(const char *target, double ratio)
{
    double bound = 0;
    if (isnan(ratio) || sscanf(target + 2, "%lf", &bound) != 1)
        return "n/a";
    if (strncmp(target, ">=", 2) == 0)
        return ratio >= bound ? "met" : "MISSED";
    if (strncmp(target, "<=", 2) == 0)
        return ratio <= bound ? "met" : "MISSED";
    return "n/a";
}

void bench_row(const char *metric, double sutra, double peer, double ratio,
               const char *target)
{
    char s[32], p[32], r[32], t[64] = "";
    format_value(sutra, s, sizeof(s));
    format_value(peer, p, sizeof(p));
    format_value(ratio, r, sizeof(r));
    if (target != NULL)
        snprintf(t, sizeof(t), "%s (%s)", target, target_verdict(target, ratio));
    printf("%-52s %12s %12s %8s  %s\n", metric, s, p, r, t);
    fflush(stdout);
    if (target != NULL && summary_count < SUMMARY_MAX)
        snprintf(summary_lines[summary_count++], sizeof(summary_lines[0]),
                 "%-16s %-48s ratio %6s  target %s", table_tag, metric, r, t);
}

void bench_summary(const char *bench)
{
    for (int i = 0; i < summary_count; i++)
        printf("summary: %-11s %s\n", bench, summary_lines[i]);
    fflush(stdout);
}

/* ---- records ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bench_record_id(uint64_t i, sutra_id *out)
{
    char name[32];
    int len = snprintf(name, sizeof(name), "bench-%llu", (unsigned long long)i);
    sutra_id_from_name(name, (size_t)len, out);
}

size_t bench_record_content(uint64_t i, uint8_t *buf)
{
    uint64_t state = i * 0x2545F4914F6CDD1Dull + 1;
    size_t len = BENCH_CONTENT_MIN +
                 splitmix64(&state) % (BENCH_CONTENT_MAX - BENCH_CONTENT_MIN + 1);
    int head = snprintf((char *)buf, len, "concept %llu: ",
                        (unsigned long long)i);
    for (size_t k = (size_t)head; k < len; k++)
        buf[k] = (uint8_t)('a' + splitmix64(&state) % 26);
    return len;
}

void bench_record_embedding(uint64_t i, float *out)
{
    uint64_t state = i ^ 0x5DEECE66Dull;
    for (uint32_t k = 0; k < BENCH_DIM; k++)
        out[k] = (float)((double)(splitmix64(&state) >> 11) / 4503599627370496.0
                         - 1.0);
}

float bench_record_strength(uint64_t i)
{
    return 0.5f + (float)(i % 100) / 200.0f;
}

float bench_record_confidence(uint64_t i)
{
    return 0.25f + (float)(i % 7) / 10.0f;
}

size_t bench_lmdb_value_max(void)
{
    return sizeof(bench_lmdb_value) + BENCH_DIM * sizeof(float) +
           BENCH_CONTENT_MAX;
}

size_t bench_lmdb_value_encode(uint64_t i, uint64_t seq, void *buf)
{
    uint8_t *p = buf;
    bench_lmdb_value h = {
        .strength = bench_record_strength(i),
        .confidence = bench_record_confidence(i),
        .created_ns = 1700000000000000000ull + i,
        .updated_ns = 1700000000000000000ull + i,
        .seq = seq,
        .dim = BENCH_DIM,
    };
    float *emb = (float *)(void *)(p + sizeof(h));
    bench_record_embedding(i, emb);
    uint8_t *content = p + sizeof(h) + BENCH_DIM * sizeof(float);
    h.content_len = (uint32_t)bench_record_content(i, content);
    memcpy(p, &h, sizeof(h));
    return sizeof(h) + BENCH_DIM * sizeof(float) + h.content_len;
}
