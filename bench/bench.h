/*
 * bench/bench.h — what every Sutra benchmark shares.
 *
 * The benchmarks measure Sutra beside a peer (LMDB, or a raw NNG round trip)
 * in the same run on the same machine, because the machine is shared and
 * noisy: only a ratio taken within one run means anything.  This header
 * gathers the pieces each benchmark needs so that each bench_*.c reads as the
 * experiment it runs: knobs from the environment, a clock, percentiles and
 * medians, the one table format every benchmark prints, the deterministic
 * record generator (both sides store byte-identical records), the 1M-concept
 * data set both read benchmarks reuse, and child processes (clients, a
 * coordinator, an echo server) that never share NNG state with the parent.
 *
 * Everything here is single-threaded and meant for one benchmark process;
 * shared-memory areas returned by bench_shared_alloc() are the only state
 * that crosses fork(), and they are written with C11 atomics where two
 * processes touch the same word.
 */
#ifndef SUTRA_BENCH_H
#define SUTRA_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sutra/sutra.h"

#define BENCH_DIM 384u          /* embedding dimension of every record    */
#define BENCH_CONTENT_MIN 64u   /* content bytes per record: 64..200       */
#define BENCH_CONTENT_MAX 200u

/* ---- knobs ------------------------------------------------------------ */

/** SUTRA_BENCH_QUICK=1: a seconds-long smoke run. */
bool bench_quick(void);
/** An unsigned env knob; `dflt` if unset, `quick` in quick mode. */
uint64_t bench_knob(const char *name, uint64_t dflt, uint64_t quick);
/** SUTRA_BENCH_REPEAT (default 5, quick 1). */
unsigned bench_repeats(void);
/** The build directory (BUILD, else "build"). */
const char *bench_build_dir(void);

/* ---- clock and statistics --------------------------------------------- */

/** CLOCK_MONOTONIC in ns (vDSO, no system call where the clock is tsc). */
uint64_t bench_now_ns(void);
/** Median cost of one bench_now_ns() call, measured now. */
double bench_clock_overhead_ns(void);
/** Sort `v` in place and return its nearest-rank percentile p (0..100). */
double bench_percentile(double *v, size_t n, double p);
/** The median of n values (sorts a copy; n <= 64). */
double bench_median(const double *v, size_t n);

/* ---- the table -------------------------------------------------------- */

/** Print a table's title and the column header naming its peer; `tag`
 * (short, e.g. "--sync none") prefixes the table's summary lines. */
void bench_table_begin(const char *tag, const char *title, const char *peer);
/**
 * Print one row: metric, sutra, peer, ratio, target.  NAN prints "-".
 * `target` is like ">= 2" or "<= 1.5" (applied to `ratio`) or NULL; when
 * given, a "summary:" line is also remembered for bench_summary().
 */
void bench_row(const char *metric, double sutra, double peer, double ratio,
               const char *target);
/** Print the remembered target lines: "summary: <bench> <tag> <metric> ...". */
void bench_summary(const char *bench);

/* ---- records (identical bytes on both sides) -------------------------- */

/** Id of record i: sutra_id_from_name("bench-<i>"). */
void bench_record_id(uint64_t i, sutra_id *out);
/** Content of record i into buf[BENCH_CONTENT_MAX]; returns 64..200. */
size_t bench_record_content(uint64_t i, uint8_t *buf);
/** Embedding of record i: BENCH_DIM floats in [-1, 1). */
void bench_record_embedding(uint64_t i, float *out);
float bench_record_strength(uint64_t i);
float bench_record_confidence(uint64_t i);

/* The LMDB value of a record: this header, the embedding, the content. */
typedef struct bench_lmdb_value {
    float strength;
    float confidence;
    uint64_t created_ns;
    uint64_t updated_ns;
    uint64_t seq;
    uint32_t content_len;
    uint32_t dim;
} bench_lmdb_value;

/** Encode record i as an LMDB value into buf (at least
 * bench_lmdb_value_max() bytes); returns its length. */
