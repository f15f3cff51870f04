/*
 * reader/verify.c — sutra_verify(): a full check of what a snapshot can
 * see, for `sutra-inspect verify`, fault tests and anyone who suspects a
 * damaged file.
 *
 * Lookups validate only what they touch and skip checksums (reader/lookup.c);
 * this is the other end: every byte from the data start to the snapshot's
 * committed end is parsed in log order, every checksum is computed, and the
 * index structures are cross-checked against what the log says they must
 * hold.  This file does the driver, the meta slots and node-table chunks,
 * and the log scan (records and the commit chain); verify_index.c does the
 * hash table, the node table and adjacency.
 *
 * The file is hostile input: every offset is bounds-checked against the
 * committed end (which the snapshot proved readable) before it is read, a
 * record whose length cannot be trusted ends the scan, and every walk along
 * offsets either moves strictly backwards or spends a budget bounded by the
 * file size, so the time is O(committed bytes).  Problems are reported with
 * the offset where they were seen and the docs/format.md rule they break.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/verify_internal.h"

#define VERIFY_PROGRESS_BYTES (1ull << 20)
#define VERIFY_META_RETRIES 64

/* ---- problems and progress ------------------------------------------- */

bool verify_problem(verify_ctx *v, uint64_t off, const char *rule,
                    const char *fmt, ...)
{
    char message[sizeof(v->rep.message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (v->rep.problems++ == 0) {
        v->rep.offset = off;
        snprintf(v->rep.rule, sizeof(v->rep.rule), "%s", rule);
        memcpy(v->rep.message, message, sizeof(message));
    }
    if (v->opts && v->opts->problem)
        v->opts->problem(v->opts->ctx, off, rule, message);
    if (!(v->opts && (v->opts->flags & SUTRA_VERIFY_ALL)))
        v->stopped = true;
    return !v->stopped;
}

void verify_progress(const verify_ctx *v, enum sutra_verify_phase phase,
                     uint64_t done, uint64_t total)
{
    if (v->opts && v->opts->progress)
        v->opts->progress(v->opts->ctx, phase, done, total);
}

/* Keep checking the current item only while this holds. */
#define VERIFY_REQUIRE(v, cond, off, rule, ...)                               \
    do {                                                                      \
        if (!(cond) && !verify_problem((v), (off), (rule), __VA_ARGS__))      \
            return false;                                                     \
    } while (0)

/* ---- phase 1: meta slots and node-table chunks ------------------------ */

/* Copy both slots under the generation seqlock (F-SNAP-2) so a live writer
 * cannot hand us a torn pair. */
static void verify_copy_meta(verify_ctx *v)
{
    const layout_header *hdr = reader_header(v->db);
    for (int attempt = 0; attempt < VERIFY_META_RETRIES; attempt++) {
        uint64_t g = reader_load_word(&hdr->generation);
        for (int slot = 0; slot < 2; slot++) {
            const uint64_t *src = (const uint64_t *)(
                v->map + (slot ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0));
            uint64_t *dst = (uint64_t *)&v->meta[slot];
            for (size_t i = 0; i < sizeof(layout_meta) / 8; i++)
                dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&hdr->generation, __ATOMIC_RELAXED) == g) {
            v->published = g;
            v->meta_stable = true;
            return;
        }
    }
}

/* The roots a snapshot exposes must equal those of the slot or commit
 * record it was taken from. */
static bool verify_roots_match(const verify_ctx *v, const layout_roots *r)
{
    return r->generation == v->generation && r->last_seq == v->last_seq &&
           r->committed_end == v->end && r->commit_ns == v->commit_ns &&
           r->node_count == v->node_count && r->hash_root == v->hash_root &&
           r->hash_slots == v->hash_slots &&
           r->concept_count == v->concept_count &&
           r->version_count == v->version_count &&
           r->tombstone_count == v->tombstone_count &&
           r->assoc_count == v->assoc_count;
}

static bool verify_meta_slot(verify_ctx *v, int slot)
{
    uint64_t base = slot ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0;
    const layout_meta *m = &v->meta[slot];
    /* F-META-1: the page past the slot, and its reserved words, are zero. */
    uint64_t tail = base + LAYOUT_META_SIZE;
    while (tail < base + LAYOUT_PAGE_SIZE && v->map[tail] == 0)
        tail++;
    VERIFY_REQUIRE(v, tail == base + LAYOUT_PAGE_SIZE, tail, "F-META-1",
                   "meta slot %d: bytes past the slot are not zero", slot);
    bool current = (uint64_t)slot == v->published % 2;
    if (!layout_meta_valid(m)) {
        /* The other slot may be torn by a crash (F-META-4 tolerates it). */
        VERIFY_REQUIRE(v, !current, base, "F-META-3",
                       "meta slot %d of published generation %llu is not valid",
                       slot, (unsigned long long)v->published);
        return true;
    }
    VERIFY_REQUIRE(v, verify_zero_bytes((const uint8_t *)m->reserved,
                                  sizeof(m->reserved)),
                   base + offsetof(layout_meta, reserved), "F-META-1",
                   "meta slot %d: reserved words are not zero", slot);
    VERIFY_REQUIRE(v, m->roots.generation % 2 == (uint64_t)slot, base,
                   "F-META-4", "meta slot %d holds generation %llu of the "
                   "other parity", slot,
                   (unsigned long long)m->roots.generation);
    if (current) {
        VERIFY_REQUIRE(v, m->roots.generation == v->published, base,
                       "F-META-3", "meta slot %d holds generation %llu, the "
                       "published one is %llu", slot,
                       (unsigned long long)m->roots.generation,
                       (unsigned long long)v->published);
        if (v->published == v->generation)
            VERIFY_REQUIRE(v, verify_roots_match(v, &m->roots), base,
                           "F-META-3", "meta slot %d differs from the "
                           "snapshot taken from it", slot);
    } else if (v->at_rest) {
        /* A live writer fills slot g+1 before publishing it (F-META-2). */
        VERIFY_REQUIRE(v, m->roots.generation < v->published, base,
                       "F-META-2", "meta slot %d holds generation %llu, newer "
                       "than the published %llu", slot,
                       (unsigned long long)m->roots.generation,
                       (unsigned long long)v->published);
    }
    VERIFY_REQUIRE(v, m->file_size >= m->roots.committed_end, base,
                   "F-META-3", "meta slot %d: file size %llu below its "
                   "committed end %llu", slot,
                   (unsigned long long)m->file_size,
                   (unsigned long long)m->roots.committed_end);
    return true;
}

/* F-NODE-2: the chunks that hold the snapshot's nodes, checked once so the
 * later phases can index node entries directly. */
static bool verify_chunks(verify_ctx *v)
{
    const layout_header *hdr = reader_header(v->db);
    v->nodes_ok = 0;
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++) {
        uint64_t first = layout_node_chunk_first(k);
        uint64_t word_off = offsetof(layout_header, node_chunk) + 8ull * k;
        uint64_t off = reader_load_word(&hdr->node_chunk[k]);
        if (first >= v->node_count) {
            /* Chunk 0 comes with the file (F-META-5); others only once
             * a committed node needs them. */
            VERIFY_REQUIRE(v, !v->at_rest || off == 0 || k == 0, word_off,
                           "F-NODE-2",
                           "node chunk %u allocated beyond node count %llu in "
                           "a file at rest", k,
                           (unsigned long long)v->node_count);
            continue;
        }
        uint64_t entries = layout_node_chunk_entries(k);
        uint64_t size = LAYOUT_REGION_BODY + entries * sizeof(layout_node);
        bool inside = off % LAYOUT_REGION_ALIGN == 0 &&
                      off >= LAYOUT_DATA_START && off < v->end &&
                      size <= v->end - off;
        const layout_region *r =
            (const layout_region *)(v->map + (inside ? off : 0));
        bool ok = inside && r->rec.type == LAYOUT_REC_NODE_CHUNK &&
                  r->rec.flags == LAYOUT_REC_F_REGION &&
                  layout_rec_size(&r->rec) == size && r->arg0 == k &&
                  r->arg1 == entries && r->arg2 == first &&
                  layout_rec_verify(&r->rec);
        if (!ok) {
            verify_problem(v, word_off, "F-NODE-2",
                           "node chunk %u word names %llu, not a valid chunk "
                           "below the committed end", k,
                           (unsigned long long)off);
            return !verify_stopped(v); /* later nodes cannot be checked */
        }
        v->chunk[k] = (const layout_node *)(v->map + off + LAYOUT_REGION_BODY);
        v->nodes_ok = first + entries < v->node_count ? first + entries
                                                      : v->node_count;
    }
    return true;
}

