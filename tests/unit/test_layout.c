/*
 * tests/unit/test_layout.c — the pure storage-format helpers (layout/format.c).
 *
 * Each rule of docs/format.md that layout/format.c enforces gets a case that
 * breaks it: header validation (F-HDR-*), meta slot validity and selection
 * (F-META-*), record checksums (F-LOG-6), node-table addressing (F-NODE-2)
 * and concept record sizing (F-LOG-3, F-CON-*).  Two pinned vectors freeze
 * the checksum and id-hash functions: a change to either is a format change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "layout/format.h"
#include "sutra/sutra.h"

/*
 * Pinned test vectors, computed once from the format 1.0 definitions.  They
 * must change only with a deliberate format change (a new major version and
 * an entry in docs/format.md's version history); a failure here means the
 * checksum or hash of existing files changed by accident.
 */
#define PINNED_ID_HASH 0x8355e3a6f61770dbull  /* ids bytes 00..0f          */
#define PINNED_REC_CHECKSUM 0xba5117758f659229ull /* pinned_record() below */

static const uint8_t UUID[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
                                 5, 6, 7, 8, 9, 10, 11, 12};

/* ---- header ------------------------------------------------------------ */

static void header_fresh(layout_header *h)
{
    layout_header_init(h, 128, 0, UUID, 1700000000000000000ull);
}

/* Recompute the checksum after a deliberate field change, so the test hits
 * the rule it targets instead of the checksum rule. */
static void header_reseal(layout_header *h)
{
    h->header_checksum = XXH3_64bits(h, LAYOUT_HEADER_CHECKSUMMED);
}

static void expect_header(const layout_header *h, uint64_t file_size, int code,
                          const char *rule)
{
    const char *why = NULL;
    assert_int_equal(layout_header_check(h, file_size, &why), code);
    if (code) {
        assert_non_null(why);
        assert_memory_equal(why, rule, strlen(rule));
    }
}

static void test_layout_header_round_trip(void **state)
{
    (void)state;
    static layout_header h;
    header_fresh(&h);
    assert_memory_equal(h.magic, "SUTRADAT", 8);
    assert_int_equal(h.format_major, LAYOUT_FORMAT_MAJOR);
    assert_int_equal(h.format_minor, LAYOUT_FORMAT_MINOR);
    assert_int_equal(h.page_size, 4096);
    assert_int_equal(h.vector_dim, 128);
    assert_memory_equal(h.uuid, UUID, 16);
    assert_int_equal(h.created_ns, 1700000000000000000ull);
    assert_int_equal(h.map_reserve, LAYOUT_DEFAULT_MAP_RESERVE);
    assert_int_equal(h.data_start, LAYOUT_DATA_START);
    assert_int_equal(h.generation, 0);
    expect_header(&h, LAYOUT_DATA_START, 0, NULL);
    assert_int_equal(layout_header_check(&h, 1ull << 30, NULL), 0);

    /* an explicit reserve is kept */
    layout_header_init(&h, 0, 1ull << 30, UUID, 1);
    assert_int_equal(h.map_reserve, 1ull << 30);
    expect_header(&h, LAYOUT_DATA_START, 0, NULL);
}

static void test_layout_header_in_place_words_not_checksummed(void **state)
{
    (void)state;
    /* F-HDR-6: the writer updates these while readers validate the header */
    static layout_header h;
    header_fresh(&h);
    h.generation = 12345;
    h.clean_shutdown = 1;
    h.superseded = 1;
    h.writer_pid = 999;
    h.node_chunk[0] = LAYOUT_DATA_START;
    expect_header(&h, LAYOUT_DATA_START, 0, NULL);
}

static void test_layout_header_rejects_bad_magic(void **state)
{
    (void)state;
    static layout_header h;
    header_fresh(&h);
    h.magic[7] = 'X';
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-1");
}

