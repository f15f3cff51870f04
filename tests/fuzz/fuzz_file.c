/*
 * tests/fuzz/fuzz_file.c — libFuzzer target for everything that reads
 * storage.dat: the input bytes become the file, then sutra_open(),
 * sutra_snapshot(), sutra_snapshot_at() of a few generations, sutra_get()
 * and sutra_contains() of ids taken from the input, sutra_stats_get() and
 * sutra_verify() (first problem, and all problems).  Any return code is
 * fine; a crash or a sanitizer report is a bug.
 *
 * Speed: the file is a memfd, and a per-process temporary directory holds
 * a storage.dat symlink to /proc/self/fd/N, so sutra_open() reopens the
 * memfd by path without touching a disk.  The mapping is sized to the input
 * (sutra_open_options.map_size) instead of the header's reserve.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layout/format.h"
#include "sutra/sutra.h"
#include "tests/fuzz/fuzz_memfile.h"

static volatile uint8_t sink;

static void lookups(const struct sutra_snapshot *snap, const uint8_t *data,
                    size_t size)
{
    /* Ids where concept records would keep them, and a few raw windows. */
    size_t picks[8] = {LAYOUT_DATA_START + 24, LAYOUT_DATA_START + 8192 + 24,
                       size / 2, size - 16, 24, 0, 0, 0};
    int found = 0;
    for (size_t off = LAYOUT_DATA_START; off + 40 <= size && found < 3; off += 8)
        if (data[off] == LAYOUT_REC_CONCEPT && data[off + 1] == 0 &&
            data[off + 2] == 0 && data[off + 3] == 0)
            picks[5 + found++] = off + 24;
    for (int i = 0; i < 8; i++) {
        if (picks[i] + 16 > size)
            continue;
        sutra_id id;
        memcpy(id.bytes, data + picks[i], 16);
        sutra_concept c;
        if (sutra_get(snap, &id, &c) == 0) {
            const volatile uint8_t *b = c.content;
            for (size_t j = 0; j < c.content_len; j++)
                sink ^= b[j];
            /* Bytes, not values: a float past 255 does not convert. */
            const volatile uint8_t *e = (const uint8_t *)c.embedding;
            for (size_t j = 0; e && j < (size_t)c.dim * sizeof(float); j++)
                sink ^= e[j];
        }
        bool live;
        (void)sutra_contains(snap, &id, &live);
    }
}

static void check(const struct sutra_snapshot *snap, const uint8_t *data,
                  size_t size, uint32_t flags)
{
    sutra_stats st;
    (void)sutra_stats_get(snap, &st);
    lookups(snap, data, size);
    sutra_verify_options o = {.flags = flags};
    sutra_verify_report rep;
    int rc = sutra_verify(snap, &o, &rep);
    if (rc == 0 && rep.problems != 0)
        abort();
    if (rc == SUTRA_ECORRUPT && (rep.problems == 0 || rep.rule[0] != 'F'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_memfile_setup();
    fuzz_memfile_load(data, size);
    sutra_open_options o = {
        .map_size = layout_align_up(size < LAYOUT_DATA_START ? LAYOUT_DATA_START
                                                             : size,
                                    LAYOUT_PAGE_SIZE)};
    sutra_db *db = NULL;
    if (sutra_open(fuzz_mem.dir, &o, &db) != 0)
        return 0;
    struct sutra_snapshot snap;
    if (sutra_snapshot(db, &snap) == 0) {
        check(&snap, data, size, SUTRA_VERIFY_ALL);
        uint64_t g = snap.generation;
        uint64_t back[4] = {g ? g - 1 : 0, g > 2 ? g - 2 : 0, 0,
                            size > 200 ? data[size - 1] : 1};
        for (int i = 0; i < 4; i++) {
            struct sutra_snapshot old;
            if (sutra_snapshot_at(db, back[i], &old) == 0)
                check(&old, data, size, 0);
        }
    }
    sutra_close(db);
    return 0;
}
