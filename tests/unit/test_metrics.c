/*
 * tests/unit/test_metrics.c — the Prometheus text the coordinator serves
 * (coordinator/metrics.c): every figure of a stats snapshot appears under
 * its documented name with its value, every sample line follows the
 * exposition format (name, optional labels, one number) and is preceded by
 * its HELP and TYPE lines, counters end in _total, and a buffer that is too
 * small is never overrun while the needed length is still reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/metrics.h"

static wire_stats sample_stats(void)
{
    wire_stats st;
    memset(&st, 0, sizeof(st));
    st.generation = 42;
    st.last_seq = 4242;
    st.committed_end = 123456789;
    st.file_size = 268435456;
    st.node_count = 1000;
    st.concept_count = 990;
    st.version_count = 1500;
    st.tombstone_count = 10;
    st.assoc_count = 5000;
    st.requests = 7001;
    st.requests_failed = 3;
    st.ops_applied = 6500;
    st.commits = 800;
    st.syncs = 801;
    st.duplicates = 2;
    st.queue_depth = 5;
    st.uptime_ns = 12345678901ull;
    st.max_message = 64ull << 20;
    st.max_content = 16u << 20;
    st.max_batch = 100000;
    st.vector_dim = 384;
    st.sync_policy = 1;
    st.sync_interval_ms = 50;
    return st;
}

static char *format(const wire_stats *st, const coord_metrics_extra *x)
{
    size_t need = coord_metrics_format(st, x, NULL, 0);
    char *buf = malloc(need + 1);
    assert_non_null(buf);
    assert_int_equal(coord_metrics_format(st, x, buf, need + 1), need);
    assert_int_equal(strlen(buf), need);
    return buf;
}

/* The sample line of `name` (no labels): its value, or -1 when absent. */
static double value_of(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static void test_metrics_every_figure(void **state)
{
    (void)state;
    wire_stats st = sample_stats();
    coord_metrics_extra x = { .read_only = true, .events_sent = 77,
                              .events_failed = 1, .stalled_closed = 4,
                              .groups_restaged = 6,
                              .sync_waits = 7,
                              .connections = 11,
                              .connections_refused = 12,
                              .version = "9.8.7" };
    char *t = format(&st, &x);
    struct { const char *name; double value; } want[] = {
        { "sutra_generation", 42 },
        { "sutra_last_seq", 4242 },
        { "sutra_committed_bytes", 123456789 },
        { "sutra_file_bytes", 268435456 },
        { "sutra_nodes", 1000 },
        { "sutra_concepts", 990 },
        { "sutra_concept_versions", 1500 },
        { "sutra_tombstones", 10 },
        { "sutra_associations", 5000 },
        { "sutra_requests_total", 7001 },
        { "sutra_requests_failed_total", 3 },
        { "sutra_ops_applied_total", 6500 },
        { "sutra_commits_total", 800 },
        { "sutra_syncs_total", 801 },
        { "sutra_duplicate_requests_total", 2 },
        { "sutra_events_sent_total", 77 },
        { "sutra_events_failed_total", 1 },
        { "sutra_stalled_connections_closed_total", 4 },
        { "sutra_groups_restaged_total", 6 },
        { "sutra_sync_waits_total", 7 },
        { "sutra_connections", 11 },
        { "sutra_connections_refused_total", 12 },
        { "sutra_queue_depth", 5 },
        { "sutra_read_only", 1 },
        { "sutra_max_message_bytes", 64 << 20 },
        { "sutra_max_content_bytes", 16 << 20 },
        { "sutra_max_batch_ops", 100000 },
        { "sutra_vector_dim", 384 },
        { "sutra_uptime_seconds", 12.345 },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        double v = value_of(t, want[i].name);
        if (v < want[i].value - 0.001 || v > want[i].value + 0.001)
            print_error("%s: %f, want %f\n", want[i].name, v, want[i].value);
        assert_true(v >= want[i].value - 0.001 && v <= want[i].value + 0.001);
    }
    assert_non_null(strstr(t, "sutra_info{version=\"9.8.7\",sync_policy="
                              "\"interval\",sync_interval_ms=\"50\"} 1\n"));
    free(t);
}

/* Every sample: HELP and TYPE before it, a legal name, a number after. */
static void test_metrics_exposition_format(void **state)
{
    (void)state;
    wire_stats st = sample_stats();
    coord_metrics_extra x = { .version = "0.1.0" };
    char *t = format(&st, &x);
    assert_true(t[strlen(t) - 1] == '\n');
    char help[128] = "", type[128] = "";
    int samples = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            sscanf(line + 7, "%127s", help);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char kind[32] = "";
            sscanf(line + 7, "%127s %31s", type, kind);
            assert_string_equal(type, help);
            assert_true(strcmp(kind, "gauge") == 0 || strcmp(kind, "counter") == 0);
            /* counters, and only they, end in _total */
            size_t n = strlen(type);
            bool total = n > 6 && strcmp(type + n - 6, "_total") == 0;
            assert_int_equal(total, strcmp(kind, "counter") == 0);
            continue;
        }
        size_t n = 0;
        while (islower((unsigned char)line[n]) || line[n] == '_')
            n++;
        assert_true(n > 6 && strncmp(line, "sutra_", 6) == 0);
        assert_int_equal(strlen(type), n);
        assert_memory_equal(line, type, n); /* the sample follows its TYPE */
        const char *rest = line + n;
        if (*rest == '{') {
            rest = strchr(rest, '}');
            assert_non_null(rest);
            rest++;
        }
        assert_true(*rest == ' ');
        char *end;
        (void)strtod(rest + 1, &end);
        assert_true(end != rest + 1 && *end == '\0');
        samples++;
        type[0] = '\0';
    }
    assert_int_equal(samples, 30);
    free(t);
}

static void test_metrics_small_buffer(void **state)
{
    (void)state;
    wire_stats st = sample_stats();
    coord_metrics_extra x = { .version = "0.1.0" };
    size_t need = coord_metrics_format(&st, &x, NULL, 0);
    assert_true(need > 1000);
    char buf[300];
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(coord_metrics_format(&st, &x, buf, 100), need);
    assert_int_equal(strlen(buf), 99); /* truncated, terminated */
    for (size_t i = 100; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 'Z'); /* nothing written past cap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_every_figure),
        cmocka_unit_test(test_metrics_exposition_format),
        cmocka_unit_test(test_metrics_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