static bool verify_meta(verify_ctx *v)
{
    verify_progress(v, SUTRA_VERIFY_META, 0, 2);
    verify_copy_meta(v);
    const layout_header *hdr = reader_header(v->db);
    v->at_rest = v->meta_stable && v->published == v->generation &&
                 __atomic_load_n(&hdr->clean_shutdown, __ATOMIC_RELAXED) == 1;
    if (v->meta_stable) {
        for (int slot = 0; slot < 2; slot++)
            if (!verify_meta_slot(v, slot))
                return false;
    }
    verify_progress(v, SUTRA_VERIFY_META, 2, 2);
    return verify_chunks(v);
}

/* ---- phase 2: the log ------------------------------------------------- */

typedef struct verify_scan {
    uint64_t seq;              /* last data seq seen                       */
    uint64_t group_first_seq;  /* first data seq since the last commit     */
    uint64_t group_records;    /* data records since the last commit       */
    uint64_t prev_commit;      /* offset of the last commit record         */
    uint64_t prev_generation;
    uint64_t prev_hash_root;   /* hash_root of the last commit             */
    uint64_t last_hash_region; /* newest HASH_TABLE region seen            */
    uint64_t live;             /* nodes whose newest record is a version   */
} verify_scan;

static bool verify_data_seq(verify_ctx *v, verify_scan *s, uint64_t off,
                            uint64_t seq)
{
    /* §6.2: seqs are given in log order, one per data record, so each
     * generation covers first_seq..last_seq exactly (F-COM-1). */
    VERIFY_REQUIRE(v, seq == s->seq + 1, off, "F-COM-1",
                   "record seq %llu, expected %llu", (unsigned long long)seq,
                   (unsigned long long)(s->seq + 1));
    s->seq = seq;
    if (s->group_records++ == 0)
        s->group_first_seq = seq;
    return true;
}

