/*
 * tests/unit/test_recovery.c — torn and rotten files.
 *
 * One real file is built through the store (a few hundred concepts over
 * ten generations, with re-learns and forgets) and cleanly closed.  Copies
 * of it are then damaged the ways a file can be damaged outside the
 * coordinator's control:
 *   - truncated (a copy or restore that stopped short) inside the header
 *     page, each meta page, record headers, every commit record, the middle
 *     of a region, just before the end;
 *   - a meta slot corrupted: slot 0, slot 1, both (clean and unclean);
 *   - bytes flipped in records: content, a record header, the last commit
 *     record, an early commit record.
 * For every copy: the reader (sutra_open, sutra_snapshot, sutra_get) gives
 * SUTRA_ECORRUPT or correct data of a committed generation — never a crash,
 * never garbage; sutra_verify reports SUTRA_ECORRUPT with the offset; and
 * coord_store_open either recovers to exactly the last generation that is
 * whole (checked byte for byte, then verified, then written to) or refuses
 * with a message naming the rule and the offset.
 */
#include "tests/unit/fault_fixture.h"

#include <fcntl.h>
#include <sys/stat.h>

#define GENS 10u

typedef struct base {
    fx_dir d;
    fx_model *m;
    uint64_t gen_end[GENS + 1];    /* committed_end of each generation     */
    uint64_t gen_commit[GENS + 1]; /* its commit record                    */
    uint64_t size;                 /* the file's size                      */
    uint64_t concept_off[64];      /* a sample of concept records          */
    uint32_t concept_gen[64];
    uint32_t concepts;
    uint64_t hash_body;            /* middle of the first hash table body  */
} base;

static base *g_base;
static uint64_t g_cases, g_recovered, g_refused;

static uint8_t *read_all(const char *path, uint64_t *len)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size);
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (uint64_t)st.st_size;
    return buf;
}

/* Record the offsets worth damaging, walking the log as a scanner does. */
static void index_base(base *b)
{
    uint64_t len;
    uint8_t *img = read_all(b->d.path, &len);
    b->size = len;
    b->hash_body = LAYOUT_DATA_START + LAYOUT_REGION_BODY + 4000;
    uint64_t off = LAYOUT_DATA_START, end = b->gen_end[GENS];
    while (off < end) {
        const layout_rec *r = (const layout_rec *)(img + off);
        if (*(const uint64_t *)(const void *)r == 0) {
            off += 8;
            continue;
        }
        if (r->type == LAYOUT_REC_CONCEPT && b->concepts < 64) {
            uint32_t g = 1;
            while (g < GENS && b->gen_end[g] <= off)
                g++;
            b->concept_gen[b->concepts] = g;
            b->concept_off[b->concepts++] = off;
        }
        off = layout_align_up(off + layout_rec_size(r), LAYOUT_RECORD_ALIGN);
    }
    assert_int_equal(off, end);
    free(img);
}

static int build_base(void **state)
{
    (void)state;
    base *b = calloc(1, sizeof(*b));
    b->m = calloc(1, sizeof(*b->m));
    fx_dir_make(&b->d);
    coord_error err = { 0 };
    coord_store *s = fx_open(b->d.path, NULL, NULL, &err);
    for (uint32_t g = 1; g <= GENS; g++) {
        fx_req q = { 0 };
        fx_build_group(&q, b->m, 77 * g, g == 1 ? 300 : 60);
        assert_int_equal(fx_commit(s, &q, b->m, g, true, &err), 0);
        coord_store_stats st;
        coord_store_stats_get(s, &st);
        b->gen_end[g] = st.committed_end;
    }
    coord_store_close(s, true);
    /* commit record offsets from the chain, newest first */
    uint64_t len;
    uint8_t *img = read_all(b->d.path, &len);
    const layout_meta *m = (const layout_meta *)(img + (GENS % 2 ? LAYOUT_META_OFFSET_1
                                                                 : LAYOUT_META_OFFSET_0));
    uint64_t c = m->roots.last_commit;
    for (uint32_t g = GENS; g >= 1; g--) {
        b->gen_commit[g] = c;
        c = ((const layout_commit *)(img + c))->prev_commit;
    }
    free(img);
    index_base(b);
    fx_check_state(b->d.dir, b->m, GENS);
    g_base = b;
    return 0;
}

