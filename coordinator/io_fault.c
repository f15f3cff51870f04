/*
 * coordinator/io_fault.c — the fault-injecting coord_io of io_fault.h.
 *
 * Failures are armed per kind of operation and fire on an ordinal counted
 * from the moment they were armed.  Power loss is simulated with an undo
 * log: every pwrite, extend and in-place store since the last successful
 * sync records what it replaced (the old bytes, the old word, the old file
 * size).  A successful sync empties the log — those operations are on disk.
 * A failed one keeps it: nothing may be assumed durable after a failed
 * fsync (on Linux the kernel may already have marked the pages clean).
 * Such a lost operation is on the disk again, page by page, once a later
 * sync that succeeds writes its pages (the kernel writes whole pages, as
 * memory holds them, when a later write dirtied them again).
 * A ranged sync (pwrite_sync, sync_range) empties nothing; it pins the
 * pages of its range: at the cut, each keeps at least the operations
 * logged before the pin.
 * At the cut, the log is walked from newest to oldest and each operation
 * the chosen mode says never reached the disk is rewound, so each byte ends
 * up as it was at some point of its own history: exactly what a disk that
 * writes pages back in any order can hold.
 *
 * Every table is used by tests only; it holds a mutex so that a committer
 * thread and a test thread can share it.
 */
#include "coordinator/io_fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096u
#define SIZE_KEY 0xFFFFFFFFFFFFFFFFull /* the file size's own "page"      */
#define STORE_KEY_BIT (1ull << 63)     /* a store whose file offset is
                                          unknown: keyed by its address  */

enum undo_kind { UNDO_PWRITE, UNDO_EXTEND, UNDO_STORE64, UNDO_STORE32 };

typedef struct undo {
    enum undo_kind kind;
    int fd;              /* pwrite/extend; -1 once closed                  */
    uint64_t off, len;   /* pwrite: range; extend: unused                   */
    uint64_t old_size;   /* size before this op, if it grew the file       */
    bool grew;
    uint8_t *old;        /* pwrite: the bytes it replaced                   */
    void *word;          /* store: the word in the mapping                 */
    uint64_t old_word;
    uint64_t word_off;   /* store: the word's file offset, UINT64_MAX when
                            it could not be resolved                       */
} undo;

/* Pages written to the disk by a sync that succeeded: a sorted list (a
 * whole-file sync: every page an op of the log touched) or one range (a
 * ranged sync).  The kernel writes whole pages, so each such page reaches
 * the disk as it is in memory now, lost bytes included. */
typedef struct synced_pages {
    const uint64_t *list;
    size_t n;
    uint64_t first, last; /* the range, when list is NULL */
    /* or, when `pins` is set: the pages a ranged sync made log op
     * `op_index` (1-based) durable on */
    const struct coord_io_fault *pins;
    uint64_t op_index;
} synced_pages;

typedef struct arm {
    uint64_t at;         /* ordinal that fires; 0 = not armed              */
    int err;
    bool sticky;
} arm;

struct coord_io_fault {
    coord_io io;         /* first: hooks cast coord_io * back to this      */
    pthread_mutex_t lock;
    uint64_t rng;
    uint64_t count[COORD_FAULT_KINDS];
    uint64_t total;
    uint64_t injected;
    uint64_t syncs_done; /* syncs (full or ranged) that returned 0        */
    arm fail[COORD_FAULT_KINDS];
    arm shortw;
    uint64_t crash_at;   /* total ordinal; 0 = none                         */
    bool dead;
    undo *log;
    size_t log_len, log_cap;
    undo *lost;          /* covered by a failed sync and not yet rewritten
                            and synced: still old on the disk              */
    size_t lost_len, lost_cap;
    struct pin {         /* a ranged sync made ops 1..upto of the log
                            durable on page `key` (SIZE_KEY included)      */
        uint64_t key, upto;
    } *pins;
    size_t pins_len, pins_cap;
    uintptr_t map_start, map_end; /* the mapping last resolved           */
    uint64_t map_off;
};

/* ---- helpers ---------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t rnd(coord_io_fault *f)
{
    f->rng = mix64(f->rng);
    return f->rng;
}

static coord_io_fault *of(coord_io *io)
{
    return (coord_io_fault *)io;
}

/* Count an operation of `kind` and decide its fate: 0 = go ahead, or the
 * errno it must fail with.  Caller holds the lock. */