/* F-CON-1, F-CON-3, F-CON-4: where a version's content and embedding live. */
static bool verify_payload(verify_ctx *v, uint64_t off, const layout_concept *c)
{
    uint32_t flags = c->concept_flags;
    bool shared_content = flags & LAYOUT_CONCEPT_F_SHARED_CONTENT;
    bool shared_emb = flags & LAYOUT_CONCEPT_F_SHARED_EMBEDDING;
    VERIFY_REQUIRE(v, (flags & ~7u) == 0 &&
                          !!(flags & LAYOUT_CONCEPT_F_EMBEDDING) == (c->dim != 0) &&
                          (!shared_content || c->content_len) &&
                          (!shared_emb || c->dim),
                   off, "F-CON-3", "concept flags %#x do not match the record",
                   flags);
    VERIFY_REQUIRE(v, verify_finite(c->strength) && verify_finite(c->confidence) &&
                          c->confidence >= 0.0f && c->confidence <= 1.0f,
                   off, "F-CON-3", "strength or confidence out of range");
    VERIFY_REQUIRE(v, c->dim == 0 || c->dim == v->db->vector_dim, off,
                   "F-CON-3", "dim %u, the file's is %u", c->dim,
                   v->db->vector_dim);
    uint64_t fixed_end = off + sizeof(layout_concept);
    uint32_t inline_len = shared_content ? 0 : c->content_len;
    uint32_t inline_dim = shared_emb ? 0 : c->dim;
    if (c->content_len == 0)
        VERIFY_REQUIRE(v, c->content_off == 0, off, "F-CON-3",
                       "empty content with an offset");
    else if (shared_content)
        VERIFY_REQUIRE(v, c->content_off >= LAYOUT_DATA_START &&
                              c->content_off <= off &&
                              c->content_len <= off - c->content_off,
                       off, "F-CON-4", "shared content is not in an earlier "
                       "record");
    else
        VERIFY_REQUIRE(v, c->content_off == fixed_end, off, "F-CON-1",
                       "inline content not at +104");
    uint64_t size = layout_concept_size(off, inline_len, inline_dim);
    VERIFY_REQUIRE(v, c->rec.length == size, off, "F-CON-1",
                   "length %u, the payload needs %llu", c->rec.length,
                   (unsigned long long)size);
    if (c->rec.length != size)
        return true; /* offsets below would be measured against a bad size */
    uint64_t emb_bytes = (uint64_t)c->dim * sizeof(float);
    if (c->dim == 0) {
        VERIFY_REQUIRE(v, c->embedding_off == 0, off, "F-CON-3",
                       "no embedding but an embedding offset");
    } else if (shared_emb) {
        VERIFY_REQUIRE(v, c->embedding_off % LAYOUT_REGION_ALIGN == 0 &&
                              c->embedding_off >= LAYOUT_DATA_START &&
                              c->embedding_off <= off &&
                              emb_bytes <= off - c->embedding_off,
                       off, "F-CON-4", "shared embedding is not in an earlier "
                       "record");
    } else {
        uint64_t want = layout_align_up(fixed_end + inline_len, LAYOUT_REGION_ALIGN);
        VERIFY_REQUIRE(v, c->embedding_off == want, off, "F-CON-1",
                       "inline embedding at %llu, expected %llu",
                       (unsigned long long)c->embedding_off,
                       (unsigned long long)want);
        /* F-LOG-4: the gap before the embedding is zero. */
        VERIFY_REQUIRE(v, verify_zero_bytes(v->map + fixed_end + inline_len,
                                      want - fixed_end - inline_len),
                       fixed_end + inline_len, "F-LOG-4",
                       "padding before the embedding is not zero");
    }
    return true;
}

static bool verify_tombstone_fields(verify_ctx *v, uint64_t off,
                                    const layout_concept *c)
{
    VERIFY_REQUIRE(v, c->rec.length == sizeof(layout_concept) &&
                          c->content_len == 0 && c->dim == 0 &&
                          c->content_off == 0 && c->embedding_off == 0 &&
                          c->concept_flags == 0 && c->strength == 0.0f &&
                          c->confidence == 0.0f,
                   off, "F-CON-3", "tombstone with a payload or nonzero fields");
    return true;
}

/* F-NODE-1: node numbers are dense and given in log order, at the first
 * record that names the node: its first version, or an association op
 * that names an id its request learns only later (F-ASSOC-2).  Every
 * record naming a node carries its entry's id. */
