/*
 * layout/format.h — the bytes of storage.dat, format 1.0.
 *
 * This header is the single source of truth in code for the on-disk format;
 * docs/format.md is the normative prose and both change together.  Every
 * struct here is read in place from a PROT_READ mapping by reader processes,
 * so each has a fixed size, natural alignment and _Static_asserts on every
 * offset.  Rule ids (F-xxx-n) refer to docs/format.md.
 *
 * All integers are little-endian (F-GEN-1).  Offsets are absolute byte
 * offsets from the start of the file; offset 0 means "none" (F-GEN-2).
 *
 * No I/O policy lives here: only bytes, constants and pure helpers.
 */
#ifndef SUTRA_LAYOUT_FORMAT_H
#define SUTRA_LAYOUT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Sutra's file and wire formats are little-endian; this host is not"
#endif

/* ---- versions --------------------------------------------------------- */

#define LAYOUT_FORMAT_MAJOR 1u /* F-HDR-3: readers refuse any other major */
#define LAYOUT_FORMAT_MINOR 0u /* F-HDR-4: writers refuse a newer minor   */

/* ---- geometry --------------------------------------------------------- */

#define LAYOUT_PAGE_SIZE 4096u
#define LAYOUT_HEADER_OFFSET 0u
#define LAYOUT_META_OFFSET_0 4096u  /* meta slot 0: page 1 (F-META-1) */
#define LAYOUT_META_OFFSET_1 8192u  /* meta slot 1: page 2 (F-META-1) */
#define LAYOUT_DATA_START 12288u    /* first record (F-LOG-1)          */
#define LAYOUT_RECORD_ALIGN 8u      /* F-LOG-2                         */
#define LAYOUT_REGION_ALIGN 64u     /* regions and embeddings (F-LOG-3) */
/* F-LOG-4: the widest gap between records, in zero words (56 bytes before
 * a 64-aligned region); one more zero word ends the log. */
#define LAYOUT_MAX_PAD_WORDS 7u
#define LAYOUT_DEFAULT_MAP_RESERVE (1ull << 40) /* 1 TiB of address space */
#define LAYOUT_MAX_DIM 65536u       /* largest embedding dimension      */
#define LAYOUT_MAX_CONTENT (1u << 30) /* hard cap; coordinators set lower */

/* ---- header page (page 0) --------------------------------------------- */

#define LAYOUT_MAGIC "SUTRADAT" /* 8 bytes, no NUL in the file */
#define LAYOUT_MAGIC_LEN 8u

/* header_flags */
#define LAYOUT_HDR_F_NONE 0u

/* Node-table chunk k holds (LAYOUT_NODE_CHUNK0 << k) entries; node n lives in
 * chunk floor(log2(n / CHUNK0 + 1)).  32 chunks cover every u32 node number
 * (F-NODE-2). */
#define LAYOUT_NODE_CHUNK0_BITS 10u
#define LAYOUT_NODE_CHUNK0 (1u << LAYOUT_NODE_CHUNK0_BITS)
#define LAYOUT_NODE_CHUNKS 32u
#define LAYOUT_MAX_NODES 0xFFFFFFFEu

/*
 * The header page.  Bytes 0..(checksum) are written once at creation and
 * covered by header_checksum (F-HDR-1).  The in-place words from offset 128
 * are modified during the life of the file, each naturally aligned and
 * written with an atomic store (F-HDR-6).
 */