static int decide(coord_io_fault *f, enum coord_fault_kind kind)
{
    uint64_t n = ++f->count[kind];
    uint64_t t = ++f->total;
    if (f->dead || (f->crash_at && t >= f->crash_at)) {
        f->dead = true;
        f->injected++;
        return EIO;
    }
    arm *a = &f->fail[kind];
    if (a->at && (n == a->at || (a->sticky && n > a->at))) {
        f->injected++;
        return a->err;
    }
    return 0;
}

static int push(undo **list, size_t *len, size_t *cap, const undo *u)
{
    if (*len == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        undo *l = realloc(*list, c * sizeof(*l));
        if (!l)
            return ENOMEM;
        *list = l;
        *cap = c;
    }
    (*list)[(*len)++] = *u;
    return 0;
}

static int log_push(coord_io_fault *f, const undo *u)
{
    return push(&f->log, &f->log_len, &f->log_cap, u);
}

static void log_clear(coord_io_fault *f)
{
    for (size_t i = 0; i < f->log_len; i++)
        free(f->log[i].old);
    f->log_len = 0;
    f->pins_len = 0; /* they name ops of the log */
}

static int pin_push(coord_io_fault *f, uint64_t key)
{
    if (f->pins_len == f->pins_cap) {
        size_t c = f->pins_cap ? f->pins_cap * 2 : 64;
        struct pin *p = realloc(f->pins, c * sizeof(*p));
        if (!p)
            return ENOMEM;
        f->pins = p;
        f->pins_cap = c;
    }
    f->pins[f->pins_len++] = (struct pin){ key, f->log_len };
    return 0;
}

static uint64_t store_key(const undo *u);

/* The newest pin of page `key`: ops 1..that are durable there (0 = none). */
static uint64_t pin_of(const coord_io_fault *f, uint64_t key)
{
    uint64_t upto = 0;
    for (size_t i = 0; i < f->pins_len; i++)
        if (f->pins[i].key == key && f->pins[i].upto > upto)
            upto = f->pins[i].upto;
    return upto;
}

/* Whether a pin covers every page log op `i` (1-based) touched. */
static bool op_pinned(const coord_io_fault *f, const undo *u, uint64_t i)
{
    switch (u->kind) {
    case UNDO_PWRITE:
        if (u->grew && pin_of(f, SIZE_KEY) < i)
            return false;
        if (u->fd >= 0)
            for (uint64_t pg = u->off / PAGE;
                 u->len && pg <= (u->off + u->len - 1) / PAGE; pg++)
                if (pin_of(f, pg) < i)
                    return false;
        return true;
    case UNDO_EXTEND:
        return pin_of(f, SIZE_KEY) >= i;
    default:
        return pin_of(f, store_key(u)) >= i;
    }
}

/* Drop the log ops the pins made wholly durable — nothing can rewind them
 * any more, not even a later failed sync (mark_lost) — and renumber the
 * pins for the ops that remain (an op only partly pinned keeps its pins). */
static void drop_pinned(coord_io_fault *f)
{
    uint64_t *kept_upto = malloc((f->log_len + 1) * sizeof(*kept_upto));
    if (!kept_upto)
        return; /* keep them all: the pins still apply */
    size_t kept = 0;
    kept_upto[0] = 0;
    for (size_t i = 0; i < f->log_len; i++) {
        if (op_pinned(f, &f->log[i], i + 1))
            free(f->log[i].old);
        else
            f->log[kept++] = f->log[i];
        kept_upto[i + 1] = kept; /* ops 1..i+1 became ops 1..kept */
    }
    size_t pins = 0;
    for (size_t i = 0; i < f->pins_len; i++) {
        struct pin p = f->pins[i];
        p.upto = kept_upto[p.upto];
        if (p.upto)
            f->pins[pins++] = p;
    }
    f->log_len = kept;
    f->pins_len = pins;
    free(kept_upto);
}

/* A ranged sync of [off, off + len) succeeded: every page it overlaps is
 * on disk as it is now (the kernel writes whole pages), and so is the file
 * size (O_DSYNC syncs what is needed to read the data back). */
static void settle_lost(coord_io_fault *f, const synced_pages *sp);

static int pin_range(coord_io_fault *f, uint64_t off, uint64_t len)
{
    int rc = pin_push(f, SIZE_KEY);
    for (uint64_t pg = off / PAGE; !rc && len && pg <= (off + len - 1) / PAGE;
         pg++)
        rc = pin_push(f, pg);
    if (!rc)
        drop_pinned(f);
    if (!rc && len) {
        synced_pages sp = { .first = off / PAGE,
                            .last = (off + len - 1) / PAGE };
        settle_lost(f, &sp);
    }
    return rc;
}

