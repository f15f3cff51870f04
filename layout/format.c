/*
 * layout/format.c — pure helpers over the storage.dat bytes: checksums,
 * header validation, meta slot selection, record sizes.  No I/O.
 * Rule ids refer to docs/format.md.
 */
#include "layout/format.h"

#include <string.h>
#include <xxhash.h>

#include "sutra/sutra.h"

uint64_t layout_id_hash(const uint8_t id[16])
{
    return XXH3_64bits(id, 16);
}

uint64_t layout_rec_seed(const layout_rec *rec)
{
    /* F-LOG-6: the seed binds the checksum to type, flags, length and seq,
     * so a valid body under a damaged header still fails. */
    uint64_t a = (uint64_t)rec->type | ((uint64_t)rec->flags << 16) |
                 ((uint64_t)rec->length << 32);
    return a ^ (rec->seq * 0x9E3779B97F4A7C15ull);
}

uint32_t layout_rec_checksummed_len(const layout_rec *rec)
{
    if (rec->flags & LAYOUT_REC_F_REGION) /* descriptor only: body mutates */
        return layout_rec_size(rec) >= sizeof(layout_region)
                   ? LAYOUT_REGION_CHECKSUMMED : 0;
    if (rec->length < sizeof(layout_rec))
        return 0;
    return rec->length - (uint32_t)sizeof(layout_rec);
}

uint64_t layout_rec_checksum(const layout_rec *rec)
{
    const uint8_t *body = (const uint8_t *)rec + sizeof(layout_rec);
    return XXH3_64bits_withSeed(body, layout_rec_checksummed_len(rec),
                                layout_rec_seed(rec));
}

void layout_rec_seal(layout_rec *rec)
{
    rec->checksum = layout_rec_checksum(rec);
}

bool layout_rec_verify(const layout_rec *rec)
{
    if (layout_rec_size(rec) < ((rec->flags & LAYOUT_REC_F_REGION)
                                    ? sizeof(layout_region)
                                    : sizeof(layout_rec)))
        return false;
    return rec->checksum == layout_rec_checksum(rec);
}

void layout_header_init(layout_header *h, uint32_t vector_dim,
                        uint64_t map_reserve, const uint8_t uuid[16],
                        uint64_t created_ns)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, LAYOUT_MAGIC, LAYOUT_MAGIC_LEN);
    h->format_major = LAYOUT_FORMAT_MAJOR;
    h->format_minor = LAYOUT_FORMAT_MINOR;
    h->page_size = LAYOUT_PAGE_SIZE;
    h->vector_dim = vector_dim;
    h->header_flags = LAYOUT_HDR_F_NONE;
    memcpy(h->uuid, uuid, 16);
    h->created_ns = created_ns;
    h->map_reserve = map_reserve ? map_reserve : LAYOUT_DEFAULT_MAP_RESERVE;
    h->data_start = LAYOUT_DATA_START;
    h->header_checksum = XXH3_64bits(h, LAYOUT_HEADER_CHECKSUMMED);
}

int layout_header_check(const layout_header *h, uint64_t file_size,
                        const char **why)
{
    const char *unused;
    if (!why)
        why = &unused;
    if (file_size < LAYOUT_DATA_START) {
        *why = "F-HDR-2: file shorter than header and meta pages";
        return SUTRA_ECORRUPT;
    }
    if (memcmp(h->magic, LAYOUT_MAGIC, LAYOUT_MAGIC_LEN) != 0) {
        *why = "F-HDR-1: bad magic (not a Sutra storage file)";
        return SUTRA_ECORRUPT;
    }
    if (h->header_checksum != XXH3_64bits(h, LAYOUT_HEADER_CHECKSUMMED)) {
        *why = "F-HDR-1: header checksum mismatch";
        return SUTRA_ECORRUPT;
    }
    if (h->format_major != LAYOUT_FORMAT_MAJOR) {
        *why = "F-HDR-3: unknown format major version";
        return SUTRA_EVERSION;
    }
    if (h->page_size != LAYOUT_PAGE_SIZE || h->data_start != LAYOUT_DATA_START) {
        *why = "F-HDR-2: unexpected page size or data start";
        return SUTRA_ECORRUPT;
    }
    if (h->vector_dim > LAYOUT_MAX_DIM) {
        *why = "F-HDR-5: vector dimension out of range";
        return SUTRA_ECORRUPT;
    }
    if (h->map_reserve < LAYOUT_DATA_START ||
        h->map_reserve % LAYOUT_PAGE_SIZE != 0) {
        *why = "F-HDR-2: map reserve not a page multiple";
        return SUTRA_ECORRUPT;
    }
    return 0;
}

void layout_meta_seal(layout_meta *m)
{
    m->magic = LAYOUT_META_MAGIC;
    m->checksum = XXH3_64bits(m, LAYOUT_META_CHECKSUMMED);
}

bool layout_meta_valid(const layout_meta *m)
{
    return m->magic == LAYOUT_META_MAGIC &&
           m->checksum == XXH3_64bits(m, LAYOUT_META_CHECKSUMMED);
}

int layout_meta_pick(const layout_meta *slot0, const layout_meta *slot1)
{
    /* F-META-4: generation g lives in slot g % 2; a slot holding the wrong
     * parity was misplaced and is not trusted. */
    bool v0 = layout_meta_valid(slot0) && slot0->roots.generation % 2 == 0;
    bool v1 = layout_meta_valid(slot1) && slot1->roots.generation % 2 == 1;
    if (v0 && v1)
        return slot1->roots.generation > slot0->roots.generation ? 1 : 0;
    if (v0)
        return 0;
    if (v1)
        return 1;
    return -1;
}

uint64_t layout_concept_size(uint64_t offset, uint32_t inline_content_len,
                             uint32_t inline_dim)
{
    uint64_t end = offset + sizeof(layout_concept) + inline_content_len;
    if (inline_dim) {
        end = layout_align_up(end, LAYOUT_REGION_ALIGN);
        end += (uint64_t)inline_dim * sizeof(float);
    }
    return end - offset;
}
