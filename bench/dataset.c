/*
 * bench/dataset.c — the read benchmarks' data set: the same N records as a
 * Sutra storage.dat and as an LMDB environment.
 *
 * Building 1M records of ~1.7 KB twice is the slowest part of a run, so the
 * result is kept under the data set root and reused while a marker file
 * says it was finished for this format version, count and dimension (and
 * the Sutra file still opens).  The Sutra side is written through the
 * storage engine directly — wire-encoded batches of 1000 learn_concept ops,
 * decoded, applied and committed without sync, exactly what the committer
 * does for a --sync none coordinator minus the IPC — because the read
 * benchmarks measure reads, and this is the fastest honest way to get the
 * bytes the coordinator would have written.  LMDB gets its best layout: keys
 * appended in sorted order (MDB_APPEND) fill every leaf page.
 *
 * Single-threaded; the directories it writes belong to the benchmark.
 */
#include "bench/bench.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"

#define LOAD_BATCH 1000u

const char *bench_dataset_root(void)
{
    static char root[512];
    const char *r = getenv("SUTRA_BENCH_DATA");
    if (r != NULL && r[0] != '\0')
        return r;
    snprintf(root, sizeof(root), "%s/bench-data", bench_build_dir());
    return root;
}

static uint64_t file_size(const char *dir, const char *name)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- Sutra, through the storage engine ----------------------------------- */

/* Encode records first..first+count-1 as one request; returns its length. */
static size_t encode_batch(uint8_t *buf, uint64_t first, uint32_t count,
                           uint64_t request_no)
{
    wire_request_header h;
    wire_request_header_init(&h, WIRE_SYNC_NONE, 1, request_no, count);
    memcpy(buf, &h, sizeof(h));
    size_t len = sizeof(h);
    uint8_t content[BENCH_CONTENT_MAX];
    float embedding[BENCH_DIM];
    for (uint32_t k = 0; k < count; k++) {
        uint64_t i = first + k;
        sutra_id id;
        bench_record_id(i, &id);
        size_t clen = bench_record_content(i, content);
        bench_record_embedding(i, embedding);
        len += wire_encode_learn_concept(buf + len, 0, id.bytes,
                                         bench_record_strength(i),
                                         bench_record_confidence(i), content,
                                         (uint32_t)clen, embedding, BENCH_DIM);
    }
    return len;
}

static int apply_batch(coord_store *s, const uint8_t *buf, size_t len)
{
    wire_limits lim = { .max_message = UINT64_MAX,
                        .max_content = BENCH_CONTENT_MAX,
                        .max_batch = LOAD_BATCH,
                        .vector_dim = BENCH_DIM };
    wire_request req;
    uint32_t failed = 0;
    const char *why = "";
    int rc = wire_request_decode(buf, len, &lim, &req, &failed, &why);
    if (rc != 0) {
        fprintf(stderr, "bench: load batch refused: %s (%s)\n",
                sutra_strerror(rc), why);
        return rc;
    }
    coord_apply_result res;
    coord_commit_info info;
    coord_error err = { 0 };
    rc = coord_store_apply(s, &req, &res, &err);
    if (rc == 0)
        rc = coord_store_commit(s, false, &info, &err);
    if (rc != 0)
        fprintf(stderr, "bench: store: %s (%s)\n", sutra_strerror(rc),
                err.message);
    return rc;
}

