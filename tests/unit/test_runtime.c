/*
 * test_runtime.c - the runtime through the operator ABI: a test sink
 * (registered like a plugin) records what each instance receives, so the
 * tests can check counts, end of stream, round robin and keyed routing,
 * fusion not changing results, and an operator error stopping the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pipeline.h"
#include "registry.h"
#include "runtime.h"

#define MAX_INST 8
#define MAX_CUST 1000

/* What every instance of the collect sink saw; instances write only their own slot. */
static struct {
    uint64_t events[MAX_INST];
    uint64_t id_sum[MAX_INST];          /* sum of the numeric part of "evt-N" */
    uint8_t cust_seen[MAX_INST][MAX_CUST];
    int finished[MAX_INST];
} seen;

static int collect_init(sl_ctx *ctx, void **state)
{
    uint32_t n;
    uintptr_t idx = ctx->host->instance(ctx, &n);
    *state = (void *)(idx + 1);
    return SL_OK;
}

static int collect_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    size_t i = (uintptr_t)state - 1;
    for (uint32_t k = 0; k < b->count; k++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, k, &len), *p = ev, *end = ev + len;
        sl_mp_val v;
        seen.events[i]++;
        if (sl_mp_map_find(&p, end, "id", 2) == 1 && sl_mp_read(&p, end, &v) == 0 &&
            v.type == SL_MP_STR)
            seen.id_sum[i] += strtoull(v.v.str.ptr + 4, NULL, 10);
        p = ev;
        if (sl_mp_map_find(&p, end, "data", 4) == 1 &&
            sl_mp_map_find(&p, end, "customerId", 10) == 1 && sl_mp_read(&p, end, &v) == 0 &&
            v.type == SL_MP_STR) {
            unsigned c = (unsigned)strtoul(v.v.str.ptr + 5, NULL, 10);
            if (c < MAX_CUST)
                seen.cust_seen[i][c] = 1;
        }
    }
    return SL_OK;
}

static int collect_finish(void *state, sl_ctx *ctx)
{
    seen.finished[(uintptr_t)state - 1] = 1;
    return SL_OK;
}

static void collect_destroy(void *state) { (void)state; }

static const char *const no_outputs[] = {NULL};
static const sl_param collect_params[] = {
    {"key", SL_PARAM_EXPR, NULL, 0, "partition key", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const sl_operator collect_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.collect",
    .summary = "records what it receives",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = collect_params,
    .outputs = no_outputs,
    .key_param = "key",
    .init = collect_init,
    .process = collect_process,
    .finish = collect_finish,
    .destroy = collect_destroy,
};

/* An operator that fails on its third batch. */
static int fail_init(sl_ctx *ctx, void **state)
{
    *state = calloc(1, sizeof(int));
    return *state ? SL_OK : SL_ERROR;
}

static int fail_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    int *n = state;
    if (++*n == 3) {
        ctx->host->log(ctx, SL_LOG_ERROR, "deliberate failure");
        return SL_ERROR;
    }
    return SL_OK;
}

static const sl_operator fail_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.fail",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .outputs = no_outputs,
    .init = fail_init,
    .process = fail_process,
    .destroy = free,
};

static int run_yaml(const char *yaml, int fusion)
{
    memset(&seen, 0, sizeof seen);
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    sl_runtime *rt = NULL;
    int rc = sl_pipeline_load_string("t.yaml", yaml, NULL, 0, &d, &p);
    if (rc == 0) {
        sl_run_opts o;
        sl_run_opts_default(&o);
        o.fusion = fusion;
        o.handle_signals = 0;
        rc = sl_runtime_new(p, &o, &d, &rt);
        if (rc == 0)
            rc = sl_runtime_run(rt);
    }
    for (size_t i = 0; i < d.n; i++) {
        char line[512];
        print_message("%s\n", sl_diag_format(&d, i, line, sizeof line));
    }
    sl_runtime_destroy(&rt);
    sl_pipeline_destroy(&p);
    sl_diag_fini(&d);
    return rc;
}

static uint64_t total(const uint64_t *a)
{
    uint64_t t = 0;
    for (int i = 0; i < MAX_INST; i++)
        t += a[i];
    return t;
}

#define N 50000
/* 0 + 1 + ... + N-1: every id exactly once (the generator runs with dup_frac 0) */
#define ID_SUM ((uint64_t)N * (N - 1) / 2)

