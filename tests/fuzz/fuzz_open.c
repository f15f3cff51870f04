/*
 * tests/fuzz/fuzz_open.c — libFuzzer target for the write side of
 * storage.dat: the coordinator's open and recovery (coord_store_open(),
 * which runs recover.c, recover_adj.c and rebuild.c) on a hostile file,
 * then one small group written into whatever it recovered.
 *
 * Input: one flags byte, then the bytes of storage.dat.
 *   bit 0  store clean_shutdown = 0 in the header (when the file has one),
 *          so that recovery runs (F-REC-2) whatever the file says;
 *   bit 1  skip the group: open and close only;
 *   bit 2  re-learn a concept found in the file with both KEEP flags
 *          (reads its current version's record);
 *   bit 3  forget that concept (its associations' tombstones, F-ADJ-5);
 *   bit 4  commit with sync;
 *   bit 5  close without a clean shutdown;
 *   bit 6  open the file once more after the close;
 *   bit 7  seal again, before the open, every checksum that a mutation
 *          broke: the header's, a meta slot's whose magic holds, and each
 *          record's of the log as far as a scan can walk it, so that the
 *          input reaches the checks behind the checksums (a writer's bug
 *          writes bad fields under good checksums).
 * After a successful open the group is: learn a new concept (content, and
 * an embedding when the file's dimension is small), the re-learn, an
 * association from the new concept to the found one (or to a second new
 * concept), the forget; each op is its own request, so one refused op
 * does not take the others with it.  Any return code is fine; a crash or
 * a sanitizer report is a bug.
 *
 * Speed: the file is a memfd reached through a storage.dat symlink to
 * /proc/self/fd/N, as in fuzz_file.c, so opens, extends and syncs touch no
 * disk.  The store maps the header's map_reserve and grows the file up to
 * it (in 64 MiB steps): a header whose checksum holds gets its map_reserve
 * lowered to the input's size plus 256 KiB and is sealed again, so a valid
 * header stays valid and a damaged one stays damaged.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/fuzz/fuzz_memfile.h"

#define FLAG_UNCLEAN 0x01u
#define FLAG_NO_GROUP 0x02u
#define FLAG_RELEARN 0x04u
#define FLAG_FORGET 0x08u
#define FLAG_SYNC 0x10u
#define FLAG_DIRTY_CLOSE 0x20u
#define FLAG_REOPEN 0x40u
#define FLAG_RESEAL 0x80u

#define ROOM (256u << 10) /* growth allowed past the input */

/* The header as the file will hold it: clean_shutdown cleared on demand,
 * map_reserve lowered (and the checksum sealed again) only when the
 * header's checksum holds. */
static void adjust_header(uint8_t *file, size_t size, uint8_t flags)
{
    if (size < sizeof(layout_header))
        return;
    layout_header *h = (layout_header *)file;
    if (flags & FLAG_UNCLEAN)
        h->clean_shutdown = 0;
    uint64_t cap = layout_align_up(size, LAYOUT_PAGE_SIZE) + ROOM;
    if (h->map_reserve > cap &&
        XXH3_64bits(h, LAYOUT_HEADER_CHECKSUMMED) == h->header_checksum) {
        h->map_reserve = cap;
        h->header_checksum = XXH3_64bits(h, LAYOUT_HEADER_CHECKSUMMED);
    }
}

/* FLAG_RESEAL: the header, each meta slot with its magic, and the log's
 * records from the data start, walked as a scanner does (a zero word is
 * padding), until a record would not fit in the file. */
static void reseal(uint8_t *file, size_t size)
{
    if (size < LAYOUT_DATA_START)
        return;
    layout_header *h = (layout_header *)file;
    if (memcmp(h->magic, LAYOUT_MAGIC, LAYOUT_MAGIC_LEN) == 0)
        h->header_checksum = XXH3_64bits(h, LAYOUT_HEADER_CHECKSUMMED);
    uint64_t slots[2] = {LAYOUT_META_OFFSET_0, LAYOUT_META_OFFSET_1};
    for (int i = 0; i < 2; i++) {
        layout_meta *m = (layout_meta *)(file + slots[i]);
        if (m->magic == LAYOUT_META_MAGIC)
            layout_meta_seal(m);
    }
    uint64_t off = LAYOUT_DATA_START;
    while (off + sizeof(layout_rec) <= size) {
        layout_rec *r = (layout_rec *)(file + off);
        if (*(const uint64_t *)(const void *)r == 0) {
            off += 8;
            continue;
        }
        uint64_t len = layout_rec_size(r);
        uint64_t least = (r->flags & LAYOUT_REC_F_REGION)
                             ? sizeof(layout_region)
                             : sizeof(layout_rec);
        if (len < least || len > size - off)
            return;
        layout_rec_seal(r);
        off = layout_align_up(off + len, LAYOUT_RECORD_ALIGN);
    }
}