static int drop_base(void **state)
{
    (void)state;
    fx_dir_remove(&g_base->d);
    free(g_base->m);
    free(g_base);
    print_message("test_recovery: %llu damaged copies, %llu recovered, %llu "
                  "refused with a message\n", (unsigned long long)g_cases,
                  (unsigned long long)g_recovered,
                  (unsigned long long)g_refused);
    return 0;
}

/* ---- copies ------------------------------------------------------------ */

typedef void (*damage_fn)(uint8_t *img, uint64_t *len, uint64_t arg);

static void copy_damaged(const base *b, fx_dir *out, damage_fn damage,
                         uint64_t arg)
{
    uint64_t len;
    uint8_t *img = read_all(b->d.path, &len);
    damage(img, &len, arg);
    fx_dir_make(out);
    int fd = open(out->path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, len), (ssize_t)len);
    close(fd);
    free(img);
}

static void cut_at(uint8_t *img, uint64_t *len, uint64_t at)
{
    (void)img;
    if (at < *len)
        *len = at;
}

static void flip_at(uint8_t *img, uint64_t *len, uint64_t at)
{
    assert_true(at < *len);
    img[at] ^= 0x5A;
}

static void set_word(uint8_t *img, uint64_t off, uint64_t value)
{
    memcpy(img + off, &value, sizeof(value));
}

/* ---- what every damaged copy must satisfy ------------------------------ */

/* The reader: ECORRUPT or the data of the generation it claims. */
static void check_reader(const fx_dir *d, const fx_model *m, bool damaged)
{
    sutra_db *db = NULL;
    int rc = sutra_open(d->dir, NULL, &db);
    assert_true(rc == 0 || rc == SUTRA_ECORRUPT);
    if (rc)
        return;
    struct sutra_snapshot snap;
    rc = sutra_snapshot(db, &snap);
    assert_true(rc == 0 || rc == SUTRA_ECORRUPT);
    if (rc == 0) {
        assert_true(snap.generation <= GENS);
        const fx_state *st = &m->gen[snap.generation];
        for (uint32_t i = 0; i < FX_ITEMS; i++) {
            uint8_t id[16];
            fx_item_id(i, id);
            sutra_concept c;
            int g = sutra_get(&snap, (const sutra_id *)id, &c);
            assert_true(g == 0 || g == SUTRA_ENOTFOUND || g == SUTRA_ECORRUPT);
            if (g == 0) {
                char want[256];
                size_t len = fx_content(i, st->version[i], want, sizeof(want));
                assert_true(st->version[i] != 0);
                if (c.content_len != len || memcmp(c.content, want, len) != 0)
                    print_message("  reader: item %u content differs from "
                                  "the committed bytes (not checksummed on "
                                  "get)\n", i);
            }
        }
        sutra_verify_report rep;
        int v = sutra_verify(&snap, NULL, &rep);
        assert_true(v == 0 || v == SUTRA_ECORRUPT);
        if (damaged) {
            assert_int_equal(v, SUTRA_ECORRUPT);
            assert_true(rep.rule[0] != 0);
        }
    }
    sutra_close(db);
}

/* The coordinator: recovers to exactly `want_gen`, or (want_gen < 0)
 * refuses naming `rule`.  A recovered copy verifies and takes a write. */