static bool verify_name_node(verify_ctx *v, uint64_t off, uint64_t node,
                             const uint8_t id[16])
{
    if (node > v->scan_nodes || node >= v->node_count)
        return verify_problem(v, off, "F-NODE-1",
                              "record names node %llu; %llu seen so far, "
                              "%llu in the snapshot",
                              (unsigned long long)node,
                              (unsigned long long)v->scan_nodes,
                              (unsigned long long)v->node_count);
    const layout_node *entry = verify_node(v, node);
    VERIFY_REQUIRE(v, !entry || memcmp(entry->id, id, 16) == 0, off,
                   "F-NODE-1", "record id differs from node %llu's entry",
                   (unsigned long long)node);
    if (node == v->scan_nodes)
        v->scan_nodes++;
    return true;
}

/* A CONCEPT or CONCEPT_TOMBSTONE record (§6.3). */
static bool verify_concept(verify_ctx *v, verify_scan *s, uint64_t off,
                           const layout_rec *rec)
{
    if (rec->length < sizeof(layout_concept))
        return verify_problem(v, off, "F-CON-1", "concept record of %u bytes",
                              rec->length);
    const layout_concept *c = (const layout_concept *)rec;
    if (!verify_data_seq(v, s, off, rec->seq))
        return false;
    uint64_t node = c->node;
    if (node >= v->nodes_ok)
        return verify_problem(v, off, "F-NODE-1",
                              "record names node %llu; %llu in the snapshot",
                              (unsigned long long)node,
                              (unsigned long long)v->node_count);
    if (!verify_name_node(v, off, node, c->id))
        return false;
    const layout_node *entry = verify_node(v, node);
    if (v->last_off[node] == 0) /* the node's first version */
        VERIFY_REQUIRE(v, entry->first_seq == rec->seq, off, "F-NODE-1",
                       "node %llu first_seq %llu, its first version has %llu",
                       (unsigned long long)node,
                       (unsigned long long)entry->first_seq,
                       (unsigned long long)rec->seq);
    /* F-CON-2: each record links to the node's previous one, exactly. */
    VERIFY_REQUIRE(v, c->prev == v->last_off[node], off, "F-CON-2",
                   "prev %llu, the node's previous record is at %llu",
                   (unsigned long long)c->prev,
                   (unsigned long long)v->last_off[node]);
    v->last_off[node] = off;
    bool was_live = v->node_state[node] & VERIFY_NODE_LIVE;
    if (rec->type == LAYOUT_REC_CONCEPT) {
        v->rep.versions++;
        v->node_state[node] |= VERIFY_NODE_LIVE;
        s->live += !was_live;
        return verify_payload(v, off, c);
    }
    v->rep.tombstones++;
    v->node_state[node] &= (uint8_t)~VERIFY_NODE_LIVE;
    s->live -= was_live;
    return verify_tombstone_fields(v, off, c);
}

/* An ASSOC or ASSOC_TOMBSTONE record (format.h, F-ASSOC-1). */
static bool verify_assoc(verify_ctx *v, verify_scan *s, uint64_t off,
                         const layout_rec *rec)
{
    if (rec->length != sizeof(layout_assoc))
        return verify_problem(v, off, "F-ASSOC-1",
                              "association record of %u bytes", rec->length);
    const layout_assoc *a = (const layout_assoc *)rec;
    if (!verify_data_seq(v, s, off, rec->seq))
        return false;
    v->rep.assoc_records++;
    if (!verify_name_node(v, off, a->source_node, a->source) ||
        !verify_name_node(v, off, a->target_node, a->target))
        return false;
    bool tomb = rec->type == LAYOUT_REC_ASSOC_TOMBSTONE;
    VERIFY_REQUIRE(v, verify_finite(a->confidence) && a->confidence >= 0.0f &&
                          a->confidence <= 1.0f &&
                          (!tomb || a->confidence == 0.0f),
                   off, "F-ASSOC-1", "confidence out of range");
    return true;
}