typedef struct layout_header {
    char magic[8];            /*   0 "SUTRADAT"                              */
    uint16_t format_major;    /*   8 F-HDR-3                                 */
    uint16_t format_minor;    /*  10 F-HDR-4                                 */
    uint32_t page_size;       /*  12 4096                                    */
    uint32_t vector_dim;      /*  16 embedding dimension, 0 = no embeddings  */
    uint32_t header_flags;    /*  20 LAYOUT_HDR_F_*, 0 in 1.0                */
    uint8_t uuid[16];         /*  24 random at creation                      */
    uint64_t created_ns;      /*  40 CLOCK_REALTIME at creation              */
    uint64_t map_reserve;     /*  48 max file size; readers map this much    */
    uint64_t data_start;      /*  56 LAYOUT_DATA_START                       */
    uint64_t reserved0[2];    /*  64                                         */
    uint64_t header_checksum; /*  80 XXH3-64 of bytes 0..80 (seed 0)         */
    uint64_t reserved1[5];    /*  88                                         */
    /* ---- in-place words (F-HDR-6) ---- */
    uint64_t generation;      /* 128 published generation; futex on the low
                                     32 bits (F-GEN-3)                      */
    uint32_t clean_shutdown;  /* 136 1 = closed cleanly; 0 while open        */
    uint32_t superseded;      /* 140 1 = replaced by a compacted file        */
    uint64_t writer_pid;      /* 144 pid of the coordinator (informative)    */
    uint64_t durable_end;     /* 152 committed_end known durable: stored
                                     after each successful sync, 0 = unknown
                                     (F-HDR-7)                              */
    uint64_t durable_commit;  /* 160 offset of the COMMIT record that ends at
                                     a value durable_end had, 0 = unknown
                                     (F-HDR-8)                              */
    uint64_t reserved2[11];   /* 168                                         */
    uint64_t node_chunk[LAYOUT_NODE_CHUNKS]; /* 256 offsets of node-table
                                     chunk records, 0 = not allocated yet   */
    uint8_t reserved3[4096 - 512]; /* 512 room for later roots, zero     */
} layout_header;

_Static_assert(sizeof(layout_header) == LAYOUT_PAGE_SIZE, "header is one page");
_Static_assert(offsetof(layout_header, format_major) == 8, "F-HDR");
_Static_assert(offsetof(layout_header, vector_dim) == 16, "F-HDR");
_Static_assert(offsetof(layout_header, uuid) == 24, "F-HDR");
_Static_assert(offsetof(layout_header, created_ns) == 40, "F-HDR");
_Static_assert(offsetof(layout_header, map_reserve) == 48, "F-HDR");
_Static_assert(offsetof(layout_header, data_start) == 56, "F-HDR");
_Static_assert(offsetof(layout_header, header_checksum) == 80, "F-HDR");
_Static_assert(offsetof(layout_header, generation) == 128, "F-HDR-6");
_Static_assert(offsetof(layout_header, clean_shutdown) == 136, "F-HDR-6");
_Static_assert(offsetof(layout_header, superseded) == 140, "F-HDR-6");
_Static_assert(offsetof(layout_header, writer_pid) == 144, "F-HDR-6");
_Static_assert(offsetof(layout_header, durable_commit) == 160, "F-HDR-8");
_Static_assert(offsetof(layout_header, durable_end) == 152, "F-HDR-7");
_Static_assert(offsetof(layout_header, node_chunk) == 256, "F-HDR-6");

#define LAYOUT_HEADER_CHECKSUMMED 80u

/* ---- roots: the state a snapshot sees -------------------------------- */

/*
 * The roots of one generation.  Stored in both meta slots and in every
 * commit record, so a reader can snapshot the current generation from a meta
 * slot, or any older one from its commit record (F-META-5).
 */
typedef struct layout_roots {
    uint64_t generation;      /*  0                                          */
    uint64_t last_seq;        /*  8 highest seq visible at this generation   */
    uint64_t committed_end;   /* 16 bytes at or past this are invisible      */
    uint64_t commit_ns;       /* 24 CLOCK_REALTIME of the commit             */
    uint64_t node_count;      /* 32 nodes numbered 0..node_count-1           */
    uint64_t hash_root;       /* 40 offset of the id->node hash record       */
    uint64_t hash_slots;      /* 48 its slot count, a power of two           */
    uint64_t concept_count;   /* 56 live (not forgotten) concepts            */
    uint64_t version_count;   /* 64 concept version records                  */
    uint64_t tombstone_count; /* 72 concept tombstone records                */
    uint64_t assoc_count;     /* 80 live associations (F-ASSOC-3)            */
    uint64_t last_commit;     /* 88 offset of this generation's commit record,
                                    0 for generation 0                      */
} layout_roots;