static void check_open(fx_dir *d, const fx_model *m_in, int64_t want_gen,
                       const char *rule)
{
    g_cases++;
    coord_error err = { 0 };
    int rc;
    coord_store *s = fx_open(d->path, NULL, &rc, &err);
    if (want_gen < 0) {
        if (rc != SUTRA_ECORRUPT)
            print_error("expected a refusal (%s), got %d\n", rule, rc);
        assert_int_equal(rc, SUTRA_ECORRUPT);
        if (!strstr(err.message, rule))
            print_error("message lacks %s: %s\n", rule, err.message);
        assert_non_null(strstr(err.message, rule));
        print_message("  refused: %s\n", err.message);
        g_refused++;
        return;
    }
    if (rc)
        print_error("expected generation %lld, open failed: %s\n",
                    (long long)want_gen, err.message);
    assert_int_equal(rc, 0);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    assert_int_equal(st.generation, (uint64_t)want_gen);
    fx_check_state(d->dir, m_in, (uint64_t)want_gen);
    /* writable: one more generation, still verifying */
    fx_model *m = malloc(sizeof(*m));
    memcpy(m, m_in, sizeof(*m));
    m->gens = (uint64_t)want_gen;
    fx_req q = { 0 };
    fx_build_group(&q, m, 999, 20);
    assert_int_equal(fx_commit(s, &q, m, 9999, true, &err), 0);
    coord_store_close(s, false);
    s = fx_open(d->path, NULL, NULL, &err);
    coord_store_close(s, true);
    fx_check_state(d->dir, m, (uint64_t)want_gen + 1);
    free(m);
    g_recovered++;
}

/* The last generation whose log lies wholly below `cut`. */
static int64_t whole_below(const base *b, uint64_t cut)
{
    int64_t g = 0;
    for (uint32_t k = 1; k <= GENS; k++)
        if (b->gen_end[k] <= cut)
            g = k;
    return g;
}

/* ---- truncation ---------------------------------------------------------- */

static void truncated_case(uint64_t cut)
{
    base *b = g_base;
    fx_dir d;
    copy_damaged(b, &d, cut_at, cut);
    check_reader(&d, b->m, cut < b->gen_end[GENS]);
    if (cut < LAYOUT_DATA_START) {
        check_open(&d, b->m, -1, "F-HDR-2");
    } else {
        int64_t g = whole_below(b, cut);
        check_open(&d, b->m, g == 0 ? -1 : g, "F-REC-6");
    }
    fx_dir_remove(&d);
}

static void test_recovery_truncated_copies(void **state)
{
    (void)state;
    base *b = g_base;
    uint64_t cuts[] = { 100, LAYOUT_META_OFFSET_0 + 100,
                        LAYOUT_META_OFFSET_1 + 100, LAYOUT_DATA_START + 10,
                        b->hash_body, b->gen_end[GENS] - 8 };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        truncated_case(cuts[i]);
    for (uint32_t g = 1; g <= GENS; g++) {
        truncated_case(b->gen_commit[g] + 30); /* inside each commit record */
        truncated_case(b->gen_end[g]);         /* exactly at its end       */
    }
    for (uint32_t i = 0; i < b->concepts; i += 8)
        truncated_case(b->concept_off[i] + 12); /* inside a record header */
}

/* F-REC-6: a copy may stop at any byte, also within the first 8 bytes of
 * a record (the log is scanned a word at a time): that file simply ends
 * there too, a short copy to be cut back to the generations wholly in it,
 * not damage below durable_end. */
static void test_recovery_copy_cut_inside_a_first_word(void **state)
{
    (void)state;
    base *b = g_base;
    for (uint32_t g = 2; g <= GENS; g += 3)
        truncated_case(b->gen_end[g - 1] + 5); /* the next record's type,
                                                  flags and length */
    for (uint32_t i = 1; i < b->concepts; i += 16)
        truncated_case(b->concept_off[i] + 3);
}

/* ---- meta slots ----------------------------------------------------------- */

