/*
 * coordinator/prefault.c — the helper that faults mapping pages in ahead of
 * the log (coordinator/prefault.h).
 */
#include "coordinator/prefault.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "coordinator/log.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define PREFAULT_PAGE 4096u
#define PREFAULT_CHUNK (256u << 10) /* bytes per madvise: the lock is free between */

struct coord_prefault {
    uint8_t *map;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* Under `lock`: */
    uint64_t lo, hi;   /* [lo, hi) populated                                */
    uint64_t want;     /* populate up to here                               */
    uint64_t epoch;    /* bumped when [lo, hi) restarts elsewhere           */
    bool stop, failed;
};

static void *prefault_main(void *arg)
{
    coord_prefault *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && (p->failed || p->hi >= p->want))
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop)
            break;
        uint64_t from = p->hi, epoch = p->epoch;
        uint64_t to = p->want - from > PREFAULT_CHUNK ? from + PREFAULT_CHUNK
                                                      : p->want;
        to = (to + PREFAULT_PAGE - 1) / PREFAULT_PAGE * PREFAULT_PAGE;
        pthread_mutex_unlock(&p->lock);
        int rc = madvise(p->map + from, (size_t)(to - from), MADV_POPULATE_WRITE);
        int why = rc ? errno : 0;
        pthread_mutex_lock(&p->lock);
        if (why && why != EINTR && why != EAGAIN) {
            p->failed = true;
            coord_log(COORD_LOG_WARN,
                      "populating the mapping ahead of the log failed (%s); "
                      "groups are staged in memory from now on",
                      strerror(why));
        } else if (!why && p->epoch == epoch && p->hi == from) {
            p->hi = to;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int coord_prefault_start(uint8_t *map, coord_prefault **out)
{
    *out = NULL;
    coord_prefault *p = calloc(1, sizeof(*p));
    if (!p)
        return ENOMEM;
    p->map = map;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    int rc = pthread_create(&p->thread, NULL, prefault_main, p);
    if (rc) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return rc;
    }
    pthread_setname_np(p->thread, "sutra-prefault");
    *out = p;
    return 0;
}

void coord_prefault_want(coord_prefault *p, uint64_t from, uint64_t to)
{
    uint64_t page = from / PREFAULT_PAGE * PREFAULT_PAGE;
    pthread_mutex_lock(&p->lock);
    if (from < p->lo || from > p->hi) {
        p->lo = p->hi = page;
        p->epoch++;
    }
    /* Wake the helper only once less than half the window is ready, for
     * the whole window: small groups (single ops) then cost it one wake-up
     * per few MiB of log, not one per page.  Never past `to`, rounded
     * down: the page holding the file's end is whole (the file grows in
     * pages), the next one may not exist. */
    uint64_t half = from + (to > from ? (to - from) / 2 : 0);
    if (p->hi <= half) {
        p->want = to / PREFAULT_PAGE * PREFAULT_PAGE;
        if (p->hi < p->want && !p->failed)
            pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
}

uint64_t coord_prefault_ready(coord_prefault *p, uint64_t from)
{
    pthread_mutex_lock(&p->lock);
    uint64_t end = from >= p->lo && from < p->hi ? p->hi : from;
    pthread_mutex_unlock(&p->lock);
    return end;
}

void coord_prefault_stop(coord_prefault *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
