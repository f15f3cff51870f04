/*
 * tools/sutra-inspect.c — look inside a Sutra data directory without a
 * coordinator: `sutra-inspect COMMAND DIR`.
 *
 *   header  the header page and both meta slots, read with pread so that a
 *           file libsutra refuses to open can still be looked at
 *   stats   counts, sizes, hash load (human or --json), through libsutra
 *   dump    the log's records in order, one line each (--from, --limit)
 *   verify  sutra_verify() of the newest (or --generation G) snapshot
 *   follow  one line per generation as the coordinator publishes them,
 *           waiting on the generation word (no NNG), until SIGINT/SIGTERM
 *           or --count N generations
 *
 * Read-only: nothing here writes to the directory, so it is safe beside a
 * running coordinator and on a damaged file.  Exit codes: 0 success (for
 * verify: clean), 1 the file is damaged or the command failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layout/format.h"
#include "reader/history_internal.h"
#include "sutra/sutra.h"

#define EXIT_DAMAGED 1
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: sutra-inspect COMMAND DIR [options]\n"
    "\n"
    "Look inside the Sutra data directory DIR (its storage.dat), read-only.\n"
    "\n"
    "commands:\n"
    "  header              header page and both meta slots (works on files\n"
    "                      that cannot be opened)\n"
    "  stats [--json] [--generation G]\n"
    "                      counts, sizes, generation, hash load\n"
    "  dump [--from OFFSET] [--limit N] [--generation G]\n"
    "                      records in log order, one line each\n"
    "  verify [--all] [--generation G]\n"
    "                      full check against the format; --all counts every\n"
    "                      problem instead of stopping at the first\n"
    "  follow [--count N]  print each new generation as it is published;\n"
    "                      stops on SIGINT/SIGTERM or after N generations\n"
    "\n"
    "  --help, --version\n"
    "\n"
    "exit status: 0 success (verify: clean), 1 damaged file or failure,\n"
    "2 usage error.\n";

/* ---- command line ----------------------------------------------------- */

