/*
 * coordinator/rebuild.c — reading the log forward to find how much of it
 * reached the disk, and rebuilding the in-place structures from it
 * (docs/format.md F-REC-5, F-REC-6).
 *
 * Under --sync interval and none nothing orders record bytes before the
 * in-place words and meta slot that name them, so after a power cut a meta
 * slot or a head can name records whose pages never reached the disk.  The
 * fast repair of recover.c trusts the records below committed_end; this
 * file is what checks them and what takes over when they fail:
 *
 *   - coord_verify_tail() (F-REC-5) scans the records between the durable
 *     end (header word F-HDR-7, stored after each successful sync) and the
 *     recovered committed_end and checks every checksum and every commit
 *     record's bookkeeping.  Under --sync commit that range is empty, so a
 *     kill -9 costs nothing; under interval it is at most an interval's
 *     writes.
 *   - coord_roll_forward() (F-REC-7) continues the scan past the picked
 *     meta with the same checks as from data_start: complete groups there
 *     (a synced generation whose meta slot was lost) extend the recovered
 *     generation; coord_seal_log_end() zeroes the words at the recovered
 *     end so what a recovery discarded is never rolled forward later.
 *   - coord_rebuild() (F-REC-6) scans from data_start, keeps the longest
 *     prefix that ends with a valid COMMIT record whose whole group verifies
 *     (every record checksummed, seqs contiguous, counts and roots
 *     consistent, the commit chain unbroken), and rewrites the meta slot,
 *     the node table, the node chunk words and the hash table from it.
 *     It refuses to discard bytes below the durable end unless the file
 *     simply ends there (a short copy): rot in durable data is reported,
 *     never silently cut away.
 *
 * A record that fails is never trusted for anything, including its length:
 * the scan stops at the first one.  Gaps of up to seven zero words are
 * padding (F-LOG-4); a longer run of zeros is where the log ends.
 *
 * Concurrency: committer thread only, before the store accepts writes.
 * The rebuild assumes no live reader depends on the words it rewrites: it
 * only runs when the log itself is damaged, which a process crash cannot
 * cause (the page cache survives it), so it follows a power loss, a restore
 * of a short copy, or damage that readers already see.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/sutra.h"

/* What a scan established. */
typedef struct scan {
    /* inputs */
    uint64_t limit;         /* scan below this offset                        */
    bool from_start;        /* scanning from data_start: counts, the commit
                               chain and the regions are known from zero    */
    /* running state */
    uint64_t last_seq;      /* seq of the last data record (0 at start)      */
    bool seq_known;
    uint64_t group_first, group_last; /* data seqs of the open group         */
    uint64_t versions, tombstones;    /* records since data_start            */
    uint64_t expect_gen, prev_commit;
    bool chain_known;       /* prev_commit is the last commit before here    */
    uint64_t hash_off, hash_slots;    /* newest hash table region seen       */
    uint64_t began;         /* where scan_log() started                      */
    uint64_t chunk_off[LAYOUT_NODE_CHUNKS];
    /* the last valid commit */
    uint64_t good_end;
    layout_roots good;      /* its roots (generation 0 before any commit)   */
    uint64_t good_chunk[LAYOUT_NODE_CHUNKS];
    /* where and why the scan stopped (bad_why NULL: clean end) */
    uint64_t bad_off;
    const char *bad_why;
    bool bad_truncated;     /* the record runs past the end of the file     */
    bool region_seen;       /* a hash table region since `began`             */
} scan;

static bool is_pow2(uint64_t x)
{
    return x && (x & (x - 1)) == 0;
}

static bool is_data(uint16_t type)
{
    return type == LAYOUT_REC_CONCEPT || type == LAYOUT_REC_CONCEPT_TOMBSTONE ||
           type == LAYOUT_REC_ASSOC || type == LAYOUT_REC_ASSOC_TOMBSTONE;
}

static bool stop(scan *sc, uint64_t off, const char *why, bool truncated)
{
    sc->bad_off = off;
    sc->bad_why = why;
    sc->bad_truncated = truncated;
    return false;
}

/* ---- one record ------------------------------------------------------- */

/* F-LOG-6 (region part) and §6.6: the descriptor says what the record is. */
static bool region_ok(scan *sc, uint64_t off, const layout_region *r,
                      uint64_t size)
{
    if (off % LAYOUT_REGION_ALIGN != 0 || size < LAYOUT_REGION_BODY)
        return stop(sc, off, "F-LOG-3: region misaligned or too small", false);
    if (r->rec.type == LAYOUT_REC_HASH_TABLE) {
        if (!is_pow2(r->arg0) || r->arg0 < LAYOUT_HASH_MIN_SLOTS ||
            r->arg0 > COORD_MAX_HASH_SLOTS ||
            size != LAYOUT_REGION_BODY + r->arg0 * sizeof(uint64_t))
            return stop(sc, off, "F-HASH-1: hash table descriptor invalid",
                        false);
        sc->hash_off = off;
        sc->hash_slots = r->arg0;
        sc->region_seen = true;
    } else if (r->rec.type == LAYOUT_REC_NODE_CHUNK) {
        uint64_t k = r->arg0;
        if (k > COORD_MAX_NODE_CHUNK ||
            r->arg1 != layout_node_chunk_entries((uint32_t)k) ||
            r->arg2 != layout_node_chunk_first((uint32_t)k) ||
            size != LAYOUT_REGION_BODY + r->arg1 * sizeof(layout_node))
            return stop(sc, off, "F-NODE-2: node chunk descriptor invalid",
                        false);
        sc->chunk_off[k] = off;
    }
    return true;
}