/* A region's descriptor and its size rule (§6.6, F-LOG-6). */
static bool verify_region(verify_ctx *v, verify_scan *s, uint64_t off,
                          const layout_rec *rec)
{
    const layout_region *r = (const layout_region *)rec;
    uint64_t size = layout_rec_size(rec);
    v->rep.regions++;
    VERIFY_REQUIRE(v, rec->seq == 0 && r->reserved[1] == 0 &&
                          (rec->type == LAYOUT_REC_ADJ_BLOCK || r->reserved[0] == 0),
                   off, "F-LOG-5", "region with a seq or reserved words set");
    if (rec->type == LAYOUT_REC_HASH_TABLE) {
        uint64_t slots = r->arg0;
        /* size >= 64 (verify_rec_header); the slots bound first, so that
         * slots * 8 cannot wrap to a size that matches */
        VERIFY_REQUIRE(v, slots >= LAYOUT_HASH_MIN_SLOTS &&
                              (slots & (slots - 1)) == 0 && r->arg1 == 0 &&
                              r->arg2 == 0 &&
                              slots <= (size - LAYOUT_REGION_BODY) / 8 &&
                              size == LAYOUT_REGION_BODY + slots * 8,
                       off, "F-LOG-6", "hash table of %llu slots in %llu bytes",
                       (unsigned long long)slots, (unsigned long long)size);
        s->last_hash_region = off;
        /* F-META-5: generation 0 names the log's first table */
        if (!s->prev_hash_root)
            s->prev_hash_root = off;
        return true;
    }
    if (rec->type == LAYOUT_REC_NODE_CHUNK) {
        uint64_t k = r->arg0;
        bool shape = k < LAYOUT_NODE_CHUNKS &&
                     r->arg1 == layout_node_chunk_entries((uint32_t)k) &&
                     r->arg2 == layout_node_chunk_first((uint32_t)k) &&
                     size == LAYOUT_REGION_BODY + r->arg1 * sizeof(layout_node);
        VERIFY_REQUIRE(v, shape, off, "F-LOG-6",
                       "node chunk descriptor does not match its size");
        if (!shape)
            return true;
        uint64_t named = reader_load_word(&reader_header(v->db)->node_chunk[k]);
        VERIFY_REQUIRE(v, named == off, off, "F-NODE-2",
                       "committed node chunk %llu is not the one the header "
                       "names (%llu)", (unsigned long long)k,
                       (unsigned long long)named);
        return true;
    }
    /* ADJ_BLOCK (format.h): 256 << k bytes, capacity to match, an owner. */
    uint64_t owner = r->arg0 & 0xFFFFFFFFu, dir = r->arg0 >> 32;
    VERIFY_REQUIRE(v, size >= LAYOUT_ADJ_MIN_BLOCK && (size & (size - 1)) == 0 &&
                          r->arg1 == layout_adj_capacity(size),
                   off, "F-LOG-6", "adjacency block of %llu bytes claims "
                   "capacity %llu", (unsigned long long)size,
                   (unsigned long long)r->arg1);
    VERIFY_REQUIRE(v, dir <= LAYOUT_ADJ_IN && owner < v->node_count &&
                          r->arg2 < off && r->arg2 % LAYOUT_REGION_ALIGN == 0 &&
                          (r->arg2 == 0 || r->arg2 >= LAYOUT_DATA_START),
                   off, "F-ADJ-1", "adjacency block owner, direction or "
                   "previous block out of range");
    return true;
}

/* F-COM-1, F-COM-2, F-COM-3: a commit record closes the group before it. */
static bool verify_commit_entries(verify_ctx *v, verify_scan *s, uint64_t off,
                                  const layout_commit *c)
{
    const layout_commit_entry *e = (const layout_commit_entry *)(c + 1);
    uint64_t next = s->group_records ? s->group_first_seq : 0, ops = 0;
    for (uint32_t i = 0; i < c->request_count; i++) {
        uint64_t eoff = off + sizeof(*c) + 32ull * i;
        VERIFY_REQUIRE(v, e[i].status == 0, eoff, "F-COM-3",
                       "entry %u has status %d", i, e[i].status);
        if (e[i].op_count == 0) {
            VERIFY_REQUIRE(v, e[i].first_seq == 0, eoff, "F-COM-3",
                           "entry %u without ops has a first seq", i);
            continue;
        }
        VERIFY_REQUIRE(v, e[i].first_seq == next, eoff, "F-COM-3",
                       "entry %u first seq %llu, expected %llu", i,
                       (unsigned long long)e[i].first_seq,
                       (unsigned long long)next);
        next += e[i].op_count;
        ops += e[i].op_count;
    }
    VERIFY_REQUIRE(v, ops == s->group_records, off, "F-COM-3",
                   "entries count %llu ops, the group has %llu records",
                   (unsigned long long)ops,
                   (unsigned long long)s->group_records);
    return true;
}

static bool verify_commit_hash(verify_ctx *v, verify_scan *s, uint64_t off,
                               const layout_roots *r)
{
    /* F-HASH-1, F-HASH-4: the table is the previous one or the newest
     * appended since (doubled in this group or filled ahead), big enough
     * for the nodes. */
    bool named = r->hash_root != 0 && (r->hash_root == s->prev_hash_root ||
                                       r->hash_root == s->last_hash_region);
    VERIFY_REQUIRE(v, named, off, "F-HASH-1",
                   "hash_root %llu is not a hash table of the log",
                   (unsigned long long)r->hash_root);
    if (!named)
        return true;
    const layout_region *t = (const layout_region *)(v->map + r->hash_root);
    VERIFY_REQUIRE(v, t->arg0 == r->hash_slots, off, "F-HASH-1",
                   "hash_slots %llu, the table has %llu",
                   (unsigned long long)r->hash_slots,
                   (unsigned long long)t->arg0);
    VERIFY_REQUIRE(v, r->node_count * LAYOUT_HASH_MAX_LOAD_DEN <=
                          r->hash_slots * LAYOUT_HASH_MAX_LOAD_NUM,
                   off, "F-HASH-4", "%llu nodes in %llu slots",
                   (unsigned long long)r->node_count,
                   (unsigned long long)r->hash_slots);
    s->prev_hash_root = r->hash_root;
    return true;
}

