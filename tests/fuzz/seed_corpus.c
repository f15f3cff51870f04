/*
 * tests/fuzz/seed_corpus.c — writes the seed corpora of the fuzz targets
 * into tests/fuzz/corpus/{request,reply,file,open}: real encoded requests
 * (each op type, batches, both alignments), real replies, and small real
 * storage.dat files written by the coordinator's store (a few concepts, a
 * forget, a re-learn; a fresh file; one left unclean), and the same kind of
 * files behind a flags byte for fuzz_open (tests/fuzz/corpus/open: with
 * associations, a checkpoint, a hub forgotten with its edges, a copy cut at
 * its committed end).  Not part of the build: the seeds are committed, and
 * this program regenerates them on purpose only, when a format or protocol
 * change makes them stale:
 *
 *   make build/lib/libcoord.a build/lib/libsutra_internal.a
 *   cc -std=c11 -D_GNU_SOURCE -I. -Iinclude tests/fuzz/seed_corpus.c \
 *      build/lib/libcoord.a build/lib/libsutra_internal.a -lnng -lurcu-common \
 *      -lxxhash -lpthread -lm -o /tmp/seed_corpus && /tmp/seed_corpus
 *
 * With arguments (request, reply, file, open), only those corpora.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/sample_file.h"

/* Small files: the store never grows a file past its map reserve. */
#define SEED_RESERVE (96u << 10)

static void write_seed(const char *dir, const char *name, const void *prefix,
                       size_t prefix_len, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/fuzz/corpus/%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(prefix, 1, prefix_len, f) != prefix_len ||
        fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "seed_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* Limits prefix: any message size, 1 MiB content, 1024 ops, dim 4. */
static void request_seed(const char *name, sample_request *r, uint8_t shift)
{
    uint8_t prefix[FUZZ_PREFIX] = {4, 3, 3, 2, shift};
    sample_finish(r, 7);
    write_seed("request", name, prefix, sizeof(prefix), r->words, r->len);
}

static void request_seeds(void)
{
    static const float e[SAMPLE_DIM] = {1, 2, 3, 4};
    sample_request *r = calloc(1, sizeof(*r));
    sample_begin(r);
    sample_learn(r, "alpha", "content bytes", e, 1.0f, 0);
    request_seed("learn", r, 0);
    request_seed("learn-shifted", r, 1);
    sample_begin(r);
    sample_learn(r, "alpha", NULL, NULL, 2.0f,
                 WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING);
    request_seed("learn-keep", r, 0);
    sample_begin(r);
    sample_forget(r, "alpha");
    request_seed("forget", r, 0);
    sample_begin(r);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "alpha", "beta", 3, 0.5f);
    request_seed("learn-association", r, 0);
    sample_begin(r);
    sample_assoc(r, WIRE_OP_FORGET_ASSOCIATION, "alpha", "beta", 3, 0.0f);
    request_seed("forget-association", r, 0);
    static const uint16_t simple[] = {WIRE_OP_FLUSH, WIRE_OP_STATS, WIRE_OP_PING};
    static const char *simple_names[] = {"flush", "stats", "ping"};
    for (int i = 0; i < 3; i++) {
        sample_begin(r);
        sample_simple(r, simple[i]);
        request_seed(simple_names[i], r, 0);
    }
    sample_begin(r);
    sample_learn(r, "a", "x", NULL, 1.0f, 0);
    sample_learn(r, "b", "", e, 1.0f, 0);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "a", "b", 1, 1.0f);
    sample_forget(r, "a");
    sample_simple(r, WIRE_OP_FLUSH);
    request_seed("batch", r, 0);
    free(r);
}

static void reply_seed(const char *name, const wire_reply_header *h,
                       const void *body, uint8_t shift)
{
    uint8_t buf[sizeof(*h) + sizeof(wire_stats)];
    memcpy(buf, h, sizeof(*h));
    if (h->body_len)
        memcpy(buf + sizeof(*h), body, h->body_len);
    write_seed("reply", name, &shift, 1, buf, sizeof(*h) + h->body_len);
}

static void reply_seeds(void)
{
    wire_reply_header h;
    wire_reply_header_init(&h, 7, 0, WIRE_NO_FAILED_OP, 11, 5, 3, 0);
    reply_seed("ok", &h, NULL, 0);
    reply_seed("ok-shifted", &h, NULL, 4);
    wire_reply_header_init(&h, 8, SUTRA_ENOTFOUND, 2, 0, 5, 0, 0);
    reply_seed("error", &h, NULL, 0);
    wire_stats st = {.generation = 5, .last_seq = 11, .node_count = 3,
                     .max_batch = 1024, .vector_dim = 4};
    wire_reply_header_init(&h, 9, 0, WIRE_NO_FAILED_OP, 0, 5, 0, sizeof(st));
    reply_seed("stats", &h, &st, 0);
}