/* F-LOG-5, F-LOG-6 and the per-type rules that need no other record. */
static bool record_ok(scan *sc, const coord_store *s, uint64_t off,
                      uint64_t *size_out)
{
    const layout_rec *rec = (const layout_rec *)(s->map + off);
    if (sc->limit - off < sizeof(*rec))
        return stop(sc, off, "F-LOG-5: record header past the end", true);
    uint64_t size = layout_rec_size(rec);
    if (size < sizeof(*rec))
        return stop(sc, off, "F-LOG-5: record length below 24", false);
    if (size > sc->limit - off)
        return stop(sc, off, "F-LOG-5: record runs past the end", true);
    if (!layout_rec_verify(rec))
        return stop(sc, off, "F-LOG-6: record checksum mismatch", false);
    /* the size checks below go by type: a known type flagged as the other
     * kind (a 64-byte "region" COMMIT) would skip them */
    bool region_type = rec->type >= LAYOUT_REC_HASH_TABLE &&
                       rec->type <= LAYOUT_REC_ADJ_BLOCK;
    bool known = region_type || (rec->type >= LAYOUT_REC_CONCEPT &&
                                 rec->type <= LAYOUT_REC_COMMIT);
    if (known && region_type != ((rec->flags & LAYOUT_REC_F_REGION) != 0))
        return stop(sc, off, "F-LOG-5: record type with the wrong flags",
                    false);
    if (rec->flags & LAYOUT_REC_F_REGION) {
        if (rec->seq != 0)
            return stop(sc, off, "F-LOG-5: region with a seq", false);
        if (!region_ok(sc, off, (const layout_region *)rec, size))
            return false;
    } else if ((rec->type == LAYOUT_REC_CONCEPT ||
                rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE) &&
               size < sizeof(layout_concept)) {
        return stop(sc, off, "F-CON-1: concept record too short", false);
    } else if ((rec->type == LAYOUT_REC_ASSOC ||
                rec->type == LAYOUT_REC_ASSOC_TOMBSTONE) &&
               size != sizeof(layout_assoc)) {
        return stop(sc, off, "F-ASSOC-1: association record not 80 bytes",
                    false);
    } else if (rec->type == LAYOUT_REC_COMMIT &&
               size < sizeof(layout_commit)) {
        /* its fields would be read past the record, perhaps past the
         * end of the file */
        return stop(sc, off, "F-COM-1: commit record too short", false);
    }
    *size_out = size;
    return true;
}

/* §6.2: data seqs run on without a gap, across groups too. */
static bool data_ok(scan *sc, uint64_t off, const layout_rec *rec)
{
    if (sc->seq_known && rec->seq != sc->last_seq + 1)
        return stop(sc, off, "F-LOG-5: seq out of order (a record is missing)",
                    false);
    if (!sc->group_first)
        sc->group_first = rec->seq;
    sc->group_last = rec->seq;
    sc->last_seq = rec->seq;
    sc->seq_known = true;
    sc->versions += rec->type == LAYOUT_REC_CONCEPT;
    sc->tombstones += rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE;
    return true;
}

/* F-HASH-4 for a scan that starts past data_start (roll-forward from a
 * meta slot or a checkpoint, F-REC-7, F-REC-9): a table filled ahead may
 * have been appended before the scan's start, after the table the start's
 * roots name, and be named only past it.  Such a table is accepted when no
 * region has been seen since the start and its descriptor checks: a
 * HASH_TABLE region of the named size past the predecessor's table,
 * larger than it, wholly below the start. */
static bool table_before_scan(const scan *sc, const coord_store *s,
                              const layout_roots *r)
{
    return !sc->region_seen && r->hash_root > sc->good.hash_root &&
           r->hash_root < sc->began && r->hash_slots > sc->good.hash_slots &&
           r->hash_slots <= COORD_MAX_HASH_SLOTS &&
           coord_region_valid(s, r->hash_root, sc->began, LAYOUT_REC_HASH_TABLE,
                              r->hash_slots, 0, 0,
                              r->hash_slots * sizeof(uint64_t));
}