static bool verify_commit_roots(verify_ctx *v, verify_scan *s, uint64_t off,
                                const layout_commit *c)
{
    const layout_roots *r = &c->roots;
    uint64_t want_gen = s->prev_generation + 1;
    VERIFY_REQUIRE(v, r->generation == want_gen && c->prev_commit == s->prev_commit,
                   off, "F-COM-2", "generation %llu linking to %llu; expected "
                   "generation %llu linking to %llu",
                   (unsigned long long)r->generation,
                   (unsigned long long)c->prev_commit,
                   (unsigned long long)want_gen,
                   (unsigned long long)s->prev_commit);
    uint64_t end = layout_align_up(off + c->rec.length, LAYOUT_RECORD_ALIGN);
    VERIFY_REQUIRE(v, r->last_commit == off && r->committed_end == end &&
                          c->rec.seq == r->last_seq,
                   off, "F-COM-1", "commit roots do not describe the record "
                   "itself");
    VERIFY_REQUIRE(v, r->last_seq == s->seq &&
                          c->first_seq == (s->group_records ? s->group_first_seq : 0),
                   off, "F-COM-1", "commit covers seqs %llu..%llu, the group "
                   "holds ..%llu", (unsigned long long)c->first_seq,
                   (unsigned long long)r->last_seq,
                   (unsigned long long)s->seq);
    VERIFY_REQUIRE(v, r->node_count == v->scan_nodes &&
                          r->version_count == v->rep.versions &&
                          r->tombstone_count == v->rep.tombstones &&
                          r->concept_count == s->live,
                   off, "F-COM-1", "commit counts (nodes %llu, versions %llu, "
                   "tombstones %llu, live %llu) differ from the log's (%llu, "
                   "%llu, %llu, %llu)", (unsigned long long)r->node_count,
                   (unsigned long long)r->version_count,
                   (unsigned long long)r->tombstone_count,
                   (unsigned long long)r->concept_count,
                   (unsigned long long)v->scan_nodes,
                   (unsigned long long)v->rep.versions,
                   (unsigned long long)v->rep.tombstones,
                   (unsigned long long)s->live);
    return verify_commit_hash(v, s, off, r);
}

/* F-META-5: the slots and the snapshot hold the roots of their commit. */
static bool verify_commit_copies(verify_ctx *v, const layout_commit *c,
                                 uint64_t off)
{
    if (c->roots.generation == v->generation)
        VERIFY_REQUIRE(v, verify_roots_match(v, &c->roots), off, "F-META-5",
                       "commit record of generation %llu differs from the "
                       "snapshot's roots", (unsigned long long)v->generation);
    for (int slot = 0; v->meta_stable && slot < 2; slot++) {
        const layout_meta *m = &v->meta[slot];
        if (!layout_meta_valid(m) || m->roots.generation != c->roots.generation)
            continue;
        VERIFY_REQUIRE(v, memcmp(&m->roots, &c->roots, sizeof(c->roots)) == 0,
                       slot ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0,
                       "F-META-5", "meta slot %d differs from the commit "
                       "record of generation %llu at %llu", slot,
                       (unsigned long long)c->roots.generation,
                       (unsigned long long)off);
    }
    return true;
}

static bool verify_commit(verify_ctx *v, verify_scan *s, uint64_t off,
                          const layout_rec *rec)
{
    const layout_commit *c = (const layout_commit *)rec;
    if (rec->length < sizeof(layout_commit) ||
        rec->length != sizeof(layout_commit) + 32ull * c->request_count)
        return verify_problem(v, off, "F-COM-1",
                              "commit record of %u bytes for %u entries",
                              rec->length,
                              rec->length >= sizeof(layout_commit)
                                  ? c->request_count : 0);
    v->rep.commits++;
    if (!verify_commit_roots(v, s, off, c) ||
        !verify_commit_entries(v, s, off, c) ||
        !verify_commit_copies(v, c, off))
        return false;
    VERIFY_REQUIRE(v, c->reserved == 0, off, "F-COM-1",
                   "reserved word is not zero");
    s->prev_commit = off;
    s->prev_generation = c->roots.generation;
    s->group_records = 0;
    s->group_first_seq = 0;
    v->last_commit = off;
    return true;
}

/* The header checks every record needs before its body can be read:
 * returns the record's size, or 0 when the scan cannot go on. */
static uint64_t verify_rec_header(verify_ctx *v, uint64_t off,
                                  const layout_rec *rec)
{
    bool region = rec->flags & LAYOUT_REC_F_REGION;
    uint64_t size = layout_rec_size(rec);
    uint64_t min = region ? sizeof(layout_region) : sizeof(layout_rec);
    if (size < min || size > v->end - off) {
        verify_problem(v, off, "F-LOG-5",
                       "record type %u length %llu does not fit between %llu "
                       "and the committed end %llu", rec->type,
                       (unsigned long long)size, (unsigned long long)off,
                       (unsigned long long)v->end);
        return 0;
    }
    return size;
}