static void corrupt_slots(uint8_t *img, uint64_t *len, uint64_t which)
{
    (void)len;
    if (which & 1)
        img[LAYOUT_META_OFFSET_0 + 40] ^= 0xFF;
    if (which & 2)
        img[LAYOUT_META_OFFSET_1 + 40] ^= 0xFF;
    if (which & 4) /* as after a power cut: not closed, durable end lost */
        memset(img + offsetof(layout_header, clean_shutdown), 0, 4);
}

static void test_recovery_meta_slots(void **state)
{
    (void)state;
    base *b = g_base;
    for (uint64_t which = 1; which <= 3; which++) {
        fx_dir d;
        copy_damaged(b, &d, corrupt_slots, which);
        check_reader(&d, b->m, false);
        /* one slot left: the log still has every generation (F-REC-5
         * notices the durable end past the older slot's, F-REC-6 rolls
         * forward) */
        check_open(&d, b->m, which == 3 ? -1 : (int64_t)GENS, "F-META-4");
        fx_dir_remove(&d);
    }
    /* both slots torn in a file that was not closed: rebuilt from the log */
    fx_dir d;
    copy_damaged(b, &d, corrupt_slots, 7);
    check_reader(&d, b->m, false);
    check_open(&d, b->m, GENS, NULL);
    fx_dir_remove(&d);
}

/* ---- flipped bytes ---------------------------------------------------------- */

static uint64_t g_flip_at;

static void flip_unclean(uint8_t *img, uint64_t *len, uint64_t durable)
{
    flip_at(img, len, g_flip_at);
    memset(img + offsetof(layout_header, clean_shutdown), 0, 4);
    set_word(img, offsetof(layout_header, durable_end), durable);
}

static void test_recovery_flipped_bytes(void **state)
{
    (void)state;
    base *b = g_base;
    /* the last commit record: nothing newer can replace it, and it is
     * durable: refused, naming the record */
    fx_dir d;
    uint64_t last = b->gen_commit[GENS];
    copy_damaged(b, &d, flip_at, last + 60);
    check_reader(&d, b->m, true);
    char where[32];
    snprintf(where, sizeof(where), "at %llu", (unsigned long long)last);
    check_open(&d, b->m, -1, where);
    fx_dir_remove(&d);

    /* rot inside durable records of a cleanly closed file: the open does
     * no O(file) work on durable data, the verifier finds it */
    uint64_t targets[] = { b->concept_off[3] + sizeof(layout_concept) + 2,
                           b->concept_off[b->concepts / 2] + 4,
                           b->gen_commit[1] + 50 };
    for (size_t i = 0; i < 3; i++) {
        copy_damaged(b, &d, flip_at, targets[i]);
        check_reader(&d, b->m, true);
        coord_error err = { 0 };
        int rc;
        coord_store *s = fx_open(d.path, NULL, &rc, &err);
        assert_true(rc == 0 || rc == SUTRA_ECORRUPT);
        coord_store_close(s, false);
        g_cases++;
        fx_dir_remove(&d);
    }

    /* the same rot in a file that was not closed and has no durable end
     * (a file from before F-HDR-7, or the word lost): the tail check
     * scans from the start, finds it, and the rebuild keeps the
     * generations before it */
    for (uint32_t i = 2; i < b->concepts; i += 9) {
        g_flip_at = b->concept_off[i] + sizeof(layout_concept) + 1;
        copy_damaged(b, &d, flip_unclean, 0);
        check_open(&d, b->m, b->concept_gen[i] - 1, NULL);
        fx_dir_remove(&d);
    }
    /* rot past the durable end of a file that was not closed (what a power
     * cut leaves under --sync interval): recovered to the generation before
     * the damaged record, which is at least the durable one */
    for (uint32_t i = 0; i < b->concepts; i++) {
        if (b->concept_gen[i] != GENS - 1)
            continue;
        g_flip_at = b->concept_off[i] + sizeof(layout_concept) + 1;
        copy_damaged(b, &d, flip_unclean, b->gen_end[GENS - 2]);
        check_open(&d, b->m, GENS - 2, NULL);
        fx_dir_remove(&d);
        break;
    }
}