/* F-COM-1, F-COM-2: the commit record closes exactly the group before it. */
static bool commit_ok(scan *sc, const coord_store *s, uint64_t off,
                      const layout_commit *c, uint64_t size)
{
    const layout_roots *r = &c->roots;
    if (size != sizeof(*c) + (uint64_t)c->request_count * sizeof(layout_commit_entry) ||
        r->last_commit != off ||
        r->committed_end != layout_align_up(off + size, LAYOUT_RECORD_ALIGN) ||
        c->rec.seq != r->last_seq)
        return stop(sc, off, "F-COM-1: commit record inconsistent", false);
    if ((sc->expect_gen && r->generation != sc->expect_gen) ||
        (sc->from_start || sc->chain_known ? c->prev_commit != sc->prev_commit
                                           : c->prev_commit >= off))
        return stop(sc, off, "F-COM-2: commit chain broken", false);
    bool has_data = sc->group_first != 0;
    if (has_data ? (c->first_seq != sc->group_first ||
                    r->last_seq != sc->group_last)
                 : (c->first_seq != 0 ||
                    (sc->seq_known && r->last_seq != sc->last_seq)))
        return stop(sc, off, "F-COM-1: commit does not cover its group's seqs",
                    false);
    /* F-HASH-4: the table the last generation named, or the newest of the
     * log (doubled in this group, or filled since it was allocated). */
    bool table_ok = r->hash_root != 0 &&
                    ((r->hash_root == sc->hash_off &&
                      r->hash_slots == sc->hash_slots) ||
                     (r->hash_root == sc->good.hash_root &&
                      r->hash_slots == sc->good.hash_slots) ||
                     table_before_scan(sc, s, r));
    if (sc->from_start &&
        (r->version_count != sc->versions ||
         r->tombstone_count != sc->tombstones || !table_ok ||
         r->node_count > r->hash_slots / 2))
        return stop(sc, off, "F-META-5: commit roots disagree with the log",
                    false);
    for (uint32_t k = 0; sc->from_start && k < LAYOUT_NODE_CHUNKS &&
                         layout_node_chunk_first(k) < r->node_count; k++)
        if (!sc->chunk_off[k])
            return stop(sc, off, "F-NODE-2: a needed node chunk is missing",
                        false);
    (void)s;
    sc->good = *r;
    sc->good_end = r->committed_end;
    memcpy(sc->good_chunk, sc->chunk_off, sizeof(sc->chunk_off));
    sc->expect_gen = r->generation + 1;
    sc->prev_commit = off;
    sc->chain_known = true;
    sc->last_seq = r->last_seq;
    sc->seq_known = true;
    sc->group_first = sc->group_last = 0;
    return true;
}

/* ---- the scan --------------------------------------------------------- */

/* F-META-5: generation 0 is the file's first hash table and node chunk
 * with nothing logged after them yet; it has no commit record. */
static void note_generation_zero(scan *sc, uint64_t end)
{
    if (!sc->from_start || sc->expect_gen != 1 || sc->group_first ||
        !sc->hash_off || !sc->chunk_off[0] || sc->good_end)
        return;
    memset(&sc->good, 0, sizeof(sc->good));
    sc->good.committed_end = end;
    sc->good.hash_root = sc->hash_off;
    sc->good.hash_slots = sc->hash_slots;
    sc->good_end = end;
    memcpy(sc->good_chunk, sc->chunk_off, sizeof(sc->chunk_off));
}

/* Scan [from, sc->limit), stopping at the first record that fails.
 * `visit` (may be NULL) sees every record that passed, in order. */
typedef void (*record_visit)(void *ctx, uint64_t off, const layout_rec *rec);

static void scan_log(const coord_store *s, uint64_t from, scan *sc,
                     record_visit visit, void *ctx)
{
    uint64_t off = from, zeros = 0;
    sc->began = from;
    while (off + sizeof(uint64_t) <= sc->limit) {
        uint64_t word;
        memcpy(&word, s->map + off, sizeof(word));
        if (word == 0) { /* F-LOG-4: padding, or the end of the log */
            if (++zeros > LAYOUT_MAX_PAD_WORDS) {
                sc->bad_off = off - LAYOUT_MAX_PAD_WORDS * sizeof(word);
                return;
            }
            off += sizeof(word);
            continue;
        }
        zeros = 0;
        uint64_t size;
        if (!record_ok(sc, s, off, &size))
            return;
        const layout_rec *rec = (const layout_rec *)(s->map + off);
        if (is_data(rec->type) && !data_ok(sc, off, rec))
            return;
        if (rec->type == LAYOUT_REC_COMMIT &&
            !commit_ok(sc, s, off, (const layout_commit *)rec, size))
            return;
        if (visit)
            visit(ctx, off, rec);
        off = layout_align_up(off + size, LAYOUT_RECORD_ALIGN);
        note_generation_zero(sc, off);
    }
    sc->bad_off = off; /* the end of the range */
    /* a range that ends inside a word (a copy cut at any byte) ends in
     * the middle of what starts there, as a record that runs past it */
    sc->bad_truncated = off < sc->limit;
}

/* The generation-0 state of a file (F-META-5): its first two regions. */
static void scan_from_start(const coord_store *s, uint64_t limit, scan *sc,
                            record_visit visit, void *ctx)
{
    memset(sc, 0, sizeof(*sc));
    sc->limit = limit;
    sc->from_start = true;
    sc->seq_known = true;
    sc->expect_gen = 1;
    scan_log(s, LAYOUT_DATA_START, sc, visit, ctx);
}

/* ---- F-REC-7: roll forward past the picked meta ----------------------- */