static int build_sutra(const char *dir, uint64_t count)
{
    char path[600];
    mkdir(dir, 0750);
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    unlink(path);
    coord_store_options opts = { .vector_dim = BENCH_DIM };
    coord_store *s = NULL;
    coord_error err = { 0 };
    int rc = coord_store_open(path, &opts, &s, &err);
    if (rc != 0) {
        fprintf(stderr, "bench: coord_store_open %s: %s (%s)\n", path,
                sutra_strerror(rc), err.message);
        return rc;
    }
    size_t cap = sizeof(wire_request_header) +
                 LOAD_BATCH * wire_learn_concept_size(BENCH_CONTENT_MAX, BENCH_DIM);
    uint8_t *buf = aligned_alloc(64, (cap + 63) / 64 * 64);
    if (buf == NULL) {
        coord_store_close(s, false);
        return ENOMEM;
    }
    for (uint64_t first = 0, no = 1; first < count && rc == 0;
         first += LOAD_BATCH, no++) {
        uint32_t n = (uint32_t)(count - first < LOAD_BATCH ? count - first
                                                            : LOAD_BATCH);
        rc = apply_batch(s, buf, encode_batch(buf, first, n, no));
    }
    free(buf);
    if (rc == 0) {
        coord_error serr = { 0 };
        rc = coord_store_sync(s, &serr);
    }
    coord_store_close(s, rc == 0);
    return rc;
}

/* ---- LMDB ------------------------------------------------------------------ */

typedef struct keyed_index {
    sutra_id id;
    uint64_t index;
} keyed_index;

static int compare_keyed(const void *a, const void *b)
{
    return memcmp(&((const keyed_index *)a)->id, &((const keyed_index *)b)->id,
                  sizeof(sutra_id));
}

static int lmdb_append_all(MDB_env *env, const keyed_index *keys,
                           uint64_t count)
{
    uint8_t *val = malloc(bench_lmdb_value_max());
    if (val == NULL)
        return ENOMEM;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = 0;
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        if (txn == NULL && (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0)
            rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        MDB_val k = { sizeof(sutra_id), (void *)&keys[i].id };
        MDB_val v = { bench_lmdb_value_encode(keys[i].index, keys[i].index + 1,
                                              val), val };
        if (rc == 0)
            rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
        if (rc == 0 && ((i + 1) % LOAD_BATCH == 0 || i + 1 == count)) {
            rc = mdb_txn_commit(txn);
            txn = NULL;
        }
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    free(val);
    return rc;
}

static int build_lmdb(const char *dir, uint64_t count)
{
    mkdir(dir, 0750);
    char path[600];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    keyed_index *keys = malloc(count * sizeof(*keys));
    if (keys == NULL)
        return ENOMEM;
    for (uint64_t i = 0; i < count; i++) {
        bench_record_id(i, &keys[i].id);
        keys[i].index = i;
    }
    qsort(keys, count, sizeof(*keys), compare_keyed);
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, count * 4096 + (256u << 20));
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_NOSYNC | MDB_WRITEMAP, 0640);
    if (rc == 0)
        rc = lmdb_append_all(env, keys, count);
    if (rc == 0)
        rc = mdb_env_sync(env, 1);
    if (rc != 0)
        fprintf(stderr, "bench: lmdb load: %s\n", mdb_strerror(rc));
    mdb_env_close(env);
    free(keys);
    return rc;
}

/* ---- the cache ---------------------------------------------------------------- */

static void marker_text(uint64_t count, char *out, size_t len)
{
    snprintf(out, len, "format %u.%u count %llu dim %u content %u..%u\n",
             LAYOUT_FORMAT_MAJOR, LAYOUT_FORMAT_MINOR,
             (unsigned long long)count, BENCH_DIM, BENCH_CONTENT_MIN,
             BENCH_CONTENT_MAX);
}

/* Whether `root` holds a finished data set for `count` that still opens;
 * says why not when a marker exists but the data cannot be reused. */
static bool dataset_cached(const bench_dataset *ds, const char *marker)
{
    char want[128], have[128] = "";
    marker_text(ds->count, want, sizeof(want));
    FILE *f = fopen(marker, "r");
    if (f == NULL)
        return false;
    bool same = fgets(have, sizeof(have), f) != NULL && strcmp(have, want) == 0;
    fclose(f);
    const char *why = NULL;
    sutra_db *db = NULL;
    struct sutra_snapshot snap;
    int rc = 0;
    if (!same)
        why = "made for another format, count or dim";
    else if ((rc = sutra_open(ds->sutra_dir, NULL, &db)) != 0 ||
             (rc = sutra_snapshot(db, &snap)) != 0)
        why = sutra_strerror(rc);
    else if (snap.concept_count != ds->count)
        why = "concept count differs";
    else if (file_size(ds->lmdb_dir, "data.mdb") == 0)
        why = "no LMDB data";
    sutra_close(db);
    if (why != NULL)
        printf("cached data set %s not reused (%s)\n", ds->sutra_dir, why);
    return why == NULL;
}

