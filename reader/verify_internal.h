/*
 * reader/verify_internal.h — the state sutra_verify() carries from phase to
 * phase: reader/verify.c checks the meta slots, the node-table chunks and
 * the log (records and the commit chain); reader/verify_index.c checks the
 * index structures (hash table, node table, adjacency) against what the log
 * scan learned.
 *
 * The per-node arrays are the verifier's only allocations and are sized by
 * the nodes whose chunk validated, which are bounded by the committed bytes,
 * so memory stays O(nodes) whatever node_count a damaged root claims.
 * Everything here belongs to one sutra_verify() call on one thread.
 */
#ifndef SUTRA_READER_VERIFY_INTERNAL_H
#define SUTRA_READER_VERIFY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "reader/reader_internal.h"

/* node_state bits */
#define VERIFY_NODE_LIVE 0x1u   /* the scan's newest record is a version    */
#define VERIFY_NODE_HASHED 0x2u /* a hash slot names the node               */

typedef struct verify_ctx {
    const sutra_db *db;
    const uint8_t *map;
    const sutra_verify_options *opts;
    sutra_verify_report rep;   /* the working report                        */
    bool stopped;              /* a problem was found and ALL not asked     */
    int error;                 /* ENOMEM from a phase, else 0               */

    /* The snapshot under test. */
    uint64_t generation, last_seq, end, commit_ns;
    uint64_t node_count, hash_root, hash_slots;
    uint64_t concept_count, version_count, tombstone_count, assoc_count;

    /* The file around it. */
    bool at_rest;              /* cleanly closed, snapshot = newest gen     */
    bool meta_stable;          /* the meta copies below are consistent     */
    layout_meta meta[2];       /* copies of both slots                      */
    uint64_t published;        /* generation word at the copy               */
    const layout_node *chunk[LAYOUT_NODE_CHUNKS]; /* validated entry arrays */
    uint64_t nodes_ok;         /* nodes 0..nodes_ok-1 have a valid chunk    */
    uint64_t newer_budget;     /* steps left for walking past the snapshot  */

    /* What the log scan learned. */
    bool scan_complete;        /* it reached the committed end              */
    uint64_t last_commit;      /* offset of the last commit record seen     */
    uint64_t *last_off;        /* [nodes_ok] newest record of each node     */
    uint8_t *node_state;       /* [nodes_ok] VERIFY_NODE_*                  */
    uint64_t scan_nodes;       /* node numbers the scan has seen            */

    /* What the index phases learned. */
    uint64_t head_live;        /* nodes whose visible head is a version     */
} verify_ctx;

/* Record a problem at `off` breaking `rule`.  Returns true when the caller
 * should keep checking (SUTRA_VERIFY_ALL), false when it should stop. */
bool verify_problem(verify_ctx *v, uint64_t off, const char *rule,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* True when the caller should stop: a problem was found and ALL not asked. */
static inline bool verify_stopped(const verify_ctx *v)
{
    return v->stopped;
}

/* Report progress through the caller's callback, if any. */
void verify_progress(const verify_ctx *v, enum sutra_verify_phase phase,
                     uint64_t done, uint64_t total);

/* Node n's table entry, or NULL when n >= nodes_ok. */
static inline const layout_node *verify_node(const verify_ctx *v, uint64_t n)
{
    if (n >= v->nodes_ok)
        return NULL;
    uint32_t k;
    uint64_t index;
    layout_node_locate((uint32_t)n, &k, &index);
    return &v->chunk[k][index];
}

/* Absolute file offset of a pointer into the mapping. */
static inline uint64_t verify_off(const verify_ctx *v, const void *p)
{
    return (uint64_t)((const uint8_t *)p - v->map);
}

static inline bool verify_zero_bytes(const void *p, uint64_t len)
{
    const uint8_t *b = p;
    for (uint64_t i = 0; i < len; i++)
        if (b[i])
            return false;
    return true;
}

static inline bool verify_finite(float f)
{
    return f == f && f - f == 0.0f;
}

/* reader/verify_index.c: phases after the log scan.  Each returns false
 * when verification should stop. */
bool verify_hash(verify_ctx *v);
bool verify_nodes(verify_ctx *v);
bool verify_adjacency(verify_ctx *v);

#endif