_Static_assert(sizeof(layout_roots) == 96, "roots");
_Static_assert(offsetof(layout_roots, committed_end) == 16, "roots");
_Static_assert(offsetof(layout_roots, hash_root) == 40, "roots");
_Static_assert(offsetof(layout_roots, last_commit) == 88, "roots");

/* ---- meta slots (pages 1 and 2) --------------------------------------- */

#define LAYOUT_META_MAGIC 0x54454d4152545553ull /* "SUTRAMET" little-endian */
#define LAYOUT_META_SIZE 256u
#define LAYOUT_META_CHECKSUMMED 248u

/* Commit N writes slot N % 2 completely, then publishes generation N
 * (F-META-2).  A slot is valid when magic matches and checksum is the XXH3-64
 * of its first 248 bytes (F-META-3). */
typedef struct layout_meta {
    uint64_t magic;          /*   0 LAYOUT_META_MAGIC                        */
    layout_roots roots;      /*   8                                          */
    uint64_t file_size;      /* 104 bytes the writer has extended the file to */
    uint64_t next_hash_root; /* 112 the next table being filled, or 0 (F-META-6) */
    uint64_t reserved[16];   /* 120 zero                                     */
    uint64_t checksum;       /* 248 XXH3-64 of bytes 0..248, seed 0          */
} layout_meta;

_Static_assert(sizeof(layout_meta) == LAYOUT_META_SIZE, "meta");
_Static_assert(offsetof(layout_meta, roots) == 8, "meta");
_Static_assert(offsetof(layout_meta, file_size) == 104, "meta");
_Static_assert(offsetof(layout_meta, next_hash_root) == 112, "meta");
_Static_assert(offsetof(layout_meta, checksum) == LAYOUT_META_CHECKSUMMED, "meta");

/* ---- records ---------------------------------------------------------- */

enum layout_rec_type {
    LAYOUT_REC_PAD = 0,             /* an all-zero 8-byte word (F-LOG-4)    */
    LAYOUT_REC_CONCEPT = 1,         /* a concept version                    */
    LAYOUT_REC_CONCEPT_TOMBSTONE = 2,
    LAYOUT_REC_ASSOC = 3,           /* an association write (F-ASSOC-1)     */
    LAYOUT_REC_ASSOC_TOMBSTONE = 4, /* an association deletion              */
    LAYOUT_REC_COMMIT = 5,          /* closes one generation                 */
    LAYOUT_REC_HASH_TABLE = 16,     /* region: id -> node slots              */
    LAYOUT_REC_NODE_CHUNK = 17,     /* region: node table entries            */
    LAYOUT_REC_ADJ_BLOCK = 18,      /* region: adjacency entries (F-ADJ-1)   */
};

/* rec flags */
#define LAYOUT_REC_F_REGION 0x0001u /* body past the descriptor is mutable and
                                       not checksummed (F-LOG-6)            */

/*
 * Every record starts with this header (F-LOG-5).  `length` counts the header
 * and body, not the padding to the next 8-byte boundary; for a region record
 * (LAYOUT_REC_F_REGION) it counts 64-byte units, so one region may span up
 * to 256 GiB (use layout_rec_size()).  `checksum` is
 * XXH3-64 of the checksummed body bytes with seed layout_rec_seed() of the
 * header's first 16 bytes (F-LOG-6).
 */
typedef struct layout_rec {
    uint16_t type;      /* 0 enum layout_rec_type                           */
    uint16_t flags;     /* 2 LAYOUT_REC_F_*                                 */
    uint32_t length;    /* 4 header + body bytes                            */
    uint64_t seq;       /* 8 the write's seq; commit: last seq; regions: 0  */
    uint64_t checksum;  /* 16                                               */
} layout_rec;

