/*
 * tests/integration/harness.c — process plumbing for the multi-process
 * tests: temp directories, starting and stopping the real coordinator,
 * forking writer and reader processes, and deterministic test data whose
 * every byte a reader can check.
 */
#include "tests/integration/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *harness_tmpdir(void)
{
    char *dir = strdup("/tmp/sutra-test-XXXXXX");
    if (!dir || !mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    return dir;
}

void harness_rmdir(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.log'", dir, dir);
    if (system(cmd) != 0)
        fprintf(stderr, "harness: could not remove %s\n", dir);
    free(dir);
}

/* $SUTRA_COORDINATOR, or bin/sutra-coordinator beside the test's own
 * tests/ directory, so a test binary runs from any directory. */
const char *harness_coordinator_path(void)
{
    const char *p = getenv("SUTRA_COORDINATOR");
    if (p && *p)
        return p;
    static char path[PATH_MAX + 32];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;
    if (n <= 0)
        return "build/bin/sutra-coordinator";
    self[n] = '\0';
    for (int up = 0; up < 2 && (slash = strrchr(self, '/')); up++)
        *slash = '\0';
    snprintf(path, sizeof(path), "%s/bin/sutra-coordinator", self);
    return path;
}

static int ping_until_up(void *arg)
{
    const char *dir = arg;
    sutra_client_options opts = { .timeout_ms = 500, .resend_ms = 200 };
    uint64_t deadline = harness_now_ms() + 10000;
    while (harness_now_ms() < deadline) {
        sutra_client *c = NULL;
        if (sutra_client_connect(dir, &opts, &c) == 0) {
            int rc = sutra_ping(c);
            sutra_client_close(c);
            if (rc == 0)
                return 0;
        }
        usleep(20000);
    }
    return 1;
}

/* The log of every coordinator started and not yet stopped, so a stop
 * that goes wrong can show why. */
#define MAX_COORDINATORS 16
static struct {
    pid_t pid;
    char log[512];
} started[MAX_COORDINATORS];

static void remember_log(pid_t pid, const char *log_path)
{
    for (int i = 0; i < MAX_COORDINATORS; i++)
        if (started[i].pid == 0) {
            started[i].pid = pid;
            snprintf(started[i].log, sizeof(started[i].log), "%s",
                     log_path);
            return;
        }
}

static void show_log(const char *log_path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", log_path);
    if (system(cmd) != 0)
        fprintf(stderr, "harness: no log\n");
}

/* Forget pid's log; print it first when the stop did not go as asked. */
static void settle_log(pid_t pid, int sig, int status)
{
    for (int i = 0; i < MAX_COORDINATORS; i++) {
        if (started[i].pid != pid)
            continue;
        bool expected = sig == SIGKILL ? status == 128 + SIGKILL
                                       : status == 0;
        if (!expected) {
            fprintf(stderr, "harness: coordinator %d stopped with status "
                    "%d after signal %d; log %s:\n", (int)pid, status, sig,
                    started[i].log);
            show_log(started[i].log);
        }
        started[i].pid = 0;
        return;
    }
}

/* In a child just forked by `parent`: die with it.  A test that fails an
 * assertion goes on to its next test, and the test binary then exits
 * without stopping what it started; its coordinators, readers and writers
 * must not outlive it (they would hold ports, files and CPU for the runs
 * after).  The signal survives execv. */
void harness_die_with(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(126);
}

pid_t harness_coordinator_start(const char *dir, const char *const *args)
{
    char log_path[512];
    snprintf(log_path, sizeof(log_path), "%s.log", dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        harness_die_with(parent);
        const char *argv[32];
        int n = 0;
        argv[n++] = harness_coordinator_path();
        argv[n++] = dir;
        for (int i = 0; args && args[i] && n < 30; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        perror("execv sutra-coordinator");
        _exit(127);
    }
    pid_t prober = harness_spawn(ping_until_up, (void *)dir);
    if (harness_wait(prober) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fprintf(stderr, "harness: coordinator did not come up; log %s:\n",
                log_path);
        show_log(log_path);
        return -1;
    }
    remember_log(pid, log_path);
    return pid;
}

static int status_of(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int harness_wait_ms(pid_t pid, uint64_t timeout_ms)
{
    uint64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return status_of(st);
        if (r < 0)
            return -1;
        if (harness_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        usleep(5000);
    }
}

int harness_coordinator_stop(pid_t pid, int sig)
{
    kill(pid, sig);
    int status = harness_wait_ms(pid, 20000);
    settle_log(pid, sig, status);
    return status;
}

pid_t harness_spawn(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        harness_die_with(parent);
        _exit(fn(arg));
    }
    return pid;
}

int harness_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return status_of(st);
}

void *harness_shared_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap shared");
        abort();
    }
    return p;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t item_seed(uint32_t writer, uint32_t index, uint32_t version)
{
    return mix(((uint64_t)writer << 40) ^ ((uint64_t)index << 8) ^ version);
}

size_t harness_content(uint32_t writer, uint32_t index, uint32_t version,
                       char *buf, size_t cap)
{
    uint64_t s = item_seed(writer, index, version);
    int n = snprintf(buf, cap, "w%u i%u v%u ", writer, index, version);
    size_t len = (size_t)n + (size_t)(s % 280u);
    if (len > cap)
        len = cap;
    for (size_t i = (size_t)n; i < len; i++) {
        s = mix(s + i);
        buf[i] = (char)('a' + s % 26u);
    }
    return len;
}

void harness_embedding(uint32_t writer, uint32_t index, uint32_t version,
                       float *out, uint32_t dim)
{
    uint64_t s = item_seed(writer, index, version) ^ 0x5eed;
    for (uint32_t i = 0; i < dim; i++) {
        s = mix(s + i);
        out[i] = (float)((double)(s % 2000001u) / 1000000.0 - 1.0);
    }
}

void harness_item_id(uint32_t writer, uint32_t index, sutra_id *out)
{
    char name[64];
    int n = snprintf(name, sizeof(name), "writer-%u/item-%u", writer, index);
    sutra_id_from_name(name, (size_t)n, out);
}

bool harness_item_matches(const sutra_concept *c, uint32_t writer,
                          uint32_t index, uint32_t version, uint32_t dim)
{
    char want[512];
    size_t len = harness_content(writer, index, version, want, sizeof(want));
    if (c->content_len != len || memcmp(c->content, want, len) != 0)
        return false;
    if (dim == 0)
        return c->embedding == NULL;
    if (!c->embedding || c->dim != dim || ((uintptr_t)c->embedding % 64) != 0)
        return false;
    float emb[4096];
    harness_embedding(writer, index, version, emb, dim);
    return memcmp(c->embedding, emb, (size_t)dim * sizeof(float)) == 0;
}
