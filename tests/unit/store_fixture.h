/*
 * tests/unit/store_fixture.h — what the tests that drive the coordinator's
 * store (coordinator/store.h) directly share: a fresh temporary data
 * directory per test, opening the store in it, numbered concept ids,
 * requests built with the wire encoders and decoded as the coordinator
 * would, a fault-injecting coord_io, an independent read-only mapping of
 * storage.dat through which a test checks the bytes the store wrote the way
 * a reader process sees them (layout/format.h), not the store's memory, and
 * a stopwatch for the tests that report how long a pause took.
 *
 * Header-only (static inline functions, so that a binary which uses only
 * some of them still builds under -Werror): each unit test binary is built
 * from one .c file.  Single-threaded.
 */
#ifndef SUTRA_TESTS_STORE_FIXTURE_H
#define SUTRA_TESTS_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/io.h"
#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"

/* ---- a fresh directory per test --------------------------------------- */

typedef struct sf_dir {
    char dir[64];   /* the data directory */
    char path[128]; /* its storage.dat    */
} sf_dir;

/* Create a directory from `pattern`, a mkdtemp(3) template such as
 * "/tmp/sutra-store-XXXXXX".  Returns 0, or -1 with errno set. */
static inline int sf_dir_make(sf_dir *d, const char *pattern)
{
    snprintf(d->dir, sizeof(d->dir), "%s", pattern);
    if (!mkdtemp(d->dir))
        return -1;
    snprintf(d->path, sizeof(d->path), "%s/storage.dat", d->dir);
    return 0;
}

/* Remove storage.dat, the storage.dat.new an interrupted create leaves,
 * and the directory.  Anything else a test put there keeps the directory. */
static inline void sf_dir_remove(const sf_dir *d)
{
    unlink(d->path);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.new", d->path);
    unlink(tmp);
    rmdir(d->dir);
}

/* cmocka setup: *state becomes a new sf_dir made from `pattern`; freed by
 * sf_teardown. */