_Static_assert(sizeof(layout_rec) == 24, "record header");
_Static_assert(offsetof(layout_rec, seq) == 8, "record header");
_Static_assert(offsetof(layout_rec, checksum) == 16, "record header");

/* concept flags */
#define LAYOUT_CONCEPT_F_EMBEDDING 0x1u      /* has an embedding           */
#define LAYOUT_CONCEPT_F_SHARED_CONTENT 0x2u /* content bytes belong to an
                                                 earlier version (F-CON-4)  */
#define LAYOUT_CONCEPT_F_SHARED_EMBEDDING 0x4u

/*
 * A concept version (type CONCEPT) or tombstone (type CONCEPT_TOMBSTONE,
 * content_len = dim = 0).  Inline content follows the fixed part at +104;
 * an inline embedding starts at the next 64-byte-aligned absolute offset.
 * Shared content/embedding point into an earlier version's record, so a
 * re-learn that changes only strength/confidence copies nothing (F-CON-4).
 */
typedef struct layout_concept {
    layout_rec rec;          /*   0                                          */
    uint8_t id[16];          /*  24                                          */
    uint32_t node;           /*  40 dense node number                        */
    uint32_t concept_flags;  /*  44 LAYOUT_CONCEPT_F_*                       */
    uint64_t prev;           /*  48 previous version of this node, 0 = none  */
    uint64_t created_ns;     /*  56 time of the node's first version         */
    uint64_t updated_ns;     /*  64 time of this version                     */
    float strength;          /*  72                                          */
    float confidence;        /*  76                                          */
    uint64_t content_off;    /*  80 absolute, 0 when content_len == 0        */
    uint32_t content_len;    /*  88                                          */
    uint32_t dim;            /*  92 0 or the file's vector_dim               */
    uint64_t embedding_off;  /*  96 absolute, 64-aligned, 0 when dim == 0    */
} layout_concept;

_Static_assert(sizeof(layout_concept) == 104, "concept");
_Static_assert(offsetof(layout_concept, id) == 24, "concept");
_Static_assert(offsetof(layout_concept, node) == 40, "concept");
_Static_assert(offsetof(layout_concept, prev) == 48, "concept");
_Static_assert(offsetof(layout_concept, strength) == 72, "concept");
_Static_assert(offsetof(layout_concept, content_off) == 80, "concept");
_Static_assert(offsetof(layout_concept, content_len) == 88, "concept");
_Static_assert(offsetof(layout_concept, dim) == 92, "concept");
_Static_assert(offsetof(layout_concept, embedding_off) == 96, "concept");

/* One request applied in a commit: lets a restarted coordinator answer a
 * resent request with its original reply (F-COM-3). */
typedef struct layout_commit_entry {
    uint64_t client_id;  /*  0 */
    uint64_t request_no; /*  8 */
    uint64_t first_seq;  /* 16 seq of the request's first op, 0 if none */
    uint32_t op_count;   /* 24 */
    int32_t status;      /* 28 0 (only applied requests are listed)     */
} layout_commit_entry;

_Static_assert(sizeof(layout_commit_entry) == 32, "commit entry");

/*
 * Closes generation roots.generation (F-COM-1).  rec.seq = roots.last_seq.
 * Its end (offset + length, rounded up to 8) is roots.committed_end, and
 * roots.last_commit is its own offset.  entries[] follow at +144.
 */
typedef struct layout_commit {
    layout_rec rec;          /*   0                                          */
    layout_roots roots;      /*  24                                          */
    uint64_t prev_commit;    /* 120 previous commit record, 0 = none         */
    uint64_t first_seq;      /* 128 first seq of this generation             */
    uint32_t request_count;  /* 136 entries that follow                      */
    uint32_t reserved;       /* 140 0                                        */
} layout_commit;

_Static_assert(sizeof(layout_commit) == 144, "commit");
_Static_assert(offsetof(layout_commit, roots) == 24, "commit");
_Static_assert(offsetof(layout_commit, prev_commit) == 120, "commit");
_Static_assert(offsetof(layout_commit, request_count) == 136, "commit");