static int store_if_different(coord_store *s, uint64_t *word, uint64_t value);

/* The state scan_from_start() would have reached at the end of the verified
 * generation `r`: the log past it is checked as strictly as from the start
 * (seqs, generation, prev_commit, counts, regions). */
static void scan_from_roots(const coord_store *s, const layout_roots *r,
                            uint64_t limit, scan *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->limit = limit;
    sc->from_start = true;
    sc->seq_known = true;
    sc->last_seq = r->last_seq;
    sc->versions = r->version_count;
    sc->tombstones = r->tombstone_count;
    sc->expect_gen = r->generation + 1;
    sc->prev_commit = r->last_commit;
    sc->hash_off = r->hash_root;
    sc->hash_slots = r->hash_slots;
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++)
        sc->chunk_off[k] = s->chunk[k] ? (uint64_t)((const uint8_t *)s->chunk[k] -
                                                    s->map) - LAYOUT_REGION_BODY
                                       : 0;
    sc->good = *r;
    sc->good_end = r->committed_end; /* also keeps generation 0 from being
                                        noted again */
    memcpy(sc->good_chunk, sc->chunk_off, sizeof(sc->chunk_off));
}

int coord_roll_forward(coord_store *s, uint64_t *generations, coord_error *err)
{
    uint64_t limit = s->file_size < s->map_reserve ? s->file_size : s->map_reserve;
    scan sc;
    scan_from_roots(s, &s->roots, limit, &sc);
    scan_log(s, s->roots.committed_end, &sc, NULL, NULL);
    uint64_t n = sc.good.generation - s->roots.generation;
    if (n == 0) {
        *generations = 0;
        return 0;
    }
    /* F-NODE-2: chunks allocated by the rolled-forward groups; their words
     * may not have reached the disk */
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++) {
        if (!sc.good_chunk[k] || s->chunk[k])
            continue;
        int rc = store_if_different(s, &s->hdr->node_chunk[k], sc.good_chunk[k]);
        if (rc)
            return coord_fail(err, rc, "F-REC-7: cannot store node chunk %u", k);
    }
    s->roots = sc.good;
    *generations = n;
    return 0;
}

