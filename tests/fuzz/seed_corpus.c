/*
 * tests/fuzz/seed_corpus.c — writes the seed corpora of the fuzz targets
 * into tests/fuzz/corpus/{request,reply,file}: real encoded requests (each
 * op type, batches, both alignments), real replies, and small real
 * storage.dat files written by the coordinator's store (a few concepts, a
 * forget, a re-learn; a fresh file; one left unclean).  Not part of the
 * build: the seeds are committed, and this program regenerates them on
 * purpose only, when a format or protocol change makes them stale:
 *
 *   make build/lib/libcoord.a build/lib/libsutra_internal.a
 *   cc -std=c11 -D_GNU_SOURCE -I. -Iinclude tests/fuzz/seed_corpus.c \
 *      build/lib/libcoord.a build/lib/libsutra_internal.a -lnng -lurcu-common \
 *      -lxxhash -lpthread -lm -o /tmp/seed_corpus && /tmp/seed_corpus
 */
#include <errno.h>
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

int main(void)
{
    request_seeds();
    reply_seeds();
    file_seed("fresh", 0);
    file_seed("standard", 1);
    file_seed("unclean", 2);
    return 0;
}