/* The first concept record of generation g. */
static uint64_t concept_of_gen(const base *b, uint32_t g)
{
    uint64_t len;
    uint8_t *img = read_all(b->d.path, &len);
    uint64_t off = b->gen_end[g - 1], found = 0;
    while (off < b->gen_end[g] && !found) {
        const layout_rec *r = (const layout_rec *)(img + off);
        if (*(const uint64_t *)(const void *)r == 0) {
            off += 8;
            continue;
        }
        if (r->type == LAYOUT_REC_CONCEPT)
            found = off;
        off = layout_align_up(off + layout_rec_size(r), LAYOUT_RECORD_ALIGN);
    }
    free(img);
    assert_true(found != 0);
    return found;
}

static uint64_t g_length_at;

/* Rot in the high byte of a record's length (the record now claims to run
 * past the end of the file) and in a record past the durable end, in a
 * file that was not closed. */
static void rot_length_unclean(uint8_t *img, uint64_t *len, uint64_t durable)
{
    flip_at(img, len, g_length_at + offsetof(layout_rec, length) + 3);
    flip_unclean(img, len, durable);
}

/* F-REC-6: a record below the durable end whose length field rotted reads
 * as running past the end of the file, but the file does not end there:
 * it holds the whole durable log.  That is damage to durable data, to be
 * refused like any other, not a short copy whose tail may be cut away. */
static void test_recovery_rotten_length_is_not_a_short_copy(void **state)
{
    (void)state;
    base *b = g_base;
    g_length_at = concept_of_gen(b, 5);
    g_flip_at = b->gen_commit[GENS - 1] + 50; /* fails F-REC-5: a rebuild */
    fx_dir d;
    copy_damaged(b, &d, rot_length_unclean, b->gen_end[GENS - 2]);
    char where[32];
    snprintf(where, sizeof(where), "at %llu,", (unsigned long long)g_length_at);
    check_open(&d, b->m, -1, where);
    fx_dir_remove(&d);
}

/* Commit one concept with `content_len` bytes of content (no embedding)
 * into a new file at d->path; the committed end.  Closed as a crash
 * leaves it unless `clean`. */
static uint64_t one_concept_file(const fx_dir *d, uint32_t content_len,
                                 bool clean)
{
    static const wire_limits lim = { .max_message = 1u << 20,
                                     .max_content = 1u << 16,
                                     .max_batch = 16, .vector_dim = 0 };
    static const char content[8192];
    coord_store *s = sf_open(d->path, 0, FX_RESERVE, NULL);
    sf_req q = { 0 };
    uint8_t id[16];
    sf_make_id(1, id);
    sf_req_learn_id(&q, id, 0, 1.0f, content, content_len, NULL, 0);
    coord_apply_result res;
    coord_error err = { 0 };
    assert_int_equal(coord_store_apply(s, sf_req_done(&q, &lim, 1, 1), &res,
                                       &err), 0);
    assert_int_equal(coord_store_commit(s, true, NULL, &err), 0);
    sf_req_free(&q);
    coord_store_stats st;
    coord_store_stats_get(s, &st);
    coord_store_close(s, clean);
    return st.committed_end;
}

/* Open the store at `path`, which must succeed, and take its stats. */
static coord_store *open_ok(const char *path, coord_store_stats *st)
{
    coord_error err = { 0 };
    coord_store *s = NULL;
    int rc = sf_try_open(path, 0, FX_RESERVE, NULL, &s, &err);
    if (rc)
        print_error("open: %s\n", err.message);
    assert_int_equal(rc, 0);
    coord_store_stats_get(s, st);
    return s;
}

/* Open the file in `d` (then remove it): it must recover generation 1,
 * ending at `end`, and with `no_rebuild` by the tail check alone. */