int coord_seal_log_end(coord_store *s)
{
    /* F-REC-7: eight zero words end every later scan here (F-LOG-4 gaps are
     * at most seven), whatever record used to start in them.  Stored even
     * where they read zero already: after a failed sync the page holding
     * them may be clean in memory but not on disk. */
    uint64_t end = s->roots.committed_end;
    for (uint32_t i = 0; i <= LAYOUT_MAX_PAD_WORDS; i++) {
        uint64_t off = end + i * sizeof(uint64_t);
        if (off + sizeof(uint64_t) > s->file_size)
            break;
        int rc = s->io->store64(s->io, (uint64_t *)(void *)(s->map + off), 0);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- F-REC-5: the tail past the durable end --------------------------- */

/* Replaying the tail's index effects: after a power cut the in-place words
 * its records set may be older than the records (their pages were not
 * written back), and after a kill -9 they are already right; storing them
 * again from the verified records is correct in both cases and costs only
 * the tail. */
typedef struct replay {
    coord_store *s;
    uint64_t from;
    bool table_in_tail;  /* the hash table is recomputed whole (F-REC-5)  */
    uint64_t bad_off;
    coord_adj_tail adj;  /* records whose adjacency effects are replayed   */
} replay;

static int store_if_different(coord_store *s, uint64_t *word, uint64_t value)
{
    return *word == value ? 0 : s->io->store64(s->io, word, value);
}

/* A node born in the tail: its entry words (F-NODE-1), then its slot. */
static int replay_birth(replay *rp, layout_node *e, const layout_concept *c)
{
    coord_store *s = rp->s;
    uint64_t id[2];
    memcpy(id, c->id, 16);
    uint64_t *w = (uint64_t *)(void *)e->id;
    int rc = store_if_different(s, &w[0], id[0]);
    if (!rc)
        rc = store_if_different(s, &w[1], id[1]);
    if (!rc)
        rc = store_if_different(s, &e->first_seq, c->rec.seq);
    for (int i = 0; i < 2 && !rc; i++)
        rc = store_if_different(s, &e->reserved[i], 0);
    uint32_t found;
    if (!rc && !rp->table_in_tail && coord_hash_find(s, c->id, &found) != 0)
        rc = coord_hash_insert(s, s->hash, s->roots.hash_slots, c->id, c->node);
    return rc;
}

/* Whether node `e`'s head already names a later record of the node than
 * `off`, one that checks (F-LOG-6) inside the committed log.  After a
 * kill -9 the head names the node's newest record, and the tail may hold
 * several of its versions: storing each in turn would move the head back
 * to older ones, and readers of the current generation would get an
 * older version for that moment.  A head past the committed end, or not a
 * sound record of the node, is repaired as before; should the scan fail
 * before it reaches the record the head names, F-REC-8 or F-REC-6 repair
 * every head. */
static bool head_is_later(const coord_store *s, const layout_node *e,
                          uint64_t off, const layout_concept *c)
{
    uint64_t head = __atomic_load_n(&e->head, __ATOMIC_RELAXED);
    uint64_t end = s->roots.committed_end;
    if (head <= off || head >= end || head % LAYOUT_RECORD_ALIGN != 0 ||
        end - head < sizeof(layout_concept))
        return false;
    const layout_concept *h = (const layout_concept *)(s->map + head);
    return (h->rec.type == LAYOUT_REC_CONCEPT ||
            h->rec.type == LAYOUT_REC_CONCEPT_TOMBSTONE) &&
           h->rec.length >= sizeof(layout_concept) &&
           h->rec.length <= end - head && h->node == c->node &&
           memcmp(h->id, c->id, 16) == 0 && layout_rec_verify(&h->rec);
}

/* The same for a list's newest-block word (F-ADJ-4): left alone when it
 * already names a later, sound block of the same list. */
static bool block_is_later(const coord_store *s, const uint64_t *word,
                           uint64_t off, const layout_region *r)
{
    uint64_t newest = __atomic_load_n(word, __ATOMIC_RELAXED);
    uint64_t end = s->roots.committed_end;
    if (newest <= off || newest >= end || newest % LAYOUT_REGION_ALIGN != 0 ||
        end - newest < sizeof(layout_region))
        return false;
    const layout_region *b = (const layout_region *)(s->map + newest);
    return b->rec.type == LAYOUT_REC_ADJ_BLOCK &&
           (b->rec.flags & LAYOUT_REC_F_REGION) && b->arg0 == r->arg0 &&
           layout_rec_size(&b->rec) <= end - newest &&
           layout_rec_verify(&b->rec);
}

static int replay_concept(replay *rp, uint64_t off, const layout_concept *c)
{
    coord_store *s = rp->s;
    layout_node *e = c->node < s->roots.node_count
                         ? coord_node_entry(s, c->node) : NULL;
    if (!e)
        return SUTRA_ECORRUPT;
    int rc = 0;
    if (c->prev == 0)
        rc = replay_birth(rp, e, c);
    else if (memcmp(e->id, c->id, 16) != 0)
        return SUTRA_ECORRUPT; /* a durable entry that disagrees: damage */
    if (rc || head_is_later(s, e, off, c))
        return rc;
    return store_if_different(s, &e->head, off);
}

static void replay_record(void *ctx, uint64_t off, const layout_rec *rec)
{
    replay *rp = ctx;
    coord_store *s = rp->s;
    coord_adj_tail_note(&rp->adj, off, rec);
    if (rp->bad_off)
        return;
    int rc = 0;
    if (rec->type == LAYOUT_REC_CONCEPT ||
        rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE) {
        rc = replay_concept(rp, off, (const layout_concept *)rec);
    } else if (rec->type == LAYOUT_REC_ADJ_BLOCK) {
        const layout_region *r = (const layout_region *)rec;
        uint32_t n = (uint32_t)r->arg0, dir = (uint32_t)(r->arg0 >> 32);
        layout_node *e = n < s->roots.node_count ? coord_node_entry(s, n) : NULL;
        uint64_t *word = !e || dir > LAYOUT_ADJ_IN ? NULL
                         : dir == LAYOUT_ADJ_OUT   ? &e->out_adj
                                                   : &e->in_adj;
        if (word && !block_is_later(s, word, off, r))
            rc = store_if_different(s, word, off);
    }
    if (rc)
        rp->bad_off = off;
}

/* F-HASH-2: name node n in `want`, a table of `slots` words being computed
 * in memory. */
static int want_slot(uint64_t *want, uint64_t slots, const uint8_t id[16],
                     uint64_t n)
{
    uint64_t h = layout_id_hash(id);
    uint64_t at = layout_hash_free_slot(want, slots, h);
    if (at == slots)
        return SUTRA_ECORRUPT; /* roots past the F-HASH-4 load limit */
    want[at] = layout_hash_word(h, n);
    return 0;
}

/* F-HASH-2: a table allocated in the tail is recomputed whole. */
static int replay_table(coord_store *s)
{
    uint64_t slots = s->roots.hash_slots;
    uint64_t *want = calloc(slots, sizeof(uint64_t));
    if (!want)
        return ENOMEM;
    int rc = 0;
    for (uint64_t n = 0; n < s->roots.node_count && !rc; n++)
        rc = want_slot(want, slots, coord_node_entry(s, (uint32_t)n)->id, n);
    for (uint64_t i = 0; i < slots && !rc; i++)
        rc = store_if_different(s, &s->hash[i], want[i]);
    free(want);
    return rc;
}

static int verify_range(coord_store *s, uint64_t from, replay *rp,
                        coord_error *err);
static const layout_commit *durable_commit_at(const coord_store *s,
                                             uint64_t from);

/* F-REC-5: whether the table the roots name may have slots that never
 * reached the disk: it was allocated in the tail, or it was filled before
 * a commit of the tail named it (store_grow.c) — unless the commit that
 * ends at the durable end is known and already named it (a sync since
 * then made every slot of it durable). */
static bool table_named_in_tail(const coord_store *s, uint64_t from)
{
    if (s->roots.hash_root >= from)
        return true;
    const layout_commit *c = durable_commit_at(s, from);
    return !c || c->roots.hash_root != s->roots.hash_root;
}

int coord_verify_tail(coord_store *s, coord_error *err)
{
    uint64_t end = s->roots.committed_end;
    uint64_t from = __atomic_load_n(&s->hdr->durable_end, __ATOMIC_ACQUIRE);
    /* F-HDR-7: only a generation's end is ever stored there; any other
     * value is a damaged word, which says as little as 0 (unknown) */
    if (from % LAYOUT_RECORD_ALIGN != 0)
        from = 0;
    if (from > end)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-5: the meta's committed end %llu is below the "
                          "durable end %llu: a durable meta slot was lost",
                          (unsigned long long)end, (unsigned long long)from);
    if (from < LAYOUT_DATA_START || s->roots.generation == 0)
        from = LAYOUT_DATA_START;
    if (from == end)
        return 0;
    replay rp = { .s = s, .from = from,
                  .table_in_tail = table_named_in_tail(s, from),
                  .adj = { .from = from } };
    int rc = verify_range(s, from, &rp, err);
    /* F-REC-5: the adjacency words the range's records set, last: they
     * need the node table and the lists' heads as the records say */
    if (!rc)
        rc = coord_adj_replay(s, &rp.adj, err);
    coord_adj_tail_free(&rp.adj);
    return rc;
}

/* A tail scan that starts at the durable end continues the commit that
 * ends there, when durable_commit names it (F-HDR-8; after a power cut the
 * two words may disagree, and then nothing is assumed): the tail's first
 * commit must then link to it with the next generation, and its first
 * record carry the next seq (F-COM-2, F-LOG-5). */
static const layout_commit *durable_commit_at(const coord_store *s,
                                             uint64_t from)
{
    uint64_t off = __atomic_load_n(&s->hdr->durable_commit, __ATOMIC_ACQUIRE);
    if (off < LAYOUT_DATA_START || off >= from ||
        off % LAYOUT_RECORD_ALIGN != 0 || from - off < sizeof(layout_commit))
        return NULL;
    const layout_commit *c = (const layout_commit *)(s->map + off);
    if (c->rec.type != LAYOUT_REC_COMMIT || c->rec.length > from - off ||
        !layout_rec_verify(&c->rec) || c->roots.last_commit != off ||
        c->roots.committed_end != from)
        return NULL;
    return c;
}

static void continue_durable_commit(const coord_store *s, uint64_t from,
                                    scan *sc)
{
    const layout_commit *c = durable_commit_at(s, from);
    if (!c)
        return;
    uint64_t off = c->roots.last_commit;
    sc->expect_gen = c->roots.generation + 1;
    sc->prev_commit = off;
    sc->chain_known = true;
    sc->last_seq = c->roots.last_seq;
    sc->seq_known = true;
}

static int verify_range(coord_store *s, uint64_t from, replay *rp,
                        coord_error *err)
{
    uint64_t end = s->roots.committed_end;
    scan sc;
    if (from == LAYOUT_DATA_START) {
        scan_from_start(s, end, &sc, replay_record, rp);
    } else {
        memset(&sc, 0, sizeof(sc));
        sc.limit = end;
        continue_durable_commit(s, from, &sc);
        scan_log(s, from, &sc, replay_record, rp);
    }
    if (sc.bad_why)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-5: record at %llu below the committed end "
                          "%llu: %s", (unsigned long long)sc.bad_off,
                          (unsigned long long)end, sc.bad_why);
    if (sc.good_end != end || sc.good.last_commit != s->roots.last_commit)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-5: the log between %llu and the committed end "
                          "%llu does not end with its commit record",
                          (unsigned long long)from, (unsigned long long)end);
    if (rp->bad_off)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-5: record at %llu disagrees with the node "
                          "table", (unsigned long long)rp->bad_off);
    int rc = rp->table_in_tail ? replay_table(s) : 0;
    if (rc)
        return coord_fail(err, rc, "cannot rewrite the hash table");
    return 0;
}