static void lost_clear(coord_io_fault *f)
{
    for (size_t i = 0; i < f->lost_len; i++)
        free(f->lost[i].old);
    f->lost_len = 0;
}

/* The file offset of a word in a file mapping of this process, from
 * /proc/self/maps (cached: the store maps its file once).  UINT64_MAX when
 * the address is in no file mapping. */
static uint64_t word_offset(coord_io_fault *f, const void *word)
{
    uintptr_t a = (uintptr_t)word;
    if (a < f->map_start || a >= f->map_end) {
        FILE *maps = fopen("/proc/self/maps", "r");
        if (!maps)
            return UINT64_MAX;
        char line[512];
        f->map_start = f->map_end = 0;
        while (fgets(line, sizeof(line), maps)) {
            unsigned long start, end, off;
            if (sscanf(line, "%lx-%lx %*s %lx", &start, &end, &off) == 3 &&
                a >= start && a < end) {
                f->map_start = start;
                f->map_end = end;
                f->map_off = off;
                break;
            }
        }
        fclose(maps);
        if (a < f->map_start || a >= f->map_end)
            return UINT64_MAX;
    }
    return f->map_off + (a - f->map_start);
}

static uint64_t pin_of(const coord_io_fault *f, uint64_t key);

static bool page_synced(const synced_pages *sp, uint64_t page)
{
    if (sp->pins)
        return pin_of(sp->pins, page) >= sp->op_index;
    if (!sp->list)
        return page >= sp->first && page <= sp->last;
    size_t lo = 0, hi = sp->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->list[mid] < page)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sp->n && sp->list[lo] == page;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Keep of lost write `u` only the pages no sync has written since: a
 * lost op whose pages were all written again is on the disk now; one
 * partly written is cut into the runs of pages that were not.  Appends
 * what stays lost to `out` (*n entries).  Returns ENOMEM (then `u` stays
 * lost whole: pessimistic). */
static int settle_write(const undo *u, const synced_pages *sp, undo **out,
                        size_t *n, size_t *cap)
{
    uint64_t end = u->off + u->len;
    for (uint64_t at = u->off; at < end;) {
        uint64_t page = at / PAGE, next = (page + 1) * PAGE;
        if (next > end)
            next = end;
        if (page_synced(sp, page)) {
            at = next;
            continue;
        }
        uint64_t run = at; /* a run of pages still lost */
        while (next < end && !page_synced(sp, next / PAGE))
            next = next + PAGE < end ? next + PAGE : end;
        undo piece = *u;
        piece.off = run;
        piece.len = next - run;
        /* a sync that wrote pages wrote the size too (O_DSYNC and
         * fdatasync both); a pinned op's size is durable if pinned */
        piece.grew = u->grew && sp->pins &&
                     pin_of(sp->pins, SIZE_KEY) < sp->op_index;
        piece.old = malloc(piece.len);
        if (!piece.old)
            return ENOMEM;
        memcpy(piece.old, u->old + (run - u->off), piece.len);
        if (push(out, n, cap, &piece) != 0) {
            free(piece.old);
            return ENOMEM;
        }
        at = next;
    }
    return 0;
}

/* A sync wrote the pages of `sp` (and the file size): the lost operations
 * on them are on the disk now. */
static void settle_lost(coord_io_fault *f, const synced_pages *sp)
{
    if (!f->lost_len)
        return;
    undo *kept = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < f->lost_len; i++) {
        undo *u = &f->lost[i];
        bool settled;
        if (u->kind == UNDO_PWRITE && u->fd >= 0) {
            size_t before = n;
            if (settle_write(u, sp, &kept, &n, &cap) != 0) {
                for (size_t k = before; k < n; k++)
                    free(kept[k].old);
                n = before;
                settled = false;
            } else {
                settled = true; /* what stays lost was copied */
            }
        } else if (u->kind == UNDO_EXTEND) {
            settled = true;
        } else if (u->kind == UNDO_STORE64 || u->kind == UNDO_STORE32) {
            settled = u->word_off != UINT64_MAX &&
                      page_synced(sp, u->word_off / PAGE);
        } else {
            settled = false;
        }
        if (settled) {
            free(u->old);
        } else if (push(&kept, &n, &cap, u) != 0) {
            free(u->old); /* out of memory: forget it (as mark_lost does) */
        }
    }
    free(f->lost);
    f->lost = kept;
    f->lost_len = n;
    f->lost_cap = cap;
}