static void test_layout_header_rejects_bad_checksum(void **state)
{
    (void)state;
    static layout_header h;
    header_fresh(&h);
    h.uuid[5] ^= 1;
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-1");
    header_fresh(&h);
    h.header_checksum ^= 1ull << 63;
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-1");
}

static void test_layout_header_rejects_unknown_major(void **state)
{
    (void)state;
    static layout_header h;
    header_fresh(&h);
    h.format_major = LAYOUT_FORMAT_MAJOR + 1;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_EVERSION, "F-HDR-3");
    h.format_major = 0;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_EVERSION, "F-HDR-3");
}

static void test_layout_header_accepts_newer_minor(void **state)
{
    (void)state;
    /* F-HDR-4: readers accept a newer minor; only writers refuse it */
    static layout_header h;
    header_fresh(&h);
    h.format_minor = LAYOUT_FORMAT_MINOR + 3;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, 0, NULL);
}

static void test_layout_header_rejects_short_file(void **state)
{
    (void)state;
    static layout_header h;
    header_fresh(&h);
    expect_header(&h, LAYOUT_DATA_START - 1, SUTRA_ECORRUPT, "F-HDR-2");
    expect_header(&h, 0, SUTRA_ECORRUPT, "F-HDR-2");
    expect_header(&h, LAYOUT_PAGE_SIZE, SUTRA_ECORRUPT, "F-HDR-2");
}

static void test_layout_header_rejects_bad_geometry(void **state)
{
    (void)state;
    static layout_header h;

    header_fresh(&h);
    h.page_size = 8192;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-2");

    header_fresh(&h);
    h.data_start = LAYOUT_DATA_START + 4096;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-2");

    header_fresh(&h);
    h.map_reserve = (1ull << 30) + 8;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-2");

    header_fresh(&h);
    h.map_reserve = LAYOUT_PAGE_SIZE;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-2");

    header_fresh(&h);
    h.vector_dim = LAYOUT_MAX_DIM + 1;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, SUTRA_ECORRUPT, "F-HDR-5");
    h.vector_dim = LAYOUT_MAX_DIM;
    header_reseal(&h);
    expect_header(&h, LAYOUT_DATA_START, 0, NULL);
}

/* ---- meta slots ---------------------------------------------------------- */

static void meta_make(layout_meta *m, uint64_t generation)
{
    memset(m, 0, sizeof(*m));
    m->roots.generation = generation;
    m->roots.last_seq = generation * 10;
    m->roots.committed_end = LAYOUT_DATA_START + generation * 64;
    m->file_size = 1u << 20;
    layout_meta_seal(m);
}

static void test_layout_meta_seal_valid(void **state)
{
    (void)state;
    layout_meta m;
    meta_make(&m, 3);
    assert_int_equal(m.magic, LAYOUT_META_MAGIC);
    assert_true(layout_meta_valid(&m));

    /* F-META-3: every checksummed byte matters, and so does the checksum */
    for (size_t at = 0; at < sizeof(m); at += 8) {
        layout_meta bad = m;
        ((uint8_t *)&bad)[at + 3] ^= 0x10;
        assert_false(layout_meta_valid(&bad));
    }
    layout_meta zero;
    memset(&zero, 0, sizeof(zero));
    assert_false(layout_meta_valid(&zero)); /* a never-written slot */
}

static void test_layout_meta_pick_newer_wins(void **state)
{
    (void)state;
    layout_meta s0, s1;
    meta_make(&s0, 4);
    meta_make(&s1, 5);
    assert_int_equal(layout_meta_pick(&s0, &s1), 1);
    meta_make(&s0, 6);
    assert_int_equal(layout_meta_pick(&s0, &s1), 0);
    meta_make(&s0, 0); /* a fresh file: generation 0 in slot 0 only */
    memset(&s1, 0, sizeof(s1));
    assert_int_equal(layout_meta_pick(&s0, &s1), 0);
}