/* ---- F-REC-6: rebuild --------------------------------------------------- */

typedef struct node_state {
    uint8_t id[16];
    uint64_t first_seq, head, out_adj, in_adj;
} node_state;

typedef struct rebuild {
    node_state *nodes;
    uint64_t node_count;     /* nodes seen so far                          */
    uint64_t node_cap;       /* = the recovered roots' node_count           */
    uint64_t live;           /* concept_count as the records say           */
    bool *is_live;
    uint64_t bad_off;        /* first record inconsistent with the others  */
    coord_adj_tail adj;      /* every record that shapes adjacency          */
} rebuild;

/* F-NODE-1: a node is numbered at the first record that names it (its
 * first version, or an association op of the request that then learns
 * it, F-ASSOC-2); every later record naming it carries the same id.
 * False, and the record noted as the first bad one, otherwise. */
static bool name_node(rebuild *rb, uint64_t off, uint64_t n,
                      const uint8_t id[16])
{
    bool ok = n <= rb->node_count && n < rb->node_cap;
    if (ok && n == rb->node_count) {
        memcpy(rb->nodes[n].id, id, 16);
        rb->node_count++;
    } else if (ok) {
        ok = memcmp(rb->nodes[n].id, id, 16) == 0;
    }
    if (!ok)
        rb->bad_off = rb->bad_off ? rb->bad_off : off;
    return ok;
}