/*
 * Region records (hash table, node chunk) start 64-aligned; their mutable
 * body starts at +64 and only the 40 bytes after the header are checksummed
 * (F-LOG-6).
 */
typedef struct layout_region {
    layout_rec rec;      /*  0 flags has LAYOUT_REC_F_REGION                 */
    uint64_t arg0;       /* 24 hash: slot count;   node chunk: chunk index   */
    uint64_t arg1;       /* 32 hash: 0;            node chunk: entry count   */
    uint64_t arg2;       /* 40 hash: 0;            node chunk: first node    */
    uint64_t reserved[2];/* 48 zero                                          */
} layout_region;

_Static_assert(sizeof(layout_region) == 64, "region header");
#define LAYOUT_REGION_BODY 64u
#define LAYOUT_REGION_CHECKSUMMED 40u /* body bytes 24..64 */

/*
 * Hash slot (F-HASH-2): 0 = empty; otherwise (tag << 32) | (node + 1) where
 * tag is the high 32 bits of layout_id_hash(id).  Slots are only ever filled,
 * never cleared or moved, so a probe sees a superset of any snapshot's ids.
 * Linear probing from (hash & (slots - 1)).  layout_hash_word() is the slot
 * word naming node `node` for an id of hash h.
 */
static inline uint64_t layout_hash_word(uint64_t h, uint64_t node)
{
    return (h & 0xFFFFFFFF00000000ull) | (node + 1);
}

/*
 * F-HASH-2's insertion probe: the index of the first empty slot on the probe
 * path of hash h through a table of `slots` words (a power of two), or
 * `slots` when none is empty.  The one probe every writer of a table uses:
 * the committer, the next table's filler and recovery's rebuilds.  Relaxed
 * loads, so a table other threads fill (never this one's caller) may be
 * probed too.
 */
static inline uint64_t layout_hash_free_slot(const uint64_t *table,
                                             uint64_t slots, uint64_t h)
{
    uint64_t mask = slots - 1;
    for (uint64_t i = 0; i < slots; i++) {
        uint64_t at = (h + i) & mask;
        if (__atomic_load_n(&table[at], __ATOMIC_RELAXED) == 0)
            return at;
    }
    return slots;
}

#define LAYOUT_HASH_MIN_SLOTS 1024u
#define LAYOUT_HASH_MAX_LOAD_NUM 1u /* grow when nodes > slots * 1/2 */
#define LAYOUT_HASH_MAX_LOAD_DEN 2u

/*
 * Node table entry (F-NODE-1), 64 bytes, 64-aligned.  id and first_seq are
 * written before the hash slot that names the node is published; head,
 * out_adj and in_adj are in-place words (atomic release store / acquire load).
 */
typedef struct layout_node {
    uint8_t id[16];      /*  0                                               */
    uint64_t first_seq;  /* 16 seq of the node's first version               */
    uint64_t head;       /* 24 newest version record (in-place)              */
    uint64_t out_adj;    /* 32 newest out-edge ADJ_BLOCK, 0 = none (in-place) */
    uint64_t in_adj;     /* 40 newest in-edge ADJ_BLOCK, 0 = none (in-place)  */
    uint64_t reserved[2];/* 48 zero                                          */
} layout_node;

_Static_assert(sizeof(layout_node) == 64, "node entry");
_Static_assert(offsetof(layout_node, first_seq) == 16, "node entry");
_Static_assert(offsetof(layout_node, head) == 24, "node entry");

/* ---- associations ------------------------------------------------------ */

/*
 * An association write (type ASSOC) or deletion (type ASSOC_TOMBSTONE,
 * confidence 0) as it stands in the log: the audit trail and the unit of
 * replication (F-ASSOC-1).  Readers never reach it through an index word;
 * they read the adjacency entries below, which carry the same seq.
 * The edge key is (source, target, type).
 */