static void test_counts_and_eos(void **st)
{
    for (int fusion = 0; fusion <= 1; fusion++) {
        assert_int_equal(run_yaml("operators:\n"
                                  "  g: {type: source.generator, count: 50000, dup_frac: 0}\n"
                                  "  a: {type: identity, input: g}\n"
                                  "  b: {type: identity, input: a}\n"
                                  "  c: {type: test.collect, input: b}\n",
                                  fusion),
                         0);
        assert_int_equal(seen.events[0], N);
        assert_true(seen.id_sum[0] == ID_SUM);
        assert_true(seen.finished[0]);
    }
}

static void test_round_robin_spreads(void **st)
{
    assert_int_equal(run_yaml("batch: {max_events: 100}\n"
                              "operators:\n"
                              "  g: {type: source.generator, count: 50000, dup_frac: 0}\n"
                              "  c: {type: test.collect, input: g, parallelism: 4}\n",
                              1),
                     0);
    assert_true(total(seen.events) == N);
    assert_true(total(seen.id_sum) == ID_SUM);
    for (int i = 0; i < 4; i++) {
        assert_true(seen.events[i] > N / 8); /* each instance got a fair share */
        assert_true(seen.finished[i]);
    }
}

static void test_keyed_routing_owns_each_key(void **st)
{
    assert_int_equal(run_yaml("operators:\n"
                              "  g: {type: source.generator, count: 50000, dup_frac: 0,"
                              " customers: 500}\n"
                              "  a: {type: identity, input: g, parallelism: 2}\n"
                              "  c: {type: test.collect, input: a, parallelism: 3,"
                              " key: data.customerId}\n",
                              1),
                     0);
    assert_true(total(seen.events) == N);
    assert_true(total(seen.id_sum) == ID_SUM);
    /* every customer that appears is seen by exactly one instance */
    int customers = 0;
    for (int c = 0; c < 500; c++) {
        int owners = seen.cust_seen[0][c] + seen.cust_seen[1][c] + seen.cust_seen[2][c];
        assert_true(owners <= 1);
        customers += owners;
    }
    assert_true(customers > 400);
    for (int i = 0; i < 3; i++)
        assert_true(seen.events[i] > 0);
}

static void test_operator_error_stops_run(void **st)
{
    int rc = run_yaml("operators:\n"
                      "  g: {type: source.generator, count: 0}\n" /* unbounded */
                      "  f: {type: test.fail, input: g, fuse: false}\n",
                      1);
    assert_int_equal(rc, SL_EOPERATOR);
}

static void *run_thread(void *rt)
{
    return (void *)(intptr_t)sl_runtime_run(rt);
}

static void test_stop_drains(void **st)
{
    /* a graceful stop from another thread ends an unbounded source and drains */
    memset(&seen, 0, sizeof seen);
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    sl_runtime *rt = NULL;
    assert_int_equal(sl_pipeline_load_string("t.yaml",
                                             "operators:\n"
                                             "  g: {type: source.generator, count: 0,"
                                             " rate: 200000, dup_frac: 0}\n"
                                             "  c: {type: test.collect, input: g, fuse: false}\n",
                                             NULL, 0, &d, &p),
                     0);
    sl_run_opts o;
    sl_run_opts_default(&o);
    o.handle_signals = 0;
    assert_int_equal(sl_runtime_new(p, &o, &d, &rt), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, rt), 0);
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL);
    sl_runtime_stop(rt);
    void *ret;
    pthread_join(t, &ret);
    assert_int_equal((int)(intptr_t)ret, 0);
    sl_op_stats s[2];
    sl_runtime_stats(rt, s, 2);
    uint64_t n = seen.events[0];
    assert_true(n > 0);
    assert_true(s[0].out == n); /* everything emitted arrived */
    assert_true(seen.id_sum[0] == n * (n - 1) / 2);
    assert_true(seen.finished[0]);
    sl_runtime_destroy(&rt);
    sl_pipeline_destroy(&p);
    sl_diag_fini(&d);
}

static int setup(void **st)
{
    sl_builtin_register();
    assert_int_equal(sl_registry_add(&collect_op, "test"), 0);
    assert_int_equal(sl_registry_add(&fail_op, "test"), 0);
    assert_int_equal(sl_registry_add(&collect_op, "test"), SL_EDUPLICATE);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_eos),
        cmocka_unit_test(test_round_robin_spreads),
        cmocka_unit_test(test_keyed_routing_owns_each_key),
        cmocka_unit_test(test_operator_error_stops_run),
        cmocka_unit_test(test_stop_drains),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