static void visit_concept(rebuild *rb, uint64_t off, const layout_concept *c)
{
    uint64_t n = c->node;
    if (!name_node(rb, off, n, c->id))
        return;
    node_state *e = &rb->nodes[n];
    if (c->prev != e->head) { /* F-CON-2; 0 before the first version */
        rb->bad_off = rb->bad_off ? rb->bad_off : off;
        return;
    }
    if (e->head == 0)
        e->first_seq = c->rec.seq;
    e->head = off;
    bool live = c->rec.type == LAYOUT_REC_CONCEPT;
    rb->live += (uint64_t)live - (uint64_t)rb->is_live[n];
    rb->is_live[n] = live;
}

static void visit_record(void *ctx, uint64_t off, const layout_rec *rec)
{
    rebuild *rb = ctx;
    coord_adj_tail_note(&rb->adj, off, rec);
    if (rec->type == LAYOUT_REC_CONCEPT ||
        rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE) {
        visit_concept(rb, off, (const layout_concept *)rec);
    } else if (rec->type == LAYOUT_REC_ASSOC ||
               rec->type == LAYOUT_REC_ASSOC_TOMBSTONE) {
        const layout_assoc *a = (const layout_assoc *)rec;
        if (name_node(rb, off, a->source_node, a->source))
            (void)name_node(rb, off, a->target_node, a->target);
    } else if (rec->type == LAYOUT_REC_ADJ_BLOCK) {
        /* F-ADJ-1: the newest block of a list is the last one logged */
        const layout_region *r = (const layout_region *)rec;
        uint64_t n = (uint32_t)r->arg0, dir = r->arg0 >> 32;
        if (n < rb->node_count && dir <= LAYOUT_ADJ_IN)
            *(dir == LAYOUT_ADJ_OUT ? &rb->nodes[n].out_adj
                                    : &rb->nodes[n].in_adj) = off;
    }
}