static void test_layout_meta_pick_one_corrupt(void **state)
{
    (void)state;
    layout_meta s0, s1;
    meta_make(&s0, 8);
    meta_make(&s1, 9);
    s1.roots.last_seq++; /* torn write of the newer slot */
    assert_int_equal(layout_meta_pick(&s0, &s1), 0);

    meta_make(&s0, 10);
    meta_make(&s1, 9);
    s0.checksum ^= 1;
    assert_int_equal(layout_meta_pick(&s0, &s1), 1);
}

static void test_layout_meta_pick_wrong_parity(void **state)
{
    (void)state;
    /* F-META-4: generation g must sit in slot g % 2 */
    layout_meta s0, s1;
    meta_make(&s0, 7); /* odd generation in slot 0: not trusted */
    meta_make(&s1, 5);
    assert_int_equal(layout_meta_pick(&s0, &s1), 1);
    meta_make(&s1, 6); /* even generation in slot 1 */
    assert_int_equal(layout_meta_pick(&s0, &s1), -1);
    meta_make(&s0, 4);
    assert_int_equal(layout_meta_pick(&s0, &s1), 0);
}

static void test_layout_meta_pick_both_corrupt(void **state)
{
    (void)state;
    layout_meta s0, s1;
    meta_make(&s0, 2);
    meta_make(&s1, 3);
    s0.magic = 0;
    s1.roots.committed_end = 1;
    assert_int_equal(layout_meta_pick(&s0, &s1), -1);
}

/* ---- records ------------------------------------------------------------- */

typedef union pinned_buf {
    layout_concept c;
    uint8_t bytes[112];
} pinned_buf;

/* The fixed record behind PINNED_REC_CHECKSUM: a concept version with
 * 6 bytes of inline content.  Do not edit. */
static void pinned_record(pinned_buf *u)
{
    memset(u, 0, sizeof(*u));
    u->c.rec.type = LAYOUT_REC_CONCEPT;
    u->c.rec.length = sizeof(layout_concept) + 6;
    u->c.rec.seq = 42;
    for (int i = 0; i < 16; i++)
        u->c.id[i] = (uint8_t)i;
    u->c.node = 7;
    u->c.created_ns = 1700000000000000000ull;
    u->c.updated_ns = 1700000000000000001ull;
    u->c.strength = 1.0f;
    u->c.confidence = 0.5f;
    u->c.content_off = LAYOUT_DATA_START + sizeof(layout_concept);
    u->c.content_len = 6;
    memcpy(u->bytes + sizeof(layout_concept), "sutra!", 6);
    layout_rec_seal(&u->c.rec);
}

static void test_layout_pinned_vectors(void **state)
{
    (void)state;
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)i;
    assert_int_equal(layout_id_hash(id), PINNED_ID_HASH);
    pinned_buf u;
    pinned_record(&u);
    assert_int_equal(u.c.rec.checksum, PINNED_REC_CHECKSUM);
    assert_true(layout_rec_verify(&u.c.rec));
}

static void test_layout_record_seal_verify(void **state)
{
    (void)state;
    pinned_buf u;
    pinned_record(&u);
    assert_int_equal(layout_rec_checksummed_len(&u.c.rec), 104 + 6 - 24);
    assert_true(layout_rec_verify(&u.c.rec));

    /* every body byte is covered */
    for (size_t at = sizeof(layout_rec); at < u.c.rec.length; at++) {
        pinned_buf bad;
        pinned_record(&bad);
        bad.bytes[at] ^= 0x01;
        assert_false(layout_rec_verify(&bad.c.rec));
    }
    /* padding after length is not */
    u.bytes[111] = 0xFF;
    assert_true(layout_rec_verify(&u.c.rec));
}