typedef struct inspect_args {
    const char *command;
    const char *dir;
    bool json, all;
    bool has_from, has_limit, has_count, has_generation;
    uint64_t from, limit, count, generation;
} inspect_args;

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sutra-inspect: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(see sutra-inspect --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* A decimal number: digits only (no sign, space, or 0x/0 prefixes read
 * as another base). */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* An option that takes a number: --name VALUE or --name=VALUE. */
static int number_option(int argc, char **argv, int *i, const char *name,
                         bool *has, uint64_t *value, bool *matched)
{
    size_t n = strlen(name);
    const char *arg = argv[*i], *text;
    if (strncmp(arg, name, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
        return 0;
    *matched = true;
    if (arg[n] == '=')
        text = arg + n + 1;
    else if (*i + 1 < argc)
        text = argv[++*i];
    else
        return usage_error("%s needs a value", name);
    if (!parse_u64(text, value))
        return usage_error("%s: '%s' is not a number", name, text);
    *has = true;
    return 0;
}

static int parse_args(int argc, char **argv, inspect_args *a)
{
    memset(a, 0, sizeof(*a));
    if (argc < 2)
        return usage_error("no command given");
    a->command = argv[1];
    for (int i = 2; i < argc; i++) {
        bool matched = false;
        int rc = 0;
        if (strcmp(argv[i], "--json") == 0)
            a->json = matched = true;
        else if (strcmp(argv[i], "--all") == 0)
            a->all = matched = true;
        if (!matched)
            rc = number_option(argc, argv, &i, "--from", &a->has_from, &a->from,
                               &matched);
        if (!rc && !matched)
            rc = number_option(argc, argv, &i, "--limit", &a->has_limit,
                               &a->limit, &matched);
        if (!rc && !matched)
            rc = number_option(argc, argv, &i, "--count", &a->has_count,
                               &a->count, &matched);
        if (!rc && !matched)
            rc = number_option(argc, argv, &i, "--generation",
                               &a->has_generation, &a->generation, &matched);
        if (rc)
            return rc;
        if (matched)
            continue;
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("unknown option '%s'", argv[i]);
        if (a->dir)
            return usage_error("one directory only ('%s' and '%s')", a->dir,
                               argv[i]);
        a->dir = argv[i];
    }
    if (!a->dir)
        return usage_error("%s: no data directory given", a->command);
    return 0;
}

/* Options valid for the command: a string of letters j a f l c g. */
static int check_options(const inspect_args *a, const char *allowed)
{
    struct { bool set; char letter; const char *name; } opts[] = {
        {a->json, 'j', "--json"}, {a->all, 'a', "--all"},
        {a->has_from, 'f', "--from"}, {a->has_limit, 'l', "--limit"},
        {a->has_count, 'c', "--count"},
        {a->has_generation, 'g', "--generation"},
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (opts[i].set && !strchr(allowed, opts[i].letter))
            return usage_error("%s does not take %s", a->command, opts[i].name);
    return 0;
}

/* ---- formatting ------------------------------------------------------- */

static void format_time(uint64_t ns, char *out, size_t cap)
{
    if (ns == 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t secs = (time_t)(ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[32];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%09" PRIu64 "Z", day, (uint64_t)(ns % 1000000000ull));
}

static void format_uuid(const uint8_t u[16], char out[37])
{
    static const int dash[16] = {0, 0, 0, 1, 0, 1, 0, 1, 0, 1};
    char *p = out;
    for (int i = 0; i < 16; i++) {
        p += sprintf(p, "%02x", u[i]);
        if (dash[i])
            *p++ = '-';
    }
    *p = '\0';
}

static void format_id(const uint8_t id[16], char out[SUTRA_ID_HEX_LEN + 1])
{
    sutra_id x;
    memcpy(x.bytes, id, 16);
    sutra_id_format(&x, out);
}

/* A quoted, printable preview of up to 40 bytes. */
static void format_preview(const uint8_t *p, uint64_t len, char *out,
                           size_t cap)
{
    size_t n = 0, show = len < 40 ? (size_t)len : 40;
    out[n++] = '"';
    for (size_t i = 0; i < show && n + 4 < cap; i++)
        out[n++] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? (char)p[i] : '.';
    if (len > show && n + 5 < cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n++] = '"';
    out[n] = '\0';
}

static int report_error(const char *dir, const char *what, int rc)
{
    fprintf(stderr, "sutra-inspect: %s: %s: %s\n", dir, what,
            sutra_strerror(rc));
    return EXIT_DAMAGED;
}

/* ---- reading the file directly --------------------------------------- */

typedef struct raw_file {
    int fd;
    uint64_t size;
    char path[PATH_MAX];
} raw_file;

static int raw_open(const char *dir, raw_file *f)
{
    int n = snprintf(f->path, sizeof(f->path), "%s/storage.dat", dir);
    if (n < 0 || (size_t)n >= sizeof(f->path))
        return ENAMETOOLONG;
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* see db.c */
    if (f->fd < 0)
        return errno;
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        int rc = errno;
        close(f->fd);
        return rc;
    }
    f->size = (uint64_t)st.st_size;
    return 0;
}

/* Read [off, off + len) or zero-fill what lies past the end of the file. */
static void raw_read(const raw_file *f, void *buf, size_t len, uint64_t off)
{
    memset(buf, 0, len);
    if (off < f->size) {
        size_t avail = f->size - off < len ? (size_t)(f->size - off) : len;
        ssize_t got = pread(f->fd, buf, avail, (off_t)off);
        (void)got; /* a short read leaves zeros, reported as invalid */
    }
}

/* ---- header ----------------------------------------------------------- */

static void print_meta(int slot, const layout_meta *m)
{
    bool zero = true;
    for (size_t i = 0; i < sizeof(*m) && zero; i++)
        zero = ((const uint8_t *)m)[i] == 0;
    printf("meta slot %d:      ", slot);
    if (zero) {
        printf("empty\n");
        return;
    }
    if (m->magic != LAYOUT_META_MAGIC) {
        printf("invalid (bad magic, F-META-3)\n");
        return;
    }
    if (!layout_meta_valid(m)) {
        printf("invalid (checksum mismatch, F-META-3)\n");
        return;
    }
    char when[48];
    format_time(m->roots.commit_ns, when, sizeof(when));
    printf("valid%s, generation %" PRIu64 ", last seq %" PRIu64
           ", committed end %" PRIu64 ", file size %" PRIu64 ", nodes %" PRIu64
           ", committed %s\n",
           m->roots.generation % 2 == (uint64_t)slot ? "" : " (wrong parity, F-META-4)",
           m->roots.generation, m->roots.last_seq, m->roots.committed_end,
           m->file_size, m->roots.node_count, when);
    if (m->next_hash_root)
        printf("    next hash table at %" PRIu64 " (F-META-6)\n",
               m->next_hash_root);
}

static int cmd_header(const inspect_args *a)
{
    raw_file f;
    int rc = raw_open(a->dir, &f);
    if (rc)
        return report_error(a->dir, "cannot open storage.dat", rc);
    layout_header h;
    layout_meta meta[2];
    raw_read(&f, &h, sizeof(h), LAYOUT_HEADER_OFFSET);
    raw_read(&f, &meta[0], sizeof(meta[0]), LAYOUT_META_OFFSET_0);
    raw_read(&f, &meta[1], sizeof(meta[1]), LAYOUT_META_OFFSET_1);
    close(f.fd);
    const char *why = NULL;
    int check = layout_header_check(&h, f.size, &why);
    char uuid[37], when[48];
    format_uuid(h.uuid, uuid);
    format_time(h.created_ns, when, sizeof(when));
    printf("file:             %s (%" PRIu64 " bytes)\n", f.path, f.size);
    printf("magic:            %.8s\n", h.magic);
    printf("format:           %u.%u\n", h.format_major, h.format_minor);
    printf("page size:        %u\n", h.page_size);
    printf("vector dim:       %u\n", h.vector_dim);
    printf("uuid:             %s\n", uuid);
    printf("created:          %s\n", when);
    printf("map reserve:      %" PRIu64 "\n", h.map_reserve);
    printf("data start:       %" PRIu64 "\n", h.data_start);
    printf("header:           %s\n", check ? why : "valid");
    printf("generation:       %" PRIu64 "\n", h.generation);
    printf("clean shutdown:   %s\n", h.clean_shutdown ? "yes" : "no");
    printf("superseded:       %s\n", h.superseded ? "yes" : "no");
    printf("writer pid:       %" PRIu64 "\n", h.writer_pid);
    print_meta(0, &meta[0]);
    print_meta(1, &meta[1]);
    return check ? EXIT_DAMAGED : 0;
}

/* ---- stats ------------------------------------------------------------ */

static int open_snapshot(const inspect_args *a, sutra_db **db,
                         struct sutra_snapshot *snap)
{
    int rc = sutra_open(a->dir, NULL, db);
    if (rc)
        return report_error(a->dir, "cannot open storage.dat", rc);
    rc = a->has_generation ? sutra_snapshot_at(*db, a->generation, snap)
                           : sutra_snapshot(*db, snap);
    if (rc) {
        sutra_close(*db);
        return report_error(a->dir, "cannot take a snapshot", rc);
    }
    return 0;
}

static void print_stats_json(const sutra_stats *s, uint64_t disk)
{
    char uuid[37];
    format_uuid(s->uuid, uuid);
    printf("{\"generation\":%" PRIu64 ",\"last_seq\":%" PRIu64
           ",\"commit_ns\":%" PRIu64 ",\"created_ns\":%" PRIu64
           ",\"node_count\":%" PRIu64 ",\"concept_count\":%" PRIu64
           ",\"version_count\":%" PRIu64 ",\"tombstone_count\":%" PRIu64
           ",\"assoc_count\":%" PRIu64 ",\"hash_slots\":%" PRIu64
           ",\"hash_load\":%.6f,\"committed_end\":%" PRIu64
           ",\"file_size\":%" PRIu64 ",\"file_size_on_disk\":%" PRIu64
           ",\"map_size\":%" PRIu64 ",\"vector_dim\":%u"
           ",\"format\":\"%u.%u\",\"clean_shutdown\":%s,\"uuid\":\"%s\"}\n",
           s->generation, s->last_seq, s->commit_ns, s->created_ns,
           s->node_count, s->concept_count, s->version_count,
           s->tombstone_count, s->assoc_count, s->hash_slots,
           s->hash_slots ? (double)s->node_count / (double)s->hash_slots : 0.0,
           s->committed_end, s->file_size, disk, s->map_size, s->vector_dim,
           s->format_major, s->format_minor,
           s->clean_shutdown ? "true" : "false", uuid);
}

static void print_stats_human(const sutra_stats *s, uint64_t disk)
{
    char when[48];
    format_time(s->commit_ns, when, sizeof(when));
    printf("generation:       %" PRIu64 "\n", s->generation);
    printf("last seq:         %" PRIu64 "\n", s->last_seq);
    printf("committed:        %s\n", when);
    printf("concepts:         %" PRIu64 " live, %" PRIu64 " versions, %" PRIu64
           " tombstones\n", s->concept_count, s->version_count,
           s->tombstone_count);
    printf("associations:     %" PRIu64 " live\n", s->assoc_count);
    printf("nodes:            %" PRIu64 "\n", s->node_count);
    printf("hash table:       %" PRIu64 " slots, load %.2f%%\n", s->hash_slots,
           s->hash_slots ? 100.0 * (double)s->node_count / (double)s->hash_slots
                         : 0.0);
    printf("committed end:    %" PRIu64 " bytes (%.1f%% of the file)\n",
           s->committed_end,
           s->file_size ? 100.0 * (double)s->committed_end / (double)s->file_size
                        : 0.0);
    printf("file size:        %" PRIu64 " bytes (%" PRIu64 " on disk)\n",
           s->file_size, disk);
    printf("mapped:           %" PRIu64 " bytes\n", s->map_size);
    printf("vector dim:       %u\n", s->vector_dim);
    printf("format:           %u.%u\n", s->format_major, s->format_minor);
    printf("clean shutdown:   %s\n", s->clean_shutdown ? "yes" : "no");
}

static int cmd_stats(const inspect_args *a)
{
    sutra_db *db;
    struct sutra_snapshot snap;
    int rc = open_snapshot(a, &db, &snap);
    if (rc)
        return rc;
    sutra_stats s;
    sutra_stats_get(&snap, &s);
    sutra_close(db);
    raw_file f;
    uint64_t disk = 0;
    if (raw_open(a->dir, &f) == 0) {
        disk = f.size;
        close(f.fd);
    }
    if (a->json)
        print_stats_json(&s, disk);
    else
        print_stats_human(&s, disk);
    return 0;
}

/* ---- dump ------------------------------------------------------------- */

static const char *type_name(uint16_t type)
{
    switch (type) {
    case LAYOUT_REC_CONCEPT: return "CONCEPT";
    case LAYOUT_REC_CONCEPT_TOMBSTONE: return "TOMBSTONE";
    case LAYOUT_REC_ASSOC: return "ASSOC";
    case LAYOUT_REC_ASSOC_TOMBSTONE: return "ASSOC_TOMBSTONE";
    case LAYOUT_REC_COMMIT: return "COMMIT";
    case LAYOUT_REC_HASH_TABLE: return "HASH_TABLE";
    case LAYOUT_REC_NODE_CHUNK: return "NODE_CHUNK";
    case LAYOUT_REC_ADJ_BLOCK: return "ADJ_BLOCK";
    default: return "UNKNOWN";
    }
}

static void dump_concept(const uint8_t *map, uint64_t end, uint64_t off,
                         const layout_concept *c)
{
    char id[SUTRA_ID_HEX_LEN + 1], preview[64] = "-";
    format_id(c->id, id);
    if (c->content_len && c->content_off >= LAYOUT_DATA_START &&
        c->content_off <= end && c->content_len <= end - c->content_off)
        format_preview(map + c->content_off, c->content_len, preview,
                       sizeof(preview));
    printf(" id=%s node=%u prev=%" PRIu64, id, c->node, c->prev);
    if (c->rec.type == LAYOUT_REC_CONCEPT)
        printf(" content=%s len=%u%s dim=%u%s strength=%g confidence=%g", preview,
               c->content_len,
               c->concept_flags & LAYOUT_CONCEPT_F_SHARED_CONTENT ? "(shared)" : "",
               c->dim,
               c->concept_flags & LAYOUT_CONCEPT_F_SHARED_EMBEDDING ? "(shared)" : "",
               (double)c->strength, (double)c->confidence);
    (void)off;
}

/* An ADJ_BLOCK's descriptor, and its count word when the record is long
 * enough to hold one: a damaged region may be a single 64-byte unit, and
 * the bytes after it may lie past the committed end, outside the map. */
static void dump_adj_block(const layout_region *r, uint64_t size)
{
    printf(" owner=%" PRIu64 " dir=%s capacity=%" PRIu64,
           r->arg0 & 0xFFFFFFFFu, r->arg0 >> 32 ? "in" : "out", r->arg1);
    if (size >= LAYOUT_ADJ_COUNT_OFFSET + sizeof(uint64_t))
        printf(" count=%" PRIu64,
               __atomic_load_n((const uint64_t *)((const uint8_t *)r +
                                                  LAYOUT_ADJ_COUNT_OFFSET),
                               __ATOMIC_ACQUIRE));
    printf(" prev_block=%" PRIu64, r->arg2);
}

static void dump_fields(const uint8_t *map, uint64_t end, uint64_t off,
                        const layout_rec *rec)
{
    uint64_t size = layout_rec_size(rec);
    if ((rec->type == LAYOUT_REC_CONCEPT ||
         rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE) &&
        size >= sizeof(layout_concept)) {
        dump_concept(map, end, off, (const layout_concept *)rec);
    } else if ((rec->type == LAYOUT_REC_ASSOC ||
                rec->type == LAYOUT_REC_ASSOC_TOMBSTONE) &&
               size >= sizeof(layout_assoc)) {
        const layout_assoc *x = (const layout_assoc *)rec;
        char s[SUTRA_ID_HEX_LEN + 1], t[SUTRA_ID_HEX_LEN + 1];
        format_id(x->source, s);
        format_id(x->target, t);
        printf(" source=%s target=%s nodes=%u->%u type=%u confidence=%g", s, t,
               x->source_node, x->target_node, x->type, (double)x->confidence);
    } else if (rec->type == LAYOUT_REC_COMMIT && size >= sizeof(layout_commit)) {
        const layout_commit *c = (const layout_commit *)rec;
        printf(" generation=%" PRIu64, c->roots.generation);
        if (c->first_seq)
            printf(" seqs=%" PRIu64 "..%" PRIu64, c->first_seq,
                   c->roots.last_seq);
        else
            printf(" seqs=none");
        printf(" requests=%u nodes=%" PRIu64 " concepts=%" PRIu64
               " associations=%" PRIu64 " prev_commit=%" PRIu64,
               c->request_count, c->roots.node_count, c->roots.concept_count,
               c->roots.assoc_count, c->prev_commit);
    } else if ((rec->flags & LAYOUT_REC_F_REGION) && size >= sizeof(layout_region)) {
        const layout_region *r = (const layout_region *)rec;
        if (rec->type == LAYOUT_REC_HASH_TABLE)
            printf(" slots=%" PRIu64, r->arg0);
        else if (rec->type == LAYOUT_REC_NODE_CHUNK)
            printf(" chunk=%" PRIu64 " entries=%" PRIu64 " first_node=%" PRIu64,
                   r->arg0, r->arg1, r->arg2);
        else if (rec->type == LAYOUT_REC_ADJ_BLOCK)
            dump_adj_block(r, size);
    }
}

/* Map the committed part of the file read-only. */
static int map_committed(const inspect_args *a, const uint8_t **map,
                         uint64_t *end)
{
    sutra_db *db;
    struct sutra_snapshot snap;
    int rc = open_snapshot(a, &db, &snap);
    if (rc)
        return rc;
    sutra_stats s;
    sutra_stats_get(&snap, &s);
    sutra_close(db);
    raw_file f;
    rc = raw_open(a->dir, &f);
    if (rc)
        return report_error(a->dir, "cannot open storage.dat", rc);
    void *m = mmap(NULL, (size_t)s.committed_end, PROT_READ, MAP_SHARED, f.fd, 0);
    close(f.fd);
    if (m == MAP_FAILED)
        return report_error(a->dir, "cannot map storage.dat", errno);
    *map = m;
    *end = s.committed_end;
    return 0;
}

static int cmd_dump(const inspect_args *a)
{
    const uint8_t *map;
    uint64_t end;
    int rc = map_committed(a, &map, &end);
    if (rc)
        return rc;
    uint64_t off = a->has_from ? a->from : LAYOUT_DATA_START, shown = 0;
    if (off < LAYOUT_DATA_START || off % LAYOUT_RECORD_ALIGN) {
        munmap((void *)map, (size_t)end);
        return usage_error("--from %" PRIu64 " is not an 8-aligned offset at or "
                           "past %u", off, LAYOUT_DATA_START);
    }
    while (off < end && (!a->has_limit || shown < a->limit)) {
        const layout_rec *rec = (const layout_rec *)(map + off);
        if (*(const uint64_t *)rec == 0) {
            off += LAYOUT_RECORD_ALIGN; /* PAD (F-LOG-4) */
            continue;
        }
        uint64_t size = end - off >= sizeof(*rec) ? layout_rec_size(rec) : 0;
        if (size < sizeof(*rec) || size > end - off) {
            printf("%" PRIu64 " unreadable record header (F-LOG-5): type %u, "
                   "length %" PRIu64 "; stopping\n", off,
                   size ? rec->type : 0, size);
            rc = EXIT_DAMAGED;
            break;
        }
        printf("%" PRIu64 " %s", off, type_name(rec->type));
        if (rec->type != 0 && !strcmp(type_name(rec->type), "UNKNOWN"))
            printf("(%u)", rec->type);
        printf(" seq=%" PRIu64 " len=%" PRIu64 "%s", rec->seq, size,
               layout_rec_verify(rec) ? "" : " BAD-CHECKSUM");
        dump_fields(map, end, off, rec);
        putchar('\n');
        shown++;
        off = layout_align_up(off + size, LAYOUT_RECORD_ALIGN);
    }
    munmap((void *)map, (size_t)end);
    return rc;
}

/* ---- verify ----------------------------------------------------------- */

static void print_problem(void *ctx, uint64_t offset, const char *rule,
                          const char *message)
{
    const char *dir = ctx;
    printf("%s: offset %" PRIu64 ": %s: %s\n", dir, offset, rule, message);
}

/* When libsutra cannot open the file, say which rule the header or the
 * meta slots break. */
static int diagnose_unopenable(const inspect_args *a, int open_rc)
{
    raw_file f;
    if (raw_open(a->dir, &f) != 0)
        return report_error(a->dir, "cannot open storage.dat", open_rc);
    layout_header h;
    layout_meta m0, m1;
    raw_read(&f, &h, sizeof(h), LAYOUT_HEADER_OFFSET);
    raw_read(&f, &m0, sizeof(m0), LAYOUT_META_OFFSET_0);
    raw_read(&f, &m1, sizeof(m1), LAYOUT_META_OFFSET_1);
    close(f.fd);
    const char *why = NULL;
    if (layout_header_check(&h, f.size, &why) != 0)
        printf("%s: offset 0: %s\n", a->dir, why);
    else if (layout_meta_pick(&m0, &m1) < 0)
        printf("%s: offset %u: F-META-4: no valid meta slot\n", a->dir,
               LAYOUT_META_OFFSET_0);
    else
        printf("%s: cannot open storage.dat: %s\n", a->dir,
               sutra_strerror(open_rc));
    return EXIT_DAMAGED;
}

static int cmd_verify(const inspect_args *a)
{
    sutra_db *db;
    int rc = sutra_open(a->dir, NULL, &db);
    if (rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION)
        return diagnose_unopenable(a, rc);
    if (rc)
        return report_error(a->dir, "cannot open storage.dat", rc);
    struct sutra_snapshot snap;
    rc = a->has_generation ? sutra_snapshot_at(db, a->generation, &snap)
                           : sutra_snapshot(db, &snap);
    if (rc) {
        sutra_close(db);
        return report_error(a->dir, "cannot take a snapshot", rc);
    }
    sutra_verify_options o = {.flags = a->all ? SUTRA_VERIFY_ALL : 0,
                              .problem = print_problem,
                              .ctx = (void *)a->dir};
    sutra_verify_report r;
    rc = sutra_verify(&snap, &o, &r);
    sutra_close(db);
    if (rc == 0) {
        printf("%s: clean at generation %" PRIu64 ": %" PRIu64 " records, %" PRIu64
               " commits, %" PRIu64 " nodes, %" PRIu64 " log bytes\n", a->dir,
               r.generation, r.records, r.commits, r.nodes, r.bytes);
        return 0;
    }
    if (rc != SUTRA_ECORRUPT)
        return report_error(a->dir, "cannot verify", rc);
    if (a->all)
        printf("%s: %" PRIu64 " problem%s at generation %" PRIu64
               "; the first at offset %" PRIu64 " (%s)\n", a->dir, r.problems,
               r.problems == 1 ? "" : "s", r.generation, r.offset, r.rule);
    return EXIT_DAMAGED;
}

/* ---- follow ----------------------------------------------------------- */

static volatile sig_atomic_t follow_stop;

static void on_signal(int sig)
{
    (void)sig;
    follow_stop = 1;
}

/* Where follow is: the last seq printed, to show each generation's new
 * seqs as a range. */
typedef struct follow_state {
    uint64_t prev_seq;
} follow_state;

/* reader_history_visit: one line for generation g. */
static int print_generation(void *ctx, uint64_t g, int rc,
                            const struct sutra_snapshot *s)
{
    follow_state *fs = ctx;
    if (rc) {
        printf("generation %" PRIu64 ": (%s)\n", g, sutra_strerror(rc));
        return 0;
    }
    sutra_stats st;
    sutra_stats_get(s, &st);
    char when[48];
    format_time(st.commit_ns, when, sizeof(when));
    printf("generation %" PRIu64 " at %s: ", g, when);
    if (st.last_seq > fs->prev_seq)
        printf("seqs %" PRIu64 "..%" PRIu64 ", ", fs->prev_seq + 1, st.last_seq);
    else
        printf("no seqs, ");
    printf("concepts %" PRIu64 ", versions %" PRIu64 ", tombstones %" PRIu64
           ", associations %" PRIu64 ", nodes %" PRIu64 ", committed end %" PRIu64
           "\n", st.concept_count, st.version_count, st.tombstone_count,
           st.assoc_count, st.node_count, st.committed_end);
    fs->prev_seq = st.last_seq;
    return 0;
}

static int cmd_follow(const inspect_args *a)
{
    sutra_db *db;
    struct sutra_snapshot snap;
    int rc = open_snapshot(a, &db, &snap);
    if (rc)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: interrupt the wait */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t seen = snap.generation, printed = 0;
    follow_state fs = {.prev_seq = snap.last_seq};
    const char *what = "wait";
    printf("following %s from generation %" PRIu64 "\n", a->dir, seen);
    fflush(stdout);
    while (!follow_stop && (!a->has_count || printed < a->count)) {
        rc = sutra_wait_generation(db, seen + 1, 200);
        if (rc == SUTRA_ETIMEDOUT)
            continue;
        if (rc)
            break;
        /* Everything published since the last wake-up, for one walk of
         * the commit chain however many generations that is. */
        uint64_t now = sutra_generation(db), last = now;
        if (a->has_count && a->count - printed < now - seen)
            last = seen + (a->count - printed);
        rc = reader_snapshots_between(db, seen + 1, last, print_generation,
                                      &fs);
        if (rc) {
            what = "cannot read the new generations";
            break;
        }
        printed += last - seen;
        seen = now;
        fflush(stdout);
    }
    sutra_close(db);
    return rc && rc != SUTRA_ETIMEDOUT ? report_error(a->dir, what, rc) : 0;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
                      !strcmp(argv[1], "help"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("sutra-inspect %d.%d.%d (format %u.%u)\n", SUTRA_VERSION_MAJOR,
               SUTRA_VERSION_MINOR, SUTRA_VERSION_PATCH, LAYOUT_FORMAT_MAJOR,
               LAYOUT_FORMAT_MINOR);
        return 0;
    }
    inspect_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    static const struct {
        const char *name, *options;
        int (*run)(const inspect_args *);
    } commands[] = {
        {"header", "", cmd_header}, {"stats", "jg", cmd_stats},
        {"dump", "flg", cmd_dump},  {"verify", "ag", cmd_verify},
        {"follow", "c", cmd_follow},
    };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(a.command, commands[i].name) != 0)
            continue;
        rc = check_options(&a, commands[i].options);
        return rc ? rc : commands[i].run(&a);
    }
    return usage_error("unknown command '%s'", a.command);
}
