/*
 * tools/sutra-demo.c — the two halves of `make run`, as separate processes:
 *
 *   sutra-demo ping  DIR          wait (up to 10 s) until the coordinator answers
 *   sutra-demo write DIR          learn a few concepts, print seq and generation
 *   sutra-demo read  DIR GEN      wait for GEN, read them zero-copy, print them
 *
 * It exists to show a newcomer the whole path — client write through the
 * coordinator, generation published in the file, lock-free read from
 * another process's mapping — in a few lines of output.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sutra/sutra.h"

static const char *const NAMES[] = { "april", "may", "june", "july", "august" };
#define N_NAMES (sizeof(NAMES) / sizeof(NAMES[0]))

static int fail(const char *what, int rc)
{
    fprintf(stderr, "sutra-demo: %s: %s\n", what, sutra_strerror(rc));
    return 1;
}

static int cmd_ping(const char *dir)
{
    sutra_client_options opts = { .timeout_ms = 500, .resend_ms = 200 };
    for (int i = 0; i < 100; i++) {
        sutra_client *c;
        int rc = sutra_client_connect(dir, &opts, &c);
        if (rc == 0) {
            rc = sutra_ping(c);
            sutra_client_close(c);
            if (rc == 0)
                return 0;
        }
        usleep(100000);
    }
    fprintf(stderr, "sutra-demo: no coordinator answered on %s\n", dir);
    return 1;
}

static int cmd_write(const char *dir)
{
    /* The embedding dimension is the file's: read it without NNG. */
    sutra_db *db;
    int rc = sutra_open(dir, NULL, &db);
    if (rc != 0)
        return fail("open", rc);
    uint32_t dim = sutra_dim(db);
    sutra_close(db);

    sutra_client *c;
    if ((rc = sutra_client_connect(dir, NULL, &c)) != 0)
        return fail("connect", rc);
    sutra_batch *batch;
    if ((rc = sutra_batch_new(&batch)) != 0)
        return fail("batch", rc);
    float *emb = calloc(dim ? dim : 1, sizeof(float));
    char text[128];
    for (size_t i = 0; i < N_NAMES; i++) {
        sutra_concept_input in = { 0 };
        sutra_id_from_name(NAMES[i], strlen(NAMES[i]), &in.id);
        int n = snprintf(text, sizeof(text), "%s is month %zu of the demo",
                         NAMES[i], i + 4);
        in.content = text;
        in.content_len = (size_t)n;
        for (uint32_t d = 0; d < dim; d++)
            emb[d] = (float)(i + 1) / (float)(d + 1);
        in.embedding = dim ? emb : NULL;
        in.dim = dim;
        in.strength = 1.0f;
        in.confidence = 0.9f;
        if ((rc = sutra_batch_learn_concept(batch, &in)) != 0)
            return fail("batch_learn_concept", rc);
    }
    sutra_write_result res;
    if ((rc = sutra_batch_commit(c, batch, &res)) != 0)
        return fail("commit", rc);
    printf("writer pid %d: learned %u concepts atomically, seqs %" PRIu64
           "..%" PRIu64 ", visible at generation %" PRIu64 "\n",
           (int)getpid(), res.op_count, res.first_seq,
           res.first_seq + res.op_count - 1, res.generation);
    printf("GENERATION=%" PRIu64 "\n", res.generation);
    free(emb);
    sutra_batch_free(batch);
    sutra_client_close(c);
    return 0;
}

static int cmd_read(const char *dir, uint64_t gen)
{
    sutra_db *db;
    int rc = sutra_open(dir, NULL, &db);
    if (rc != 0)
        return fail("open", rc);
    if ((rc = sutra_wait_generation(db, gen, 10000)) != 0)
        return fail("wait_generation", rc);
    struct sutra_snapshot snap;
    if ((rc = sutra_snapshot(db, &snap)) != 0)
        return fail("snapshot", rc);
    printf("reader pid %d: snapshot at generation %" PRIu64 ", %" PRIu64
           " live concepts, no lock, no IPC\n",
           (int)getpid(), snap.generation, snap.concept_count);
    for (size_t i = 0; i < N_NAMES; i++) {
        sutra_id id;
        sutra_concept c;
        char hex[SUTRA_ID_HEX_LEN + 1];
        sutra_id_from_name(NAMES[i], strlen(NAMES[i]), &id);
        sutra_id_format(&id, hex);
        if ((rc = sutra_get(&snap, &id, &c)) != 0)
            return fail(NAMES[i], rc);
        printf("  %s  \"%.*s\"  strength %.1f  seq %" PRIu64
               "  content at %p (in the mapping)", hex, (int)c.content_len,
               (const char *)c.content, c.strength, c.seq, c.content);
        if (c.embedding && c.dim > 1)
            printf("  embedding[%u] = {%.3f, %.3f, ...}", c.dim,
                   c.embedding[0], c.embedding[1]);
        else if (c.embedding)
            printf("  embedding[1] = {%.3f}", c.embedding[0]);
        printf("\n");
    }
    sutra_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "ping") == 0)
        return cmd_ping(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "write") == 0)
        return cmd_write(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "read") == 0) {
        char *end;
        errno = 0;
        unsigned long long gen = strtoull(argv[3], &end, 10);
        if (errno || *end)
            return fail("generation", SUTRA_EINVAL);
        return cmd_read(argv[2], gen);
    }
    fprintf(stderr, "usage: sutra-demo ping DIR | write DIR | read DIR GEN\n");
    return 2;
}
