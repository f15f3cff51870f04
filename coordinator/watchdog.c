/*
 * coordinator/watchdog.c — see watchdog.h.
 */
#include "coordinator/watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/log.h"

struct coord_watchdog {
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* CLOCK_MONOTONIC                            */
    bool disarmed;          /* guarded by lock                            */
    struct timespec until;
    unsigned limit_ms;
    const char *what;
    int status;
    pthread_t thread;
};

static void *watchdog_main(void *arg)
{
    coord_watchdog *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->disarmed) {
        if (pthread_cond_timedwait(&w->wake, &w->lock, &w->until) == ETIMEDOUT &&
            !w->disarmed) {
            coord_log_error("%s did not finish within %u ms; exiting now "
                            "with status %d", w->what, w->limit_ms, w->status);
            _exit(w->status);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int coord_watchdog_arm(unsigned limit_ms, const char *what, int status,
                       coord_watchdog **out)
{
    *out = NULL;
    coord_watchdog *w = calloc(1, sizeof(*w));
    if (!w)
        return ENOMEM;
    w->limit_ms = limit_ms;
    w->what = what;
    w->status = status;
    clock_gettime(CLOCK_MONOTONIC, &w->until);
    w->until.tv_sec += limit_ms / 1000u;
    w->until.tv_nsec += (long)(limit_ms % 1000u) * 1000000L;
    if (w->until.tv_nsec >= 1000000000L) {
        w->until.tv_sec++;
        w->until.tv_nsec -= 1000000000L;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->lock, NULL);
    int rc = pthread_create(&w->thread, NULL, watchdog_main, w);
    if (rc != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void coord_watchdog_disarm(coord_watchdog *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->disarmed = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