static inline int sf_setup(void **state, const char *pattern)
{
    sf_dir *d = calloc(1, sizeof(*d));
    if (!d || sf_dir_make(d, pattern) != 0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static inline int sf_teardown(void **state)
{
    sf_dir *d = *state;
    sf_dir_remove(d);
    free(d);
    return 0;
}

/* ---- opening the store ------------------------------------------------ */

/* Open or create the store at `path`.  `dim` 0 keeps an existing file's
 * dimension; `io` NULL is the real POSIX layer (borrowed).  Returns
 * coord_store_open's code; *out is written only on success. */
static inline int sf_try_open(const char *path, uint32_t dim,
                              uint64_t map_reserve, coord_io *io,
                              coord_store **out, coord_error *err)
{
    coord_store_options o = {.vector_dim = dim, .map_reserve = map_reserve,
                             .io = io};
    return coord_store_open(path, &o, out, err);
}

/* The same, failing the test if the open fails. */
static inline coord_store *sf_open(const char *path, uint32_t dim,
                                   uint64_t map_reserve, coord_io *io)
{
    coord_store *s = NULL;
    coord_error err = {0};
    int rc = sf_try_open(path, dim, map_reserve, io, &s, &err);
    if (rc)
        print_error("open: %d %s\n", rc, err.message);
    assert_int_equal(rc, 0);
    return s;
}

/* The id of concept number i, as these tests name concepts: distinct
 * numbers give distinct ids, spread over the hash table. */
static inline void sf_make_id(uint64_t i, uint8_t id[16])
{
    uint64_t a = i + 1, b = (i + 1) * 0x9E3779B97F4A7C15ull;
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

/* ---- requests (encoders from layout/wire.h) ---------------------------- */

/* A request that grows as ops are added.  Start from {0}; free with
 * sf_req_free, which leaves it ready for the next request. */
typedef struct sf_req {
    uint64_t *words;      /* 8-aligned message buffer                 */
    size_t len, cap;
    uint32_t ops;
    wire_request decoded; /* by sf_req_done; points into words        */
} sf_req;

/* Room for `n` more bytes; returns where they go (zeroed). */
static inline uint8_t *sf_req_room(sf_req *r, size_t n)
{
    if (!r->words) {
        r->cap = 4096;
        r->words = calloc(r->cap / 8, 8);
        r->len = sizeof(wire_request_header);
    }
    while (r->len + n > r->cap) {
        r->words = realloc(r->words, r->cap * 2);
        memset((uint8_t *)r->words + r->cap, 0, r->cap);
        r->cap *= 2;
    }
    return (uint8_t *)r->words + r->len;
}

/* Learn `id` (confidence 0.5) with optional content and embedding. */
static inline void sf_req_learn_id(sf_req *r, const uint8_t id[16],
                                   uint16_t flags, float strength,
                                   const void *content, uint32_t content_len,
                                   const float *embedding, uint32_t dim)
{
    uint8_t *p = sf_req_room(r, wire_learn_concept_size(content_len, dim));
    r->len += wire_encode_learn_concept(p, flags, id, strength, 0.5f, content,
                                        content_len, embedding, dim);
    r->ops++;
}

static inline void sf_req_forget_id(sf_req *r, const uint8_t id[16])
{
    r->len += wire_encode_forget_concept(sf_req_room(r, 24), id);
    r->ops++;
}

/* Forget concept number i (sf_make_id). */
static inline void sf_req_forget(sf_req *r, uint64_t i)
{
    uint8_t id[16];
    sf_make_id(i, id);
    sf_req_forget_id(r, id);
}

/* Seal the header and decode the message as the coordinator would, under
 * `lim` (its vector_dim is the store's); a decode failure fails the test.
 * The result lives in r until sf_req_free. */
static inline const wire_request *sf_req_done(sf_req *r,
                                              const wire_limits *lim,
                                              uint64_t client,
                                              uint64_t request_no)
{
    sf_req_room(r, 0); /* a request with no ops still needs its header */
    wire_request_header_init((wire_request_header *)r->words, 0, client,
                             request_no, r->ops);
    uint32_t failed;
    const char *why = NULL;
    int rc = wire_request_decode(r->words, r->len, lim, &r->decoded, &failed,
                                 &why);
    if (rc)
        print_error("decode: %d %s\n", rc, why);
    assert_int_equal(rc, 0);
    return &r->decoded;
}

static inline void sf_req_free(sf_req *r)
{
    free(r->words);
    memset(r, 0, sizeof(*r));
}

/* ---- a fault-injecting io ---------------------------------------------- */

/* The real POSIX layer, failing on demand: set a field to an errno to make
 * the matching calls fail from then on.  A failed meta-slot store stands
 * for a crash before the generation is published. */
typedef struct sf_fault_io {
    coord_io io;         /* first: the store sees only this          */
    coord_io *real;
    uint8_t *base;       /* the store's mapping, learned at open     */
    int pwrite_err;      /* fail every pwrite with this              */
    int meta_err;        /* fail stores into the meta pages          */
    int meta_words_left; /* ...after this many of them succeeded     */
    int extend_err;
    int sync_err;        /* fail syncs with this...                  */
    int syncs_left;      /* ...after this many succeeded             */
    int publish_err;     /* fail the store of the generation word: a
                            crash after the index words, before the
                            generation is published                  */
} sf_fault_io;

static inline int sf_fault_open(coord_io *io, const char *p, int fl,
                                unsigned m, int *fd)
{
    sf_fault_io *f = (sf_fault_io *)io;
    return f->real->open(f->real, p, fl, m, fd);
}

static inline int sf_fault_pwrite(coord_io *io, int fd, const void *b,
                                  size_t n, uint64_t off)
{
    sf_fault_io *f = (sf_fault_io *)io;
    if (f->pwrite_err)
        return f->pwrite_err;
    return f->real->pwrite(f->real, fd, b, n, off);
}

static inline int sf_fault_extend(coord_io *io, int fd, uint64_t a,
                                  uint64_t b)
{
    sf_fault_io *f = (sf_fault_io *)io;
    if (f->extend_err)
        return f->extend_err;
    return f->real->extend(f->real, fd, a, b);
}

static inline int sf_fault_sync(coord_io *io, int fd)
{
    sf_fault_io *f = (sf_fault_io *)io;
    if (f->sync_err) {
        if (f->syncs_left == 0)
            return f->sync_err;
        f->syncs_left--;
    }
    return f->real->sync(f->real, fd);
}

static inline int sf_fault_pwrite_sync(coord_io *io, int fd, const void *b,
                                       size_t n, uint64_t off)
{
    int rc = sf_fault_pwrite(io, fd, b, n, off);
    return rc ? rc : sf_fault_sync(io, fd);
}

static inline int sf_fault_sync_range(coord_io *io, int fd, const void *a,
                                      uint64_t off, uint64_t n)
{
    sf_fault_io *f = (sf_fault_io *)io;
    int rc = sf_fault_sync(io, fd);
    return rc ? rc : f->real->sync_range(f->real, fd, a, off, n);
}

static inline int sf_fault_sync_dir(coord_io *io, const char *p)
{
    sf_fault_io *f = (sf_fault_io *)io;
    return f->real->sync_dir(f->real, p);
}

static inline int sf_fault_store64(coord_io *io, uint64_t *w, uint64_t v)
{
    sf_fault_io *f = (sf_fault_io *)io;
    uint8_t *p = (uint8_t *)w;
    if (f->publish_err && f->base &&
        p == f->base + offsetof(layout_header, generation))
        return f->publish_err;
    if (f->meta_err && f->base && p >= f->base + LAYOUT_META_OFFSET_0 &&
        p < f->base + LAYOUT_DATA_START) {
        if (f->meta_words_left == 0)
            return f->meta_err;
        f->meta_words_left--;
    }
    return f->real->store64(f->real, w, v);
}

static inline int sf_fault_store32(coord_io *io, uint32_t *w, uint32_t v)
{
    sf_fault_io *f = (sf_fault_io *)io;
    /* The first 32-bit store of an open marks clean_shutdown = 0. */
    if (!f->base)
        f->base = (uint8_t *)w - offsetof(layout_header, clean_shutdown);
    return f->real->store32(f->real, w, v);
}

static inline void sf_fault_close(coord_io *io, int fd)
{
    sf_fault_io *f = (sf_fault_io *)io;
    f->real->close(f->real, fd);
}

/* A table that fails nothing until a test sets one of its fields. */
static inline sf_fault_io sf_fault_io_make(void)
{
    sf_fault_io f = {{.open = sf_fault_open, .pwrite = sf_fault_pwrite,
                      .extend = sf_fault_extend, .sync = sf_fault_sync,
                      .pwrite_sync = sf_fault_pwrite_sync,
                      .sync_range = sf_fault_sync_range,
                      .sync_dir = sf_fault_sync_dir,
                      .store64 = sf_fault_store64, .store32 = sf_fault_store32,
                      .close = sf_fault_close, .ctx = NULL},
                     coord_io_posix(), NULL, 0, 0, 0, 0, 0, 0, 0};
    return f;
}

/* ---- an independent read-only view of the file ------------------------ */

typedef struct sf_view {
    int fd;
    const uint8_t *map; /* the whole reserve, as a reader maps it */
    size_t len;
} sf_view;

/* Map storage.dat at `path` read-only over `map_reserve` bytes (the
 * store's), so the view sees the file grow.  Close with sf_view_close. */
static inline sf_view sf_view_open(const char *path, uint64_t map_reserve)
{
    sf_view v;
    v.fd = open(path, O_RDONLY);
    assert_true(v.fd >= 0);
    v.len = (size_t)map_reserve;
    v.map = mmap(NULL, v.len, PROT_READ, MAP_SHARED | MAP_NORESERVE, v.fd, 0);
    assert_true(v.map != MAP_FAILED);
    return v;
}

static inline void sf_view_close(sf_view *v)
{
    munmap((void *)v->map, v->len);
    close(v->fd);
}

static inline const layout_header *sf_hdr_of(const sf_view *v)
{
    return (const layout_header *)v->map;
}

/* The meta slot of the published generation (asserted valid). */
static inline const layout_meta *sf_meta_of(const sf_view *v)
{
    uint64_t gen = sf_hdr_of(v)->generation;
    uint64_t off = gen % 2 ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0;
    const layout_meta *m = (const layout_meta *)(v->map + off);
    assert_true(layout_meta_valid(m));
    assert_int_equal(m->roots.generation, gen);
    return m;
}

/* The roots of the published generation. */
static inline layout_roots sf_roots_of(const sf_view *v)
{
    return sf_meta_of(v)->roots;
}

/* Node entry n, in the node chunk the header names (asserted present and
 * a valid NODE_CHUNK region). */
static inline const layout_node *sf_node_of(const sf_view *v, uint32_t n)
{
    uint32_t k;
    uint64_t index;
    layout_node_locate(n, &k, &index);
    uint64_t off = sf_hdr_of(v)->node_chunk[k];
    assert_true(off != 0);
    const layout_region *r = (const layout_region *)(v->map + off);
    assert_int_equal(r->rec.type, LAYOUT_REC_NODE_CHUNK);
    assert_true(layout_rec_verify(&r->rec));
    assert_int_equal(r->arg0, k);
    return (const layout_node *)(v->map + off + LAYOUT_REGION_BODY) + index;
}

/* ---- timing ------------------------------------------------------------ */

/* Seconds since *t0 (CLOCK_MONOTONIC), for the tests that report a pause. */
static inline double sf_seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

#endif