/* Everything about one record that does not depend on its type. */
static bool verify_rec_common(verify_ctx *v, uint64_t off,
                              const layout_rec *rec, uint64_t size)
{
    bool region = rec->flags & LAYOUT_REC_F_REGION;
    bool region_type = rec->type >= LAYOUT_REC_HASH_TABLE &&
                       rec->type <= LAYOUT_REC_ADJ_BLOCK;
    bool known = region_type || (rec->type >= LAYOUT_REC_CONCEPT &&
                                 rec->type <= LAYOUT_REC_COMMIT);
    VERIFY_REQUIRE(v, (rec->flags & ~LAYOUT_REC_F_REGION) == 0 &&
                          (!known || region == region_type),
                   off, "F-LOG-5", "record type %u with flags %#x", rec->type,
                   rec->flags);
    VERIFY_REQUIRE(v, !region || off % LAYOUT_REGION_ALIGN == 0, off,
                   "F-LOG-3", "region record not 64-byte aligned");
    VERIFY_REQUIRE(v, layout_rec_verify(rec), off, "F-LOG-6",
                   "checksum mismatch (type %u, %llu bytes)", rec->type,
                   (unsigned long long)size);
    uint64_t pad_end = layout_align_up(off + size, LAYOUT_RECORD_ALIGN);
    VERIFY_REQUIRE(v, pad_end <= v->end &&
                          verify_zero_bytes(v->map + off + size, pad_end - off - size),
                   off + size, "F-LOG-4", "padding after the record is not "
                   "zero");
    return true;
}

static bool verify_record(verify_ctx *v, verify_scan *s, uint64_t off,
                          const layout_rec *rec)
{
    switch (rec->type) {
    case LAYOUT_REC_CONCEPT:
    case LAYOUT_REC_CONCEPT_TOMBSTONE:
        return verify_concept(v, s, off, rec);
    case LAYOUT_REC_ASSOC:
    case LAYOUT_REC_ASSOC_TOMBSTONE:
        return verify_assoc(v, s, off, rec);
    case LAYOUT_REC_COMMIT:
        return verify_commit(v, s, off, rec);
    case LAYOUT_REC_HASH_TABLE:
    case LAYOUT_REC_NODE_CHUNK:
    case LAYOUT_REC_ADJ_BLOCK:
        if (!(rec->flags & LAYOUT_REC_F_REGION))
            return true; /* reported by verify_rec_common */
        return verify_region(v, s, off, rec);
    default:
        v->rep.unknown++; /* §10.1: skipped by its length */
        return true;
    }
}

/* The scan's end must be the snapshot's own commit record (F-COM-1), or for
 * generation 0 no commit and no data at all (F-META-5). */
/* F-META-6: the snapshot's slot names no next table, or the newest
 * HASH_TABLE region of the log, past the named one and twice its size. */
static bool verify_next_table(verify_ctx *v, const verify_scan *s)
{
    int slot = (int)(v->generation % 2);
    const layout_meta *m = &v->meta[slot];
    if (!v->meta_stable || v->published != v->generation ||
        !layout_meta_valid(m) || m->roots.generation != v->generation ||
        m->next_hash_root == 0)
        return true;
    uint64_t off = m->next_hash_root;
    bool newest = off == s->last_hash_region && off > v->hash_root;
    VERIFY_REQUIRE(v, newest, (slot ? LAYOUT_META_OFFSET_1 : LAYOUT_META_OFFSET_0) +
                                  offsetof(layout_meta, next_hash_root),
                   "F-META-6", "next_hash_root %llu is not the newest hash "
                   "table region past hash_root %llu",
                   (unsigned long long)off, (unsigned long long)v->hash_root);
    if (!newest)
        return true;
    const layout_region *t = (const layout_region *)(v->map + off);
    VERIFY_REQUIRE(v, t->arg0 == 2 * v->hash_slots, off, "F-META-6",
                   "the next table has %llu slots, not twice %llu",
                   (unsigned long long)t->arg0,
                   (unsigned long long)v->hash_slots);
    return true;
}

static bool verify_scan_end(verify_ctx *v, const verify_scan *s)
{
    if (v->generation == 0)
        VERIFY_REQUIRE(v, v->rep.commits == 0 && s->seq == 0, LAYOUT_DATA_START,
                       "F-META-5", "generation 0 with %llu commits and %llu "
                       "seqs", (unsigned long long)v->rep.commits,
                       (unsigned long long)s->seq);
    else
        VERIFY_REQUIRE(v, s->prev_generation == v->generation &&
                              s->group_records == 0 && v->last_commit != 0,
                       v->last_commit ? v->last_commit : LAYOUT_DATA_START,
                       "F-COM-1", "the log ends with generation %llu and %llu "
                       "uncommitted records, not generation %llu's commit",
                       (unsigned long long)s->prev_generation,
                       (unsigned long long)s->group_records,
                       (unsigned long long)v->generation);
    return verify_next_table(v, s);
}