static void test_layout_record_header_bound_to_checksum(void **state)
{
    (void)state;
    /* F-LOG-6: the seed binds type, flags, length and seq */
    pinned_buf u;
    pinned_record(&u);
    u.c.rec.type = LAYOUT_REC_CONCEPT_TOMBSTONE;
    assert_false(layout_rec_verify(&u.c.rec));
    pinned_record(&u);
    u.c.rec.flags = 0x0100;
    assert_false(layout_rec_verify(&u.c.rec));
    pinned_record(&u);
    u.c.rec.seq = 43;
    assert_false(layout_rec_verify(&u.c.rec));
    pinned_record(&u);
    u.c.rec.length -= 1; /* shorter body: still readable, must fail */
    assert_false(layout_rec_verify(&u.c.rec));
    pinned_record(&u);
    u.c.rec.checksum ^= 1;
    assert_false(layout_rec_verify(&u.c.rec));
    pinned_record(&u);
    u.c.rec.length = 16; /* below the header size */
    assert_int_equal(layout_rec_checksummed_len(&u.c.rec), 0);
    assert_false(layout_rec_verify(&u.c.rec));
}

static void test_layout_region_checksum_covers_descriptor_only(void **state)
{
    (void)state;
    union {
        layout_region r;
        uint8_t bytes[256];
    } u;
    memset(&u, 0, sizeof(u));
    u.r.rec.type = LAYOUT_REC_HASH_TABLE;
    u.r.rec.flags = LAYOUT_REC_F_REGION;
    u.r.rec.length = layout_region_length(sizeof(u)); /* 4 units */
    u.r.arg0 = 24; /* slots */
    layout_rec_seal(&u.r.rec);
    assert_int_equal(layout_rec_checksummed_len(&u.r.rec),
                     LAYOUT_REGION_CHECKSUMMED);
    assert_true(layout_rec_verify(&u.r.rec));

    /* F-LOG-6: the mutable body past +64 is not checksummed */
    for (size_t at = LAYOUT_REGION_BODY; at < sizeof(u); at += 13)
        u.bytes[at] = 0x5A;
    assert_true(layout_rec_verify(&u.r.rec));

    /* the descriptor (+24..+64) is */
    for (size_t at = sizeof(layout_rec); at < LAYOUT_REGION_BODY; at++) {
        u.bytes[at] ^= 0x80;
        assert_false(layout_rec_verify(&u.r.rec));
        u.bytes[at] ^= 0x80;
    }
    assert_true(layout_rec_verify(&u.r.rec));

    /* F-LOG-5: a region's length counts 64-byte units */
    assert_int_equal(layout_rec_size(&u.r.rec),
                     (uint64_t)u.r.rec.length * LAYOUT_REGION_ALIGN);

    /* a region shorter than its descriptor is never valid */
    u.r.rec.length = 0;
    layout_rec_seal(&u.r.rec);
    assert_false(layout_rec_verify(&u.r.rec));
}

/* ---- node table ---------------------------------------------------------- */

static void expect_locate(uint32_t node, uint32_t chunk, uint64_t index)
{
    uint32_t k = 99;
    uint64_t i = 99;
    layout_node_locate(node, &k, &i);
    assert_int_equal(k, chunk);
    assert_int_equal(i, index);
    assert_true(k < LAYOUT_NODE_CHUNKS);
    assert_int_equal(layout_node_chunk_first(k) + i, node);
    assert_true(i < layout_node_chunk_entries(k));
}

static void test_layout_node_locate_boundaries(void **state)
{
    (void)state;
    expect_locate(0, 0, 0);
    expect_locate(1023, 0, 1023);
    expect_locate(1024, 1, 0);
    expect_locate(3071, 1, 2047);
    expect_locate(3072, 2, 0);
    expect_locate(7167, 2, 4095);
    expect_locate(7168, 3, 0);
    expect_locate(1000000, 9, 1000000 - 1024u * 511u);
    /* the largest node numbers still land inside the 32 chunks */
    expect_locate(LAYOUT_MAX_NODES, 22, LAYOUT_MAX_NODES - 1024ull * ((1ull << 22) - 1));
    expect_locate(UINT32_MAX, 22, UINT32_MAX - 1024ull * ((1ull << 22) - 1));
}