typedef struct layout_assoc {
    layout_rec rec;         /*  0 seq = the write's seq                    */
    uint8_t source[16];     /* 24                                          */
    uint8_t target[16];     /* 40                                          */
    uint32_t source_node;   /* 56                                          */
    uint32_t target_node;   /* 60                                          */
    uint32_t type;          /* 64 caller-defined                           */
    float confidence;       /* 68 0..1; 0 for a tombstone                  */
    uint64_t created_ns;    /* 72 commit time of the write                 */
} layout_assoc;

_Static_assert(sizeof(layout_assoc) == 80, "assoc");
_Static_assert(offsetof(layout_assoc, source_node) == 56, "assoc");
_Static_assert(offsetof(layout_assoc, type) == 64, "assoc");

/*
 * Adjacency (F-ADJ-*).  Each node has two lists, out-edges (it is the
 * source) and in-edges (it is the target), each a chain of ADJ_BLOCK regions
 * from the newest (node.out_adj / node.in_adj) to the oldest through
 * `prev_block`.  Block sizes are 256 << k bytes, so capacities are 5, 13,
 * 29, 61, … entries and a list of d edges spans O(log d) blocks.  Entries
 * are appended in seq order and never move.
 *
 * Region descriptor of an ADJ_BLOCK (layout_region):
 *   arg0 = owner node | (direction << 32)   direction 0 = out, 1 = in
 *   arg1 = capacity (entries)
 *   arg2 = prev_block: offset of the next-older block of the list, 0 = none
 *   reserved[0] = entries held by all older blocks of the list
 * Body: at +64 the in-place count word (entries filled, release-stored after
 * the entries it covers), zero to +96, entries from +96.
 */
#define LAYOUT_ADJ_OUT 0u
#define LAYOUT_ADJ_IN 1u
#define LAYOUT_ADJ_COUNT_OFFSET 64u
#define LAYOUT_ADJ_ENTRIES_OFFSET 96u
#define LAYOUT_ADJ_MIN_BLOCK 256u
#define LAYOUT_ADJ_F_TOMBSTONE 0x1u /* the key was forgotten at `seq` */

typedef struct layout_adj_entry {
    uint32_t node;       /*  0 the other endpoint's node number             */
    uint32_t type;       /*  4                                              */
    float confidence;    /*  8                                              */
    uint32_t flags;      /* 12 LAYOUT_ADJ_F_*                               */
    uint64_t seq;        /* 16 seq of the write that made this entry         */
    uint64_t superseded; /* 24 in place: seq of the later write of the same
                               key (learn again, forget, or forget of an
                               endpoint), 0 while current (F-ADJ-3)         */
} layout_adj_entry;

_Static_assert(sizeof(layout_adj_entry) == 32, "adjacency entry");
_Static_assert(offsetof(layout_adj_entry, seq) == 16, "adjacency entry");
_Static_assert(offsetof(layout_adj_entry, superseded) == 24, "adjacency entry");

/** Entries that fit in an ADJ_BLOCK of `bytes` (256 << k). */
static inline uint64_t layout_adj_capacity(uint64_t bytes)
{
    return (bytes - LAYOUT_ADJ_ENTRIES_OFFSET) / sizeof(layout_adj_entry);
}

/** F-ADJ-3: entry `e` is an edge of the snapshot that has seen seqs up to
 * `last_seq`.  `superseded` must be loaded with an acquire load. */
static inline bool layout_adj_visible(const layout_adj_entry *e,
                                      uint64_t superseded, uint64_t last_seq)
{
    return e->seq != 0 && e->seq <= last_seq &&
           !(e->flags & LAYOUT_ADJ_F_TOMBSTONE) &&
           (superseded == 0 || superseded > last_seq);
}

/* ---- pure helpers (layout/format.c) ----------------------------------- */

/** Round x up to a multiple of a (a power of two). */
static inline uint64_t layout_align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/** XXH3-64 of a 16-byte id: slot index from the low bits, tag from the high 32. */
uint64_t layout_id_hash(const uint8_t id[16]);