static void open_at_generation_1(fx_dir *d, uint64_t end, bool no_rebuild)
{
    coord_store_stats st;
    coord_store *s = open_ok(d->path, &st);
    assert_int_equal(st.generation, 1);
    assert_int_equal(st.committed_end, end);
    if (no_rebuild)
        assert_false(st.rebuilt_at_open);
    coord_store_close(s, true);
    fx_dir_remove(d);
}

/* A file that was not closed, holding one generation whose committed end
 * lies `before_page` bytes before a page boundary, with the `len` bytes
 * of `rec` written there and the file cut right after them: the open must
 * stop at `rec` and recover generation 1, whatever the record's fields
 * claim lies past the end of the file (the page past it is not backed:
 * reading there is SIGBUS). */
static void open_with_record_past_the_end(const void *rec, size_t len,
                                          uint32_t before_page)
{
    /* the committed end of a file whose concept has no content, to pad
     * the next one's content to the wanted distance */
    fx_dir d;
    fx_dir_make(&d);
    uint64_t end0 = one_concept_file(&d, 0, true);
    fx_dir_remove(&d);
    uint32_t pad = (uint32_t)((LAYOUT_PAGE_SIZE - before_page -
                               end0 % LAYOUT_PAGE_SIZE + LAYOUT_PAGE_SIZE) %
                              LAYOUT_PAGE_SIZE);
    fx_dir_make(&d);
    uint64_t end = one_concept_file(&d, pad, false);
    assert_int_equal(end % LAYOUT_PAGE_SIZE, LAYOUT_PAGE_SIZE - before_page);

    int fd = open(d.path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, rec, len, (off_t)end), (ssize_t)len);
    assert_int_equal(ftruncate(fd, (off_t)(end + len)), 0);
    close(fd);

    open_at_generation_1(&d, end, false);
}

/* F-COM-1, F-LOG-5: the file is hostile input.  A COMMIT record whose
 * length (24) is too short to hold a commit, checksummed, 104 bytes before
 * a page boundary: the roll-forward (F-REC-7) must stop there, not read
 * the commit's fields (up to 144 bytes in) past the end of the file. */
static void test_recovery_short_commit_record_past_the_end(void **state)
{
    (void)state;
    layout_rec rec = { .type = LAYOUT_REC_COMMIT, .length = sizeof(rec),
                       .seq = 2 };
    layout_rec_seal(&rec);
    open_with_record_past_the_end(&rec, sizeof(rec), 104);
}

/* F-LOG-5: a record type is a region or not whatever its flags say.  A
 * COMMIT record flagged as a region (64 bytes, seq 0, its descriptor
 * checksummed as a region's) at the end of the file: the roll-forward
 * must stop there, not take it for a region and then read its commit
 * fields past the end of the file. */
static void test_recovery_region_flagged_commit_past_the_end(void **state)
{
    (void)state;
    layout_region r = { .rec = { .type = LAYOUT_REC_COMMIT,
                                 .flags = LAYOUT_REC_F_REGION,
                                 .length = layout_region_length(
                                     sizeof(layout_region)) } };
    layout_rec_seal(&r.rec);
    assert_true(layout_rec_verify(&r.rec));
    open_with_record_past_the_end(&r, sizeof(r), sizeof(layout_region));
}

/* Set a count of the roots in meta slot `slot` of the file at `path` and
 * seal the slot again, as a writer's bug would leave it. */
static void set_slot_count(const char *path, uint64_t slot, size_t field,
                           uint64_t value)
{
    layout_meta m;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &m, sizeof(m), (off_t)slot),
                     (ssize_t)sizeof(m));
    assert_true(layout_meta_valid(&m));
    memcpy((uint8_t *)&m.roots + field, &value, sizeof(value));
    layout_meta_seal(&m);
    assert_int_equal(pwrite(fd, &m, sizeof(m), (off_t)slot),
                     (ssize_t)sizeof(m));
    close(fd);
}