/* A whole-file sync succeeded: every page an op of the log touched was
 * written (pages dirtied only by lost ops were marked clean by the failed
 * sync and are not). */
static uint64_t for_each_key(const undo *u, void (*fn)(void *, uint64_t),
                             void *c);

typedef struct key_list {
    uint64_t *keys;
    size_t n;
} key_list;

static void key_add(void *ctx, uint64_t key)
{
    key_list *l = ctx;
    l->keys[l->n++] = key;
}

static void settle_lost_by_log(coord_io_fault *f)
{
    if (!f->lost_len)
        return;
    uint64_t n = 0;
    for (size_t i = 0; i < f->log_len; i++)
        n += for_each_key(&f->log[i], NULL, NULL);
    /* every key an op touched: its pages, and keys no page of a lost
     * write can equal (the size, stores of unknown offset) */
    key_list l = { malloc((n + 1) * sizeof(uint64_t)), 0 };
    if (!l.keys)
        return; /* keep them lost: pessimistic */
    for (size_t i = 0; i < f->log_len; i++)
        (void)for_each_key(&f->log[i], key_add, &l);
    qsort(l.keys, l.n, sizeof(*l.keys), cmp_u64);
    synced_pages sp = { .list = l.keys, .n = l.n };
    settle_lost(f, &sp);
    free(l.keys);
}

/* A failed sync: what it covered may never reach the disk, even after a
 * later sync succeeds (the kernel may have marked the pages clean). */
static void mark_lost(coord_io_fault *f)
{
    for (size_t i = 0; i < f->log_len; i++) {
        undo *u = &f->log[i];
        /* what a ranged sync made durable before stays so (pins) */
        synced_pages sp = { .pins = f, .op_index = i + 1 };
        bool lost;
        if (u->kind == UNDO_PWRITE && u->fd >= 0) {
            size_t before = f->lost_len;
            if (settle_write(u, &sp, &f->lost, &f->lost_len,
                             &f->lost_cap) == 0) {
                free(u->old); /* its lost pages were copied */
                continue;
            }
            for (size_t k = before; k < f->lost_len; k++)
                free(f->lost[k].old);
            f->lost_len = before;
            lost = true;
        } else if (u->kind == UNDO_EXTEND) {
            lost = pin_of(f, SIZE_KEY) < i + 1;
        } else {
            lost = pin_of(f, store_key(u)) < i + 1;
        }
        if (!lost)
            free(u->old);
        else if (push(&f->lost, &f->lost_len, &f->lost_cap, u) != 0)
            free(u->old); /* out of memory: forget it */
    }
    f->log_len = 0;
    f->pins_len = 0; /* they named ops of the log */
}

static uint64_t file_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Remember what [off, off + len) holds now (zeros past the end). */
static int remember_write(coord_io_fault *f, int fd, uint64_t off,
                          uint64_t len)
{
    undo u = { .kind = UNDO_PWRITE, .fd = fd, .off = off, .len = len };
    u.old = calloc(1, len ? len : 1);
    if (!u.old)
        return ENOMEM;
    uint64_t size = file_size(fd);
    if (off < size) {
        uint64_t n = size - off < len ? size - off : len;
        if (pread(fd, u.old, n, (off_t)off) != (ssize_t)n) {
            free(u.old);
            return errno ? errno : EIO;
        }
    }
    if (off + len > size) {
        u.grew = true;
        u.old_size = size;
    }
    int rc = log_push(f, &u);
    if (rc)
        free(u.old);
    return rc;
}

/* ---- hooks ------------------------------------------------------------ */

static int f_open(coord_io *io, const char *path, int flags, unsigned mode,
                  int *fd)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    bool dead = f->dead;
    pthread_mutex_unlock(&f->lock);
    if (dead)
        return EIO;
    return coord_io_posix()->open(coord_io_posix(), path, flags, mode, fd);
}