/** Bytes a record spans (header + body, before padding): `length`, or
 * `length` 64-byte units for a region (F-LOG-5). */
static inline uint64_t layout_rec_size(const layout_rec *rec)
{
    return (rec->flags & LAYOUT_REC_F_REGION)
               ? (uint64_t)rec->length * LAYOUT_REGION_ALIGN
               : (uint64_t)rec->length;
}

/** The `length` field of a region spanning `bytes` (a multiple of 64 and at
 * most 2^32 units; callers check layout_region_fits() first). */
static inline uint32_t layout_region_length(uint64_t bytes)
{
    return (uint32_t)(bytes / LAYOUT_REGION_ALIGN);
}

/** True when a region of `bytes` can be described by one record. */
static inline bool layout_region_fits(uint64_t bytes)
{
    return bytes % LAYOUT_REGION_ALIGN == 0 &&
           bytes / LAYOUT_REGION_ALIGN <= UINT32_MAX;
}

/** Seed for a record checksum, from the header's type, flags, length, seq. */
uint64_t layout_rec_seed(const layout_rec *rec);

/** Number of body bytes (after the 24-byte header) the checksum covers. */
uint32_t layout_rec_checksummed_len(const layout_rec *rec);

/** Compute the checksum of a complete record (header fields + body). */
uint64_t layout_rec_checksum(const layout_rec *rec);

/** Fill rec->checksum for a complete record. */
void layout_rec_seal(layout_rec *rec);

/** True when rec->checksum matches its bytes.  `rec` must be readable for
 * rec->length bytes (the caller bounds-checks length first). */
bool layout_rec_verify(const layout_rec *rec);

/** Fill a fresh header for a new file.  uuid and created_ns are inputs so
 * tests are deterministic. */
void layout_header_init(layout_header *h, uint32_t vector_dim,
                        uint64_t map_reserve, const uint8_t uuid[16],
                        uint64_t created_ns);

/** Validate the immutable part of a header read from a file of `file_size`
 * bytes.  Returns 0, SUTRA_ECORRUPT (bad magic, checksum, geometry) or
 * SUTRA_EVERSION (unknown major).  `why` (may be NULL) gets a static
 * message naming the failed rule. */
int layout_header_check(const layout_header *h, uint64_t file_size,
                        const char **why);

/** Seal a meta slot (fills magic and checksum). */
void layout_meta_seal(layout_meta *m);

/** True when the slot's magic and checksum are valid. */
bool layout_meta_valid(const layout_meta *m);

/** Pick the newest valid slot of the two (F-META-4).  Returns 0 or 1, or -1
 * when neither is valid. */
int layout_meta_pick(const layout_meta *slot0, const layout_meta *slot1);

/** Node n's chunk index and index within that chunk (F-NODE-2). */
static inline void layout_node_locate(uint32_t node, uint32_t *chunk,
                                      uint64_t *index)
{
    uint64_t q = ((uint64_t)node >> LAYOUT_NODE_CHUNK0_BITS) + 1;
    uint32_t k = 63u - (uint32_t)__builtin_clzll(q);
    *chunk = k;
    *index = (uint64_t)node - ((uint64_t)LAYOUT_NODE_CHUNK0 * ((1ull << k) - 1));
}

/** Entries in node chunk k. */
static inline uint64_t layout_node_chunk_entries(uint32_t k)
{
    return (uint64_t)LAYOUT_NODE_CHUNK0 << k;
}

/** First node number of chunk k. */
static inline uint64_t layout_node_chunk_first(uint32_t k)
{
    return (uint64_t)LAYOUT_NODE_CHUNK0 * ((1ull << k) - 1);
}

/** Total bytes of a concept record with the given inline payload placed at
 * absolute `offset` (the embedding's 64-byte alignment depends on it). */
uint64_t layout_concept_size(uint64_t offset, uint32_t inline_content_len,
                             uint32_t inline_dim);

#endif