/* F-ASSOC-3: every live association has an ASSOC record below the
 * committed end, so assoc_count is bounded by the log.  A checksummed meta
 * slot whose assoc_count is far past that made the first association
 * request size the association index by it (tens of terabytes: ENOMEM,
 * or a sanitizer's abort; a smaller lie had gigabytes zeroed).  Roots
 * that fail their checks are recovered past, from the other slot and the
 * log (F-REC-8, F-REC-7) or by a rebuild (F-REC-6), closed cleanly or
 * not, with the count the log gives: none. */
static void test_recovery_assoc_count_past_the_log(void **state)
{
    (void)state;
    static const wire_limits lim = { .max_message = 1u << 20,
                                     .max_content = 1u << 16,
                                     .max_batch = 16, .vector_dim = 0 };
    for (int clean = 0; clean <= 1; clean++) {
        fx_dir d;
        fx_dir_make(&d);
        one_concept_file(&d, 0, clean);
        set_slot_count(d.path, LAYOUT_META_OFFSET_1,
                       offsetof(layout_roots, assoc_count), 1ull << 40);
        coord_store_stats st;
        coord_store *s = open_ok(d.path, &st);
        assert_int_equal(st.generation, 1);
        assert_int_equal(st.assoc_count, 0);
        /* the first association of the file */
        sf_req q = { 0 };
        uint8_t id[16];
        sf_make_id(1, id);
        uint8_t *p = sf_req_room(&q, sizeof(wire_association));
        q.len += wire_encode_association(p, WIRE_OP_LEARN_ASSOCIATION, id, id,
                                         1, 1.0f);
        q.ops++;
        coord_apply_result res;
        coord_error err = { 0 };
        int rc = coord_store_apply(s, sf_req_done(&q, &lim, 1, 2), &res, &err);
        if (rc)
            print_error("association: %d %s\n", rc, err.message);
        assert_int_equal(rc, 0);
        assert_int_equal(coord_store_commit(s, true, NULL, &err), 0);
        sf_req_free(&q);
        coord_store_stats_get(s, &st);
        assert_int_equal(st.assoc_count, 1);
        coord_store_close(s, true);
        fx_dir_remove(&d);
    }
}

/* F-HDR-7: durable_end only ever names the end of a generation, a record
 * boundary.  A value that is not a multiple of 8 was never stored by a
 * writer: the word is damaged and says nothing, like 0 (unknown), and the
 * log is checked from the data start (F-REC-5).  The tail check used to
 * start its scan at the word's value as it was, reading record headers at
 * misaligned offsets (undefined behaviour, reported by the sanitizers);
 * the scan failed there, so the open fell back to a rebuild of the whole
 * index (F-REC-6) to reach the same generation. */
static void test_recovery_misaligned_durable_end(void **state)
{
    (void)state;
    fx_dir d;
    fx_dir_make(&d);
    uint64_t end = one_concept_file(&d, 0, false);
    layout_header h;
    int fd = open(d.path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    uint64_t durable = h.durable_end + 4; /* inside the first record */
    assert_true(durable < end);
    assert_int_equal(pwrite(fd, &durable, sizeof(durable),
                            offsetof(layout_header, durable_end)),
                     (ssize_t)sizeof(durable));
    close(fd);

    open_at_generation_1(&d, end, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovery_truncated_copies),
        cmocka_unit_test(test_recovery_copy_cut_inside_a_first_word),
        cmocka_unit_test(test_recovery_meta_slots),
        cmocka_unit_test(test_recovery_flipped_bytes),
        cmocka_unit_test(test_recovery_rotten_length_is_not_a_short_copy),
        cmocka_unit_test(test_recovery_short_commit_record_past_the_end),
        cmocka_unit_test(test_recovery_region_flagged_commit_past_the_end),
        cmocka_unit_test(test_recovery_assoc_count_past_the_log),
        cmocka_unit_test(test_recovery_misaligned_durable_end),
    };
    return cmocka_run_group_tests(tests, build_base, drop_base);
}