size_t bench_lmdb_value_encode(uint64_t i, uint64_t seq, void *buf);
size_t bench_lmdb_value_max(void);

/* ---- data sets ---------------------------------------------------------- */

typedef struct bench_dataset {
    char sutra_dir[512];  /* holds storage.dat                           */
    char lmdb_dir[512];   /* holds data.mdb                              */
    uint64_t count;
    double sutra_load_s;  /* seconds to build; 0 when reused from cache  */
    double lmdb_load_s;
    uint64_t sutra_bytes; /* committed log bytes (storage.dat may be
                             preallocated past them)                     */
    uint64_t lmdb_bytes;  /* used pages of data.mdb                      */
} bench_dataset;

/**
 * Make sure records 0..count-1 exist as a Sutra file and an LMDB
 * environment under `root` (built once, reused by later runs when the
 * format version, count and dim match).  The Sutra file is written through
 * the storage engine directly (coord_store_apply/commit, 1000-op wire
 * batches, no sync per commit); LMDB with MDB_NOSYNC|MDB_WRITEMAP, 1000 puts
 * per txn, keys in sorted order with MDB_APPEND (its densest tree).
 * @return 0 or an error (printed).
 */
int bench_dataset_ensure(const char *root, uint64_t count, bench_dataset *out);
/** The data set root: SUTRA_BENCH_DATA, else $BUILD/bench-data. */
const char *bench_dataset_root(void);
/** rm -rf of a directory made by a benchmark. */
void bench_remove_tree(const char *dir);
/** mkdtemp under TMPDIR (or /tmp) into out[256]; returns 0 or errno. */
int bench_tempdir(const char *tag, char *out);

/* ---- processes ---------------------------------------------------------- */

/** Zeroed MAP_SHARED|MAP_ANONYMOUS memory that survives fork(). */
void *bench_shared_alloc(size_t bytes);
void bench_shared_free(void *p, size_t bytes);

/** fork() and run fn(arg) in the child, which exits with its return value.
 * Returns the child's pid or -1. */
pid_t bench_spawn(int (*fn)(void *), void *arg);
/** Wait for a child; returns 0 if it exited 0, else -1 (message printed). */
int bench_wait(pid_t pid, const char *what);

/** Voluntary + involuntary context switches of every thread of `pid`
 * (summed over /proc/<pid>/task/<tid>/status). */
uint64_t bench_proc_ctxsw(pid_t pid);
/** This process's context switches (getrusage, all its threads). */
uint64_t bench_self_ctxsw(void);

/** Start/stop barrier for several child processes (in shared memory). */
typedef struct bench_gate {
    int ready;            /* children that reached the gate (atomic)     */
    int go;               /* set by the parent (atomic)                  */
    uint64_t start_ns;    /* when the parent opened the gate             */
} bench_gate;
/** Child: announce readiness and wait for the parent. */
void bench_gate_enter(bench_gate *g);
/** Parent: wait until `children` are ready (-1 if one exits first or a
 * minute passes).  The gate stays shut. */
int bench_gate_wait(bench_gate *g, int children, const pid_t *pids);
/** Parent: record start_ns and let every waiting child through (also used
 * to free children after a failure). */
void bench_gate_release(bench_gate *g);

/* ---- a coordinator process ---------------------------------------------- */

typedef struct bench_coord {
    pid_t pid;
    char dir[256];   /* temporary data directory, removed by stop      */
} bench_coord;

/** The coordinator binary: SUTRA_COORDINATOR, else $BUILD/bin/... */
const char *bench_coord_path(void);
/**
 * fork/exec `sutra-coordinator DIR --sync SYNC --dim 384 --max-message ...`
 * on a fresh temporary directory and wait until its socket exists.  The
 * parent never touches NNG, so clients forked later are safe.
 * @return 0, or -1 (message and the coordinator's log printed).
 */
int bench_coord_start(const char *sync, bench_coord *out);
/** SIGTERM, wait up to 30 s (then SIGKILL), remove the directory.
 * @return 0 if it exited 0. */
int bench_coord_stop(bench_coord *c);

#endif