static void load(const uint8_t *data, size_t size, uint8_t flags)
{
    uint8_t *file = malloc(size ? size : 1);
    if (!file)
        abort();
    memcpy(file, data, size);
    if (flags & FLAG_RESEAL)
        reseal(file, size);
    adjust_header(file, size, flags);
    fuzz_memfile_load(file, size);
    free(file);
}

/* The id of the first concept record found in the log, if any. */
static bool find_concept(const uint8_t *file, size_t size, uint8_t id[16])
{
    for (size_t off = LAYOUT_DATA_START; off + 40 <= size; off += 8)
        if (file[off] == LAYOUT_REC_CONCEPT && file[off + 1] == 0 &&
            file[off + 2] == 0 && file[off + 3] == 0) {
            memcpy(id, file + off + 24, 16);
            return true;
        }
    return false;
}

/* One request of one op, decoded as the coordinator would and applied
 * into the open group. */
typedef struct one_op {
    uint64_t words[512]; /* 4 KiB, 8-byte aligned */
    size_t len;
} one_op;

static uint8_t *op_begin(one_op *r)
{
    memset(r->words, 0, sizeof(r->words));
    r->len = sizeof(wire_request_header);
    return (uint8_t *)r->words + r->len;
}

static void op_apply(coord_store *s, one_op *r, uint64_t request_no)
{
    wire_request_header_init((wire_request_header *)r->words, 0, 0xF0F0,
                             request_no, 1);
    wire_limits lim = {.max_message = sizeof(r->words),
                       .max_content = 1024,
                       .max_batch = 4,
                       .vector_dim = coord_store_dim(s)};
    wire_request req;
    uint32_t failed_op;
    const char *why;
    if (wire_request_decode(r->words, r->len, &lim, &req, &failed_op, &why))
        return;
    coord_apply_result res;
    coord_error err;
    (void)coord_store_apply(s, &req, &res, &err);
}

static void learn(coord_store *s, one_op *r, const uint8_t id[16],
                  uint16_t flags, const char *content, uint64_t request_no)
{
    static float embedding[64];
    uint32_t dim = coord_store_dim(s);
    if (flags & WIRE_LEARN_KEEP_EMBEDDING || dim > 64)
        dim = 0;
    for (uint32_t i = 0; i < dim; i++)
        embedding[i] = (float)i * 0.25f;
    uint32_t len = content ? (uint32_t)strlen(content) : 0;
    uint8_t *p = op_begin(r);
    r->len += wire_encode_learn_concept(p, flags, id, 1.5f, 0.5f, content, len,
                                        dim ? embedding : NULL, dim);
    op_apply(s, r, request_no);
}

static void write_group(coord_store *s, const uint8_t *file, size_t size,
                        uint8_t flags)
{
    one_op *r = malloc(sizeof(*r));
    if (!r)
        abort();
    sutra_id a, b;
    sutra_id_from_name("fuzz-open-a", 11, &a);
    sutra_id_from_name("fuzz-open-b", 11, &b);
    uint8_t found[16];
    bool have = find_concept(file, size, found);
    const uint8_t *target = have ? found : b.bytes;
    learn(s, r, a.bytes, 0, "fuzzed", 1);
    if (!have)
        learn(s, r, b.bytes, 0, NULL, 2);
    if (have && (flags & FLAG_RELEARN))
        learn(s, r, found,
              WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING, NULL, 3);
    uint8_t *p = op_begin(r);
    r->len += wire_encode_association(p, WIRE_OP_LEARN_ASSOCIATION, a.bytes,
                                      target, 7, 0.75f);
    op_apply(s, r, 4);
    if (have && (flags & FLAG_FORGET)) {
        p = op_begin(r);
        r->len += wire_encode_forget_concept(p, found);
        op_apply(s, r, 5);
    }
    free(r);
    coord_commit_info info;
    coord_error err;
    if (coord_store_commit(s, (flags & FLAG_SYNC) != 0, &info, &err) != 0)
        coord_store_abort(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_memfile_setup();
    uint8_t flags = data[0];
    data++;
    size--;
    load(data, size, flags);
    coord_store_options o = {.vector_dim = 0, .map_reserve = 0, .io = NULL};
    coord_store *s = NULL;
    coord_error err;
    if (coord_store_open(fuzz_mem.path, &o, &s, &err) != 0)
        return 0;
    if (!(flags & FLAG_NO_GROUP))
        write_group(s, data, size, flags);
    (void)coord_store_close(s, !(flags & FLAG_DIRTY_CLOSE));
    if (flags & FLAG_REOPEN) {
        s = NULL;
        if (coord_store_open(fuzz_mem.path, &o, &s, &err) == 0)
            (void)coord_store_close(s, true);
    }
    return 0;
}