static bool verify_log(verify_ctx *v)
{
    verify_scan s = {0};
    uint64_t off = LAYOUT_DATA_START, total = v->end - LAYOUT_DATA_START;
    uint64_t next_report = 0, zeros = 0;
    while (off < v->end) {
        if (off - LAYOUT_DATA_START >= next_report) {
            verify_progress(v, SUTRA_VERIFY_LOG, off - LAYOUT_DATA_START, total);
            next_report = off - LAYOUT_DATA_START + VERIFY_PROGRESS_BYTES;
        }
        /* F-LOG-4: a zero word where a header is expected is padding.  The
         * committed end is 8-aligned, so a whole word is always there. */
        if (*(const uint64_t *)(v->map + off) == 0) {
            zeros++;
            off += LAYOUT_RECORD_ALIGN;
            continue;
        }
        /* More would end the log for a recovery scan (F-REC-6). */
        VERIFY_REQUIRE(v, zeros <= LAYOUT_MAX_PAD_WORDS,
                       off - zeros * LAYOUT_RECORD_ALIGN, "F-LOG-4",
                       "%llu zero words between records, at most %u allowed",
                       (unsigned long long)zeros, LAYOUT_MAX_PAD_WORDS);
        zeros = 0;
        const layout_rec *rec = (const layout_rec *)(v->map + off);
        uint64_t size = v->end - off >= sizeof(layout_rec)
                            ? verify_rec_header(v, off, rec) : 0;
        if (size == 0) {
            if (v->end - off < sizeof(layout_rec))
                verify_problem(v, off, "F-LOG-5", "record header cut by the "
                               "committed end");
            return !verify_stopped(v); /* cannot find the next record */
        }
        v->rep.records++;
        if (!verify_rec_common(v, off, rec, size) ||
            !verify_record(v, &s, off, rec))
            return false;
        off = layout_align_up(off + size, LAYOUT_RECORD_ALIGN);
    }
    v->rep.bytes = total;
    v->rep.live_concepts = s.live;
    v->scan_complete = true;
    verify_progress(v, SUTRA_VERIFY_LOG, total, total);
    return verify_scan_end(v, &s);
}

/* ---- the driver ------------------------------------------------------- */

static int verify_setup(verify_ctx *v, const struct sutra_snapshot *snap,
                        const sutra_verify_options *opts)
{
    memset(v, 0, sizeof(*v));
    v->db = snap->db;
    v->map = snap->db->map;
    v->opts = opts;
    v->generation = snap->generation;
    v->last_seq = snap->last_seq;
    v->commit_ns = snap->commit_ns;
    v->concept_count = snap->concept_count;
    v->end = snap->private_[READER_SNAP_COMMITTED_END];
    v->node_count = snap->private_[READER_SNAP_NODE_COUNT];
    v->hash_root = snap->private_[READER_SNAP_HASH_ROOT];
    v->hash_slots = snap->private_[READER_SNAP_HASH_SLOTS];
    v->version_count = snap->private_[READER_SNAP_VERSION_COUNT];
    v->tombstone_count = snap->private_[READER_SNAP_TOMBSTONE_COUNT];
    v->assoc_count = snap->private_[READER_SNAP_ASSOC_COUNT];
    v->rep.generation = v->generation;
    /* Records past the end are 8-aligned and each belongs to one node's
     * chain, so no walk needs more steps than there are words to visit. */
    v->newer_budget = (v->db->map_size - v->end) / 8 + 1;
    /* The snapshot proved [0, end) readable and the hash table inside it;
     * re-check what this file relies on in case the caller forged one. */
    if (v->end < LAYOUT_DATA_START || v->end % 8 || v->end > v->db->map_size ||
        !reader_range_readable(v->db, 0, v->end))
        return SUTRA_EINVAL;
    return 0;
}

static int verify_alloc(verify_ctx *v)
{
    if (v->nodes_ok == 0)
        return 0;
    v->last_off = calloc(v->nodes_ok, sizeof(*v->last_off));
    v->node_state = calloc(v->nodes_ok, sizeof(*v->node_state));
    return v->last_off && v->node_state ? 0 : ENOMEM;
}

int sutra_verify(const struct sutra_snapshot *snap,
                 const sutra_verify_options *opts, sutra_verify_report *report)
{
    if (!snap || !snap->db || !report)
        return SUTRA_EINVAL;
    verify_ctx v;
    int rc = verify_setup(&v, snap, opts);
    if (rc)
        return rc;
    if (verify_meta(&v) && (rc = verify_alloc(&v)) == 0 && verify_log(&v) &&
        verify_hash(&v) && verify_nodes(&v))
        verify_adjacency(&v);
    free(v.last_off);
    free(v.node_state);
    if (!rc)
        rc = v.error;
    if (rc)
        return rc;
    *report = v.rep;
    return v.rep.problems ? SUTRA_ECORRUPT : 0;
}