/* The node chunk words and every entry, from the rebuilt table. */
static int write_nodes(coord_store *s, const scan *sc, const rebuild *rb)
{
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++) {
        uint64_t off = sc->good_chunk[k];
        int rc = store_if_different(s, &s->hdr->node_chunk[k], off);
        if (rc)
            return rc;
        s->chunk[k] = off ? (layout_node *)(s->map + off + LAYOUT_REGION_BODY)
                          : NULL;
        uint64_t first = layout_node_chunk_first(k);
        for (uint64_t i = 0; off && i < layout_node_chunk_entries(k); i++) {
            layout_node want = {0};
            if (first + i < rb->node_count) {
                const node_state *n = &rb->nodes[first + i];
                memcpy(want.id, n->id, 16);
                want.first_seq = n->first_seq;
                want.head = n->head;
                want.out_adj = n->out_adj;
                want.in_adj = n->in_adj;
            }
            uint64_t *w = (uint64_t *)(void *)&s->chunk[k][i];
            const uint64_t *v = (const uint64_t *)(const void *)&want;
            for (size_t j = 0; j < sizeof(want) / sizeof(uint64_t); j++) {
                rc = store_if_different(s, &w[j], v[j]);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

/* The hash table named by the roots, computed whole and stored where it
 * differs (F-HASH-2). */
static int write_hash(coord_store *s, const rebuild *rb)
{
    uint64_t slots = s->roots.hash_slots;
    uint64_t *want = calloc(slots, sizeof(uint64_t));
    if (!want)
        return ENOMEM;
    int rc = 0;
    for (uint64_t n = 0; n < rb->node_count && !rc; n++)
        rc = want_slot(want, slots, rb->nodes[n].id, n);
    s->hash = (uint64_t *)(s->map + s->roots.hash_root + LAYOUT_REGION_BODY);
    for (uint64_t i = 0; i < slots && !rc; i++)
        rc = store_if_different(s, &s->hash[i], want[i]);
    free(want);
    return rc;
}

/* F-META-2/4: the recovered generation's slot holds its roots; a slot
 * naming a newer generation is made invalid so it can never win again. */
int coord_write_meta(coord_store *s)
{
    return coord_write_meta_roots(s, &s->roots);
}

int coord_write_meta_roots(coord_store *s, const layout_roots *roots)
{
    layout_meta m = {0};
    m.roots = *roots;
    m.file_size = s->file_size;
    layout_meta_seal(&m);
    uint64_t gen = roots->generation;
    uint64_t *slot = (uint64_t *)(void *)(s->map + (gen % 2 ? LAYOUT_META_OFFSET_1
                                                            : LAYOUT_META_OFFSET_0));
    const uint64_t *src = (const uint64_t *)(const void *)&m;
    for (size_t i = 0; i < sizeof(m) / sizeof(uint64_t); i++) {
        int rc = store_if_different(s, &slot[i], src[i]);
        if (rc)
            return rc;
    }
    int rc = s->io->sync(s->io, s->fd);
    if (rc)
        return rc;
    layout_meta *other = (layout_meta *)(s->map + (gen % 2 ? LAYOUT_META_OFFSET_0
                                                           : LAYOUT_META_OFFSET_1));
    if (layout_meta_valid(other) && other->roots.generation > gen)
        return s->io->store64(s->io, &other->magic, 0);
    return 0;
}

static int rebuild_words(coord_store *s, const scan *sc, rebuild *rb,
                         coord_error *err)
{
    s->roots = sc->good;
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++)
        s->chunk[k] = NULL;
    int rc = write_nodes(s, sc, rb);
    if (!rc)
        rc = write_hash(s, rb);
    if (!rc) /* F-META-2: the slot first, then the generation it holds */
        rc = coord_write_meta(s);
    if (!rc)
        rc = s->io->store64(s->io, &s->hdr->generation, s->roots.generation);
    if (rc)
        return coord_fail(err, rc, "F-REC-6: cannot rewrite the index words: %s",
                          strerror(rc));
    /* F-REC-6: the lists are derived again from every record of the
     * prefix, then repaired as F-REC-4 */
    rc = coord_adj_replay(s, &rb->adj, err);
    if (rc)
        return rc;
    if (s->roots.assoc_count || s->roots.node_count) {
        rc = coord_adj_repair(s, err);
        if (rc)
            return rc;
    }
    rc = s->io->sync(s->io, s->fd);
    if (!rc)
        rc = coord_store_durable_words(s, &s->roots);
    if (rc)
        return coord_fail(err, rc, "F-REC-6: cannot sync the rebuilt file: %s",
                          strerror(rc));
    coord_count_sync(s);
    return 0;
}

/* Whether discarding everything from the scan's stop is allowed. */
static int may_discard(const coord_store *s, const scan *sc,
                       uint64_t meta_generation, coord_error *err)
{
    uint64_t durable = __atomic_load_n(&s->hdr->durable_end, __ATOMIC_ACQUIRE);
    /* a short copy that kept no commit at all is not worth opening empty */
    if (sc->good.generation == 0 && meta_generation > 0 &&
        durable > sc->good_end)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-6: no valid commit record remains: the record "
                          "at %llu fails (%s)", (unsigned long long)sc->bad_off,
                          sc->bad_why ? sc->bad_why : "end of log");
    /* A short copy ends below the durable end.  A record that runs past
     * the end of a file holding the whole durable log has a rotten
     * length: every durable record ends at or before the durable end. */
    bool short_copy = s->file_size < durable &&
                      (sc->bad_truncated || sc->bad_off >= s->file_size);
    if (sc->good_end < durable && !short_copy)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-6: the record at %llu, below the durable end "
                          "%llu, fails (%s); refusing to discard durable data",
                          (unsigned long long)sc->bad_off,
                          (unsigned long long)durable,
                          sc->bad_why ? sc->bad_why : "end of log");
    return 0;
}

int coord_rebuild(coord_store *s, uint64_t meta_generation, coord_error *err)
{
    uint64_t limit = s->file_size < s->map_reserve ? s->file_size : s->map_reserve;
    scan sc;
    scan_from_start(s, limit, &sc, NULL, NULL);
    if (sc.good_end == 0) {
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-6: the initial regions at %llu fail (%s)",
                          (unsigned long long)sc.bad_off,
                          sc.bad_why ? sc.bad_why : "end of log");
    }
    int rc = may_discard(s, &sc, meta_generation, err);
    if (rc)
        return rc;
    rebuild rb = { .node_cap = sc.good.node_count,
                   .adj = { .from = LAYOUT_DATA_START } };
    rb.nodes = calloc(rb.node_cap ? rb.node_cap : 1, sizeof(*rb.nodes));
    rb.is_live = calloc(rb.node_cap ? rb.node_cap : 1, sizeof(*rb.is_live));
    if (!rb.nodes || !rb.is_live) {
        free(rb.nodes);
        free(rb.is_live);
        return coord_fail(err, ENOMEM, "no memory to rebuild %llu nodes",
                          (unsigned long long)rb.node_cap);
    }
    scan again;
    scan_from_start(s, sc.good_end, &again, visit_record, &rb);
    for (uint64_t n = 0; n < rb.node_count && !rb.bad_off; n++)
        if (rb.nodes[n].head == 0) /* named, never learned (F-ASSOC-2) */
            rb.bad_off = sc.good_end;
    if (rb.bad_off || rb.node_count != sc.good.node_count ||
        rb.live != sc.good.concept_count)
        rc = coord_fail(err, SUTRA_ECORRUPT,
                        "F-REC-6: concept records disagree with the roots of "
                        "generation %llu (at %llu)",
                        (unsigned long long)sc.good.generation,
                        (unsigned long long)rb.bad_off);
    else
        rc = rebuild_words(s, &sc, &rb, err);
    free(rb.nodes);
    free(rb.is_live);
    coord_adj_tail_free(&rb.adj);
    return rc;
}