static int f_pwrite(coord_io *io, int fd, const void *buf, size_t len,
                    uint64_t offset)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    int rc = decide(f, COORD_FAULT_PWRITE);
    size_t keep = len;
    if (!rc && f->shortw.at && f->count[COORD_FAULT_PWRITE] == f->shortw.at) {
        keep = len ? (size_t)(rnd(f) % len) : 0;
        rc = f->shortw.err;
        f->injected++;
    }
    if (keep > 0 && (!rc || keep < len)) {
        int lrc = remember_write(f, fd, offset, keep);
        if (!lrc)
            lrc = coord_io_posix()->pwrite(coord_io_posix(), fd, buf, keep, offset);
        if (lrc)
            rc = lrc;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int f_extend(coord_io *io, int fd, uint64_t old_size, uint64_t new_size)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    int rc = decide(f, COORD_FAULT_EXTEND);
    if (!rc) {
        undo u = { .kind = UNDO_EXTEND, .fd = fd, .grew = true,
                   .old_size = file_size(fd) };
        rc = log_push(f, &u);
    }
    if (!rc)
        rc = coord_io_posix()->extend(coord_io_posix(), fd, old_size, new_size);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int f_sync(coord_io *io, int fd)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    int rc = decide(f, COORD_FAULT_SYNC);
    if (!rc)
        rc = coord_io_posix()->sync(coord_io_posix(), fd);
    if (!rc) {
        f->syncs_done++;
        settle_lost_by_log(f);
        log_clear(f); /* everything so far is on disk */
    } else if (!f->dead) {
        /* a sync that failed; one refused because the process "died"
         * before making it leaves the writes dirty in the page cache */
        mark_lost(f);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* A sync of the pages of [offset, offset + len) only, as they are. */
static int f_sync_range(coord_io *io, int fd, const void *addr,
                        uint64_t offset, uint64_t len)
{
    (void)addr;
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    int rc = decide(f, COORD_FAULT_SYNC);
    if (!rc)
        rc = coord_io_posix()->sync(coord_io_posix(), fd);
    if (!rc) {
        f->syncs_done++;
        rc = pin_range(f, offset, len);
    } else if (!f->dead)
        mark_lost(f); /* as a failed fdatasync: assume the worst */
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Two operations, as the kernel does them: the write (a crash may come
 * between it and the sync), then a sync of its own pages only. */
static int f_pwrite_sync(coord_io *io, int fd, const void *buf, size_t len,
                         uint64_t offset)
{
    int rc = f_pwrite(io, fd, buf, len, offset);
    return rc ? rc : f_sync_range(io, fd, NULL, offset, len);
}

static int f_sync_dir(coord_io *io, const char *path)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    bool dead = f->dead;
    pthread_mutex_unlock(&f->lock);
    return dead ? EIO : coord_io_posix()->sync_dir(coord_io_posix(), path);
}

static int f_store64(coord_io *io, uint64_t *word, uint64_t value)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    int rc = decide(f, COORD_FAULT_STORE);
    if (!rc) {
        undo u = { .kind = UNDO_STORE64, .fd = -1, .word = word,
                   .old_word = __atomic_load_n(word, __ATOMIC_RELAXED),
                   .word_off = word_offset(f, word) };
        rc = log_push(f, &u);
    }
    if (!rc)
        __atomic_store_n(word, value, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int f_store32(coord_io *io, uint32_t *word, uint32_t value)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    int rc = decide(f, COORD_FAULT_STORE);
    if (!rc) {
        undo u = { .kind = UNDO_STORE32, .fd = -1, .word = word,
                   .old_word = __atomic_load_n(word, __ATOMIC_RELAXED),
                   .word_off = word_offset(f, word) };
        rc = log_push(f, &u);
    }
    if (!rc)
        __atomic_store_n(word, value, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Writes through a closed descriptor cannot be rewound any more; the
 * coordinator syncs every file before closing it, so none are expected. */
static void f_close(coord_io *io, int fd)
{
    coord_io_fault *f = of(io);
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->log_len; i++)
        if (f->log[i].fd == fd)
            f->log[i].fd = -1;
    for (size_t i = 0; i < f->lost_len; i++)
        if (f->lost[i].fd == fd)
            f->lost[i].fd = -1;
    pthread_mutex_unlock(&f->lock);
    coord_io_posix()->close(coord_io_posix(), fd);
}

/* ---- power loss ------------------------------------------------------- */

/*
 * PAGES mode: each page (and the file size, as one more "page") keeps the
 * first `keep` of the `ops` logged operations that touched it, `keep`
 * uniform in 0..ops — a point of its own history, so a page touched once
 * is kept or lost with even odds, whatever else was logged.
 */
typedef struct page_fate {
    uint64_t key;        /* 0 = empty slot; keys are stored + 1            */
    uint64_t pin;        /* ops 1..pin are durable here (a ranged sync)    */
    uint32_t ops;        /* operations that touched the page              */
    uint32_t pinned;     /* ...of which 1..pin                             */
    uint32_t left;       /* not yet visited, newest first                  */
    uint32_t keep;
} page_fate;

typedef struct cut {
    enum coord_power_mode mode;
    uint64_t prefix;     /* PREFIX modes: ops 1..prefix survive            */
    uint64_t torn_keep;  /* PREFIX_TORN: bytes of op prefix+1 that survive  */
    uint64_t salt;       /* PAGES: per-page choices                          */
    page_fate *pages;    /* PAGES, or any mode with pins: open addressing,
                            `mask` + 1 slots                                */
    uint64_t mask;
    uint64_t cur;        /* the op being counted (count_touch)              */
} cut;

static page_fate *fate_of(cut *c, uint64_t key)
{
    uint64_t stored = key + 1; /* SIZE_KEY + 1 wraps to 0: remap it */
    if (stored == 0)
        stored = 1ull << 62;
    for (uint64_t i = mix64(stored) & c->mask;; i = (i + 1) & c->mask) {
        page_fate *p = &c->pages[i];
        if (p->key == stored || p->key == 0) {
            p->key = stored;
            return p;
        }
    }
}

/* Whether a ranged sync made op `i` durable on page `key`. */
static bool pinned(cut *c, uint64_t i, uint64_t key)
{
    return c->pages && fate_of(c, key)->pin >= i;
}

/* Whether op `i` (1-based) survived on page `key`.  PAGES mode visits each
 * (op, page) pair exactly once, newest op first; its `keep` is never below
 * the page's pinned ops. */
static bool survived(cut *c, uint64_t i, uint64_t key)
{
    if (c->mode == COORD_POWER_PAGES) {
        page_fate *p = fate_of(c, key);
        return p->left-- <= p->keep;
    }
    return i <= c->prefix || pinned(c, i, key);
}

/* Stores and pwrites to the same file page share its fate. */
static uint64_t store_key(const undo *u)
{
    if (u->word_off != UINT64_MAX)
        return u->word_off / PAGE;
    return STORE_KEY_BIT | ((uintptr_t)u->word / PAGE);
}

/* Every page key an operation touches, in the order rewind_op visits them:
 * `fn` is called once for each. */
static uint64_t for_each_key(const undo *u, void (*fn)(void *, uint64_t),
                             void *c)
{
    uint64_t n = 0;
    switch (u->kind) {
    case UNDO_PWRITE:
        if (u->grew && fn)
            fn(c, SIZE_KEY);
        n += u->grew;
        if (u->fd >= 0)
            for (uint64_t pg = u->off / PAGE;
                 u->len && pg <= (u->off + u->len - 1) / PAGE; pg++, n++)
                if (fn)
                    fn(c, pg);
        break;
    case UNDO_EXTEND:
        if (fn)
            fn(c, SIZE_KEY);
        n++;
        break;
    default:
        if (fn)
            fn(c, store_key(u));
        n++;
        break;
    }
    return n;
}

static void count_touch(void *ctx, uint64_t key)
{
    cut *c = ctx;
    page_fate *p = fate_of(c, key);
    p->ops++;
    p->left++;
    if (c->cur <= p->pin)
        p->pinned++;
}

/* Returns whether the op's first page was rewound. */
static bool rewind_write(const undo *u, cut *c, uint64_t i,
                         uint64_t *truncate_to)
{
    bool first_lost = false, first = true;
    if (u->grew) {
        first_lost = !survived(c, i, SIZE_KEY);
        first = false;
        if (first_lost && u->old_size < *truncate_to)
            *truncate_to = u->old_size;
    }
    if (u->fd < 0)
        return first_lost;
    bool torn_op = c->mode == COORD_POWER_PREFIX_TORN && i == c->prefix + 1;
    uint64_t from = u->off;
    uint64_t torn_from = from;
    if (torn_op)
        torn_from += c->torn_keep < u->len ? c->torn_keep : u->len;
    while (from < u->off + u->len) {
        uint64_t page_end = (from / PAGE + 1) * PAGE;
        uint64_t to = page_end < u->off + u->len ? page_end : u->off + u->len;
        bool lost = !survived(c, i, from / PAGE) ||
                    (torn_op && !pinned(c, i, from / PAGE));
        if (first) {
            first_lost = lost;
            first = false;
        }
        if (lost) {
            /* a torn op keeps its first torn_keep bytes */
            uint64_t w = torn_op && torn_from > from ? torn_from : from;
            if (w < to)
                (void)!pwrite(u->fd, u->old + (w - u->off), to - w, (off_t)w);
        }
        from = to;
    }
    return first_lost;
}

static bool rewind_op(const undo *u, cut *c, uint64_t i,
                      uint64_t *truncate_to, int *size_fd)
{
    bool lost = false;
    switch (u->kind) {
    case UNDO_PWRITE:
        lost = rewind_write(u, c, i, truncate_to);
        if (u->fd >= 0)
            *size_fd = u->fd;
        break;
    case UNDO_EXTEND:
        lost = !survived(c, i, SIZE_KEY);
        if (lost && u->old_size < *truncate_to)
            *truncate_to = u->old_size;
        if (u->fd >= 0)
            *size_fd = u->fd;
        break;
    case UNDO_STORE64:
        lost = !survived(c, i, store_key(u));
        if (lost)
            __atomic_store_n((uint64_t *)u->word, u->old_word, __ATOMIC_RELAXED);
        break;
    case UNDO_STORE32:
        lost = !survived(c, i, store_key(u));
        if (lost)
            __atomic_store_n((uint32_t *)u->word, (uint32_t)u->old_word,
                             __ATOMIC_RELAXED);
        break;
    }
    return lost;
}

/* Returns nonzero (ENOMEM) if PAGES mode could not get its table. */
static int choose_cut(coord_io_fault *f, enum coord_power_mode mode, cut *c)
{
    *c = (cut){ .mode = mode, .salt = rnd(f) };
    if (mode == COORD_POWER_PREFIX || mode == COORD_POWER_PREFIX_TORN)
        c->prefix = rnd(f) % (f->log_len + 1);
    if (mode == COORD_POWER_PREFIX_TORN && c->prefix < f->log_len) {
        const undo *u = &f->log[c->prefix];
        c->torn_keep = u->kind == UNDO_PWRITE && u->len ? rnd(f) % u->len : 0;
    }
    if (mode != COORD_POWER_PAGES && !f->pins_len)
        return 0;
    uint64_t touches = f->pins_len;
    for (size_t k = 0; k < f->log_len; k++)
        touches += for_each_key(&f->log[k], NULL, c);
    uint64_t slots = 16;
    while (slots < 2 * touches)
        slots *= 2;
    c->pages = calloc(slots, sizeof(*c->pages));
    if (!c->pages)
        return ENOMEM;
    c->mask = slots - 1;
    for (size_t k = 0; k < f->pins_len; k++) {
        page_fate *p = fate_of(c, f->pins[k].key);
        if (f->pins[k].upto > p->pin)
            p->pin = f->pins[k].upto;
    }
    for (size_t k = 0; k < f->log_len; k++) {
        c->cur = k + 1;
        (void)for_each_key(&f->log[k], count_touch, c);
    }
    for (uint64_t i = 0; mode == COORD_POWER_PAGES && i <= c->mask; i++) {
        page_fate *p = &c->pages[i];
        if (p->key)
            p->keep = p->pinned + (uint32_t)(mix64(c->salt ^ p->key) %
                                             ((uint64_t)(p->ops - p->pinned) + 1));
    }
    return 0;
}

uint64_t coord_io_fault_power_loss(coord_io_fault *f, enum coord_power_mode mode)
{
    pthread_mutex_lock(&f->lock);
    cut c;
    if (choose_cut(f, mode, &c) != 0) {
        /* no memory for the page table: lose everything unsynced */
        free(c.pages);
        c = (cut){ .mode = COORD_POWER_NOTHING };
    }
    uint64_t truncate_to = UINT64_MAX, rewound = 0;
    int size_fd = -1;
    /* newest first, so each byte ends at the state of its oldest rewound op */
    for (size_t k = f->log_len; k > 0; k--)
        rewound += rewind_op(&f->log[k - 1], &c, k, &truncate_to, &size_fd);
    free(c.pages);
    /* then what a failed sync lost and nothing rewrote since (older still) */
    cut all = { .mode = COORD_POWER_NOTHING };
    for (size_t k = f->lost_len; k > 0; k--) {
        rewind_op(&f->lost[k - 1], &all, k, &truncate_to, &size_fd);
        rewound++;
    }
    if (truncate_to != UINT64_MAX && size_fd >= 0)
        (void)!ftruncate(size_fd, (off_t)truncate_to);
    log_clear(f);
    lost_clear(f);
    f->dead = false;
    f->crash_at = 0;
    pthread_mutex_unlock(&f->lock);
    return rewound;
}

/* Bytes that were zero, changed outside the table (coordinator/io.h): an
 * op of the log whose old bytes are zeros, so that a cut rewinds them as
 * it would a write.  Recorded even after a simulated crash: the stores
 * were made, and nothing synced them. */
static void f_changed(coord_io *io, int fd, uint64_t offset, uint64_t len)
{
    coord_io_fault *f = of(io);
    undo u = { .kind = UNDO_PWRITE, .fd = fd, .off = offset, .len = len };
    u.old = calloc(1, len ? len : 1);
    if (!u.old)
        return;
    pthread_mutex_lock(&f->lock);
    if (log_push(f, &u))
        free(u.old);
    pthread_mutex_unlock(&f->lock);
}

/* ---- control ---------------------------------------------------------- */

int coord_io_fault_new(uint64_t seed, coord_io_fault **out)
{
    coord_io_fault *f = calloc(1, sizeof(*f));
    if (!f)
        return ENOMEM;
    f->io = (coord_io){ .open = f_open, .pwrite = f_pwrite, .extend = f_extend,
                        .sync = f_sync, .pwrite_sync = f_pwrite_sync,
                        .sync_range = f_sync_range,
                        .sync_dir = f_sync_dir,
                        .store64 = f_store64, .store32 = f_store32,
                        .close = f_close, .changed = f_changed, .ctx = f };
    pthread_mutex_init(&f->lock, NULL);
    f->rng = seed;
    *out = f;
    return 0;
}

void coord_io_fault_free(coord_io_fault *f)
{
    if (!f)
        return;
    log_clear(f);
    lost_clear(f);
    free(f->log);
    free(f->lost);
    free(f->pins);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

coord_io *coord_io_fault_io(coord_io_fault *f)
{
    return &f->io;
}

void coord_io_fault_fail(coord_io_fault *f, enum coord_fault_kind kind,
                         uint64_t nth, int err, bool sticky)
{
    pthread_mutex_lock(&f->lock);
    f->fail[kind] = (arm){ .at = f->count[kind] + (nth ? nth : 1), .err = err,
                           .sticky = sticky };
    pthread_mutex_unlock(&f->lock);
}

void coord_io_fault_short_write(coord_io_fault *f, uint64_t nth, int err)
{
    pthread_mutex_lock(&f->lock);
    f->shortw = (arm){ .at = f->count[COORD_FAULT_PWRITE] + (nth ? nth : 1),
                       .err = err };
    pthread_mutex_unlock(&f->lock);
}

void coord_io_fault_crash_at(coord_io_fault *f, uint64_t nth)
{
    pthread_mutex_lock(&f->lock);
    f->crash_at = f->total + (nth ? nth : 1);
    pthread_mutex_unlock(&f->lock);
}

void coord_io_fault_disarm(coord_io_fault *f)
{
    pthread_mutex_lock(&f->lock);
    memset(f->fail, 0, sizeof(f->fail));
    f->shortw = (arm){ 0 };
    f->crash_at = 0;
    pthread_mutex_unlock(&f->lock);
}

void coord_io_fault_revive(coord_io_fault *f)
{
    pthread_mutex_lock(&f->lock);
    f->dead = false;
    f->crash_at = 0;
    pthread_mutex_unlock(&f->lock);
}

bool coord_io_fault_crashed(coord_io_fault *f)
{
    pthread_mutex_lock(&f->lock);
    bool dead = f->dead;
    pthread_mutex_unlock(&f->lock);
    return dead;
}

static uint64_t locked_read(coord_io_fault *f, const uint64_t *v)
{
    pthread_mutex_lock(&f->lock);
    uint64_t x = *v;
    pthread_mutex_unlock(&f->lock);
    return x;
}

uint64_t coord_io_fault_count(coord_io_fault *f, enum coord_fault_kind kind)
{
    return locked_read(f, &f->count[kind]);
}

uint64_t coord_io_fault_total(coord_io_fault *f)
{
    return locked_read(f, &f->total);
}

uint64_t coord_io_fault_syncs_done(coord_io_fault *f)
{
    return locked_read(f, &f->syncs_done);
}

uint64_t coord_io_fault_injected(coord_io_fault *f)
{
    return locked_read(f, &f->injected);
}

uint64_t coord_io_fault_unsynced(coord_io_fault *f)
{
    pthread_mutex_lock(&f->lock);
    uint64_t n = f->log_len + f->lost_len;
    pthread_mutex_unlock(&f->lock);
    return n;
}
