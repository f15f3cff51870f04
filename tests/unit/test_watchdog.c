/*
 * tests/unit/test_watchdog.c — coordinator/watchdog.c: a watchdog ends the
 * process with its status once its limit passes, and does nothing once
 * disarmed in time.  Each case runs in a forked child, so the _exit() it
 * tests ends the child, not the test.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "coordinator/watchdog.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait up to 10 s for the child; returns its exit status, or -1 if it had
 * to be killed (or did not exit normally). */
static int child_status(pid_t pid)
{
    uint64_t deadline = mono_ms() + 10000;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 || mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        usleep(2000);
    }
}

/* A step that never returns: the watchdog ends the process with its
 * status, once the limit has passed and not before. */
static void test_watchdog_fires_on_a_step_that_hangs(void **state)
{
    (void)state;
    uint64_t t0 = mono_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        coord_watchdog *w;
        if (coord_watchdog_arm(150, "a test step", 42, &w) != 0)
            _exit(3);
        for (;;)
            pause();
    }
    assert_int_equal(child_status(pid), 42);
    assert_true(mono_ms() - t0 >= 150);
}

/* Disarmed in time: the process goes on and exits its own way, also after
 * the limit would have passed. */
static void test_watchdog_disarmed_in_time_does_nothing(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        coord_watchdog *w;
        if (coord_watchdog_arm(200, "a test step", 42, &w) != 0)
            _exit(3);
        usleep(20000);
        coord_watchdog_disarm(w);
        usleep(400000);
        _exit(7);
    }
    assert_int_equal(child_status(pid), 7);

    /* In this process: disarming joins the thread without waiting out the
     * limit. */
    uint64_t t0 = mono_ms();
    coord_watchdog *w;
    assert_int_equal(coord_watchdog_arm(60000, "a test step", 42, &w), 0);
    coord_watchdog_disarm(w);
    assert_true(mono_ms() - t0 < 2000);
    coord_watchdog_disarm(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watchdog_fires_on_a_step_that_hangs),
        cmocka_unit_test(test_watchdog_disarmed_in_time_does_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