/* Build a file in a temporary directory and copy it in as a seed. */
static void file_seed(const char *name, int kind)
{
    char dir[] = "/tmp/sutra-seed-XXXXXX", path[64];
    if (!mkdtemp(dir))
        exit(1);
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    coord_store *s = sample_open(path, SEED_RESERVE);
    if (!s || (kind > 0 && sample_standard(s) != 0))
        exit(1);
    coord_store_close(s, kind != 2);
    FILE *f = fopen(path, "rb");
    static uint8_t buf[SEED_RESERVE];
    size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    write_seed("file", name, "", 0, buf, len);
    unlink(path);
    rmdir(dir);
}

/* Associations between three concepts, one of them forgotten (its edges
 * get tombstones), one association forgotten; a sync after the first
 * group, so the file has a checkpoint (F-HDR-8) and a durable end below
 * the rest. */
static int sample_associations(coord_store *s)
{
    static const float e[SAMPLE_DIM] = {1, 0, 0, 2};
    sample_request *r = calloc(1, sizeof(*r));
    coord_commit_info info;
    coord_error err;
    int rc = 0;
    sample_begin(r);
    sample_learn(r, "a", "first", e, 1.0f, 0);
    sample_learn(r, "b", "second", NULL, 1.0f, 0);
    sample_learn(r, "c", "", e, 1.0f, 0);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "a", "b", 1, 0.5f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "a", "c", 2, 0.25f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "c", "b", 1, 1.0f);
    if (!rc) rc = sample_apply(s, r, 1);
    if (!rc) rc = coord_store_commit(s, true, &info, &err);
    if (!rc) rc = coord_store_sync(s, &err);
    sample_begin(r);
    sample_assoc(r, WIRE_OP_FORGET_ASSOCIATION, "a", "c", 2, 0.0f);
    sample_learn(r, "a", NULL, NULL, 2.0f,
                 WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING);
    if (!rc) rc = sample_apply(s, r, 2);
    if (!rc) rc = sample_commit(s);
    sample_begin(r);
    sample_forget(r, "b");
    if (!rc) rc = sample_apply(s, r, 3);
    if (!rc) rc = sample_commit(s);
    free(r);
    return rc;
}

/* A hub with twelve out-edges and two in-edges (its lists span several
 * adjacency blocks, F-ADJ-4), then forgotten in a later group: tombstones
 * in fourteen lists (F-ADJ-5). */
static int sample_hub(coord_store *s)
{
    sample_request *r = calloc(1, sizeof(*r));
    char name[16];
    int rc = 0;
    sample_begin(r);
    sample_learn(r, "hub", "center", NULL, 1.0f, 0);
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "spoke%d", i);
        sample_learn(r, name, NULL, NULL, 1.0f, 0);
        sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "hub", name, (uint32_t)i,
                     0.5f);
    }
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "spoke0", "hub", 1, 1.0f);
    sample_assoc(r, WIRE_OP_LEARN_ASSOCIATION, "spoke1", "hub", 1, 1.0f);
    if (!rc) rc = sample_apply(s, r, 1);
    if (!rc) rc = sample_commit(s);
    sample_begin(r);
    sample_forget(r, "hub");
    if (!rc) rc = sample_apply(s, r, 2);
    if (!rc) rc = sample_commit(s);
    free(r);
    return rc;
}

/*
 * A seed for fuzz_open: its flags byte, then a file built by the store.
 * kind 0: fresh; 1: the standard sample; 2: associations; 3: a hub.  The file is
 * closed cleanly unless `unclean`; `cut` ends it at its committed end (a
 * short copy, as a copy or restore that stopped there leaves it).
 */
static void open_seed(const char *name, uint8_t flags, int kind, bool unclean,
                      bool cut)
{
    char dir[] = "/tmp/sutra-seed-XXXXXX", path[64];
    if (!mkdtemp(dir))
        exit(1);
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    coord_store *s = sample_open(path, SEED_RESERVE);
    if (!s || (kind == 1 && sample_standard(s) != 0) ||
        (kind == 2 && sample_associations(s) != 0) ||
        (kind == 3 && sample_hub(s) != 0))
        exit(1);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    coord_store_close(s, !unclean);
    FILE *f = fopen(path, "rb");
    static uint8_t buf[SEED_RESERVE];
    size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    if (cut && st.committed_end < len)
        len = (size_t)st.committed_end;
    write_seed("open", name, &flags, 1, buf, len);
    unlink(path);
    rmdir(dir);
}

static bool wanted(int argc, char **argv, const char *corpus)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], corpus) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    if (wanted(argc, argv, "request"))
        request_seeds();
    if (wanted(argc, argv, "reply"))
        reply_seeds();
    if (wanted(argc, argv, "file")) {
        file_seed("fresh", 0);
        file_seed("standard", 1);
        file_seed("unclean", 2);
    }
    if (wanted(argc, argv, "open")) {
        open_seed("fresh", 0x00, 0, false, false);
        open_seed("standard-unclean", 0xcd, 1, true, false);
        open_seed("standard-short", 0x15, 1, true, true);
        open_seed("assoc", 0x4c, 2, false, false);
        open_seed("assoc-unclean", 0xdd, 2, true, false);
        open_seed("hub-unclean", 0xc5, 3, true, false);
    }
    return 0;
}