static void test_layout_node_chunks_tile(void **state)
{
    (void)state;
    assert_int_equal(layout_node_chunk_first(0), 0);
    assert_int_equal(layout_node_chunk_entries(0), LAYOUT_NODE_CHUNK0);
    for (uint32_t k = 0; k + 1 < LAYOUT_NODE_CHUNKS; k++) {
        /* chunk k+1 starts where chunk k ends */
        assert_int_equal(layout_node_chunk_first(k) + layout_node_chunk_entries(k),
                         layout_node_chunk_first(k + 1));
        uint64_t first = layout_node_chunk_first(k);
        if (first + layout_node_chunk_entries(k) - 1 > UINT32_MAX)
            break;
        expect_locate((uint32_t)first, k, 0);
        expect_locate((uint32_t)(first + layout_node_chunk_entries(k) - 1), k,
                      layout_node_chunk_entries(k) - 1);
    }
}

/* ---- concept sizing ------------------------------------------------------ */

static void test_layout_concept_size_examples(void **state)
{
    (void)state;
    assert_int_equal(layout_concept_size(LAYOUT_DATA_START, 0, 0), 104);
    assert_int_equal(layout_concept_size(LAYOUT_DATA_START, 5, 0), 109);
    /* 12288+104 = 12392 -> 12416, + 16 */
    assert_int_equal(layout_concept_size(LAYOUT_DATA_START, 0, 4), 144);
    assert_int_equal(layout_concept_size(LAYOUT_DATA_START + 8, 0, 4), 136);
    /* 12288+24+104 = 12416 already aligned */
    assert_int_equal(layout_concept_size(LAYOUT_DATA_START + 24, 0, 4), 120);
}

static void test_layout_concept_size_alignment(void **state)
{
    (void)state;
    for (uint64_t off = LAYOUT_DATA_START; off < LAYOUT_DATA_START + 128; off += 8) {
        for (uint32_t content = 0; content < 140; content += 7) {
            for (uint32_t dim = 0; dim <= 8; dim += 4) {
                uint64_t size = layout_concept_size(off, content, dim);
                uint64_t payload = sizeof(layout_concept) + content + dim * 4ull;
                assert_true(size >= payload);
                if (dim == 0) {
                    assert_int_equal(size, payload);
                } else {
                    /* F-LOG-3: the embedding starts 64-aligned, at the
                     * first such offset after the content */
                    uint64_t emb = off + size - dim * 4ull;
                    assert_int_equal(emb % LAYOUT_REGION_ALIGN, 0);
                    assert_true(size - payload < LAYOUT_REGION_ALIGN);
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_header_round_trip),
        cmocka_unit_test(test_layout_header_in_place_words_not_checksummed),
        cmocka_unit_test(test_layout_header_rejects_bad_magic),
        cmocka_unit_test(test_layout_header_rejects_bad_checksum),
        cmocka_unit_test(test_layout_header_rejects_unknown_major),
        cmocka_unit_test(test_layout_header_accepts_newer_minor),
        cmocka_unit_test(test_layout_header_rejects_short_file),
        cmocka_unit_test(test_layout_header_rejects_bad_geometry),
        cmocka_unit_test(test_layout_meta_seal_valid),
        cmocka_unit_test(test_layout_meta_pick_newer_wins),
        cmocka_unit_test(test_layout_meta_pick_one_corrupt),
        cmocka_unit_test(test_layout_meta_pick_wrong_parity),
        cmocka_unit_test(test_layout_meta_pick_both_corrupt),
        cmocka_unit_test(test_layout_pinned_vectors),
        cmocka_unit_test(test_layout_record_seal_verify),
        cmocka_unit_test(test_layout_record_header_bound_to_checksum),
        cmocka_unit_test(test_layout_region_checksum_covers_descriptor_only),
        cmocka_unit_test(test_layout_node_locate_boundaries),
        cmocka_unit_test(test_layout_node_chunks_tile),
        cmocka_unit_test(test_layout_concept_size_examples),
        cmocka_unit_test(test_layout_concept_size_alignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