/* Bytes of data each side holds: the committed log, LMDB's used pages (its
 * data.mdb is sized to the map, not to the data). */
static int measure_sizes(bench_dataset *ds)
{
    sutra_db *db = NULL;
    struct sutra_snapshot snap;
    sutra_stats st;
    int rc = sutra_open(ds->sutra_dir, NULL, &db);
    if (rc == 0 && (rc = sutra_snapshot(db, &snap)) == 0 &&
        (rc = sutra_stats_get(&snap, &st)) == 0)
        ds->sutra_bytes = st.committed_end;
    sutra_close(db);
    if (rc != 0) {
        fprintf(stderr, "bench: %s: %s\n", ds->sutra_dir, sutra_strerror(rc));
        return rc;
    }
    MDB_env *env = NULL;
    MDB_envinfo info;
    MDB_stat mst;
    rc = mdb_env_create(&env);
    if (rc == 0 && (rc = mdb_env_open(env, ds->lmdb_dir, MDB_RDONLY, 0640)) == 0 &&
        (rc = mdb_env_info(env, &info)) == 0 && (rc = mdb_env_stat(env, &mst)) == 0)
        ds->lmdb_bytes = (uint64_t)(info.me_last_pgno + 1) * mst.ms_psize;
    mdb_env_close(env);
    if (rc != 0)
        fprintf(stderr, "bench: %s: %s\n", ds->lmdb_dir, mdb_strerror(rc));
    return rc;
}

static int write_marker(const char *marker, uint64_t count)
{
    char text[128];
    marker_text(count, text, sizeof(text));
    FILE *f = fopen(marker, "w");
    if (f == NULL)
        return errno;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : errno;
}

static int mkdir_parents(const char *dir)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(tmp, 0750);
        *p = '/';
    }
    return mkdir(tmp, 0750) == 0 || errno == EEXIST ? 0 : errno;
}

int bench_dataset_ensure(const char *root, uint64_t count, bench_dataset *out)
{
    bench_dataset ds = { .count = count };
    char base[480], marker[600];
    snprintf(base, sizeof(base), "%s/n%llu-d%u", root,
             (unsigned long long)count, BENCH_DIM);
    snprintf(ds.sutra_dir, sizeof(ds.sutra_dir), "%s/sutra", base);
    snprintf(ds.lmdb_dir, sizeof(ds.lmdb_dir), "%s/lmdb", base);
    snprintf(marker, sizeof(marker), "%s/complete", base);
    if (!dataset_cached(&ds, marker)) {
        unlink(marker);
        int rc = mkdir_parents(base);
        if (rc != 0) {
            fprintf(stderr, "bench: mkdir %s: %s\n", base, strerror(rc));
            return rc;
        }
        printf("building %llu records (Sutra via the storage engine, then "
               "LMDB) under %s ...\n", (unsigned long long)count, base);
        fflush(stdout);
        uint64_t t0 = bench_now_ns();
        if ((rc = build_sutra(ds.sutra_dir, count)) != 0)
            return rc;
        uint64_t t1 = bench_now_ns();
        if ((rc = build_lmdb(ds.lmdb_dir, count)) != 0)
            return rc;
        ds.sutra_load_s = (double)(t1 - t0) / 1e9;
        ds.lmdb_load_s = (double)(bench_now_ns() - t1) / 1e9;
        if ((rc = write_marker(marker, count)) != 0)
            return rc;
    }
    int rc = measure_sizes(&ds);
    if (rc == 0)
        *out = ds;
    return rc;
}
