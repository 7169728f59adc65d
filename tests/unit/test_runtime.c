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
#include <time.h>

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

/* ------------------------------------------------------------ watermarks */

/* What every instance of test.wm saw: events, late events, the watermarks. */
static struct {
    uint64_t events[MAX_INST], late[MAX_INST], after_end[MAX_INST];
    int64_t last_wm[MAX_INST];     /* last on_watermark value */
    int64_t max_finite[MAX_INST];  /* largest finite watermark */
    int64_t max_time[MAX_INST];    /* largest event time */
    int backwards[MAX_INST];       /* on_watermark not increasing */
    int ended[MAX_INST];           /* had on_watermark(+inf) before finish */
} wm_seen;

static int64_t event_time(const uint8_t *ev, size_t len)
{
    const uint8_t *p = ev;
    sl_mp_val v;
    int64_t ns = INT64_MIN;
    if (sl_mp_map_find(&p, ev + len, "time", 4) == 1 && sl_mp_read(&p, ev + len, &v) == 0)
        sl_mp_timestamp_ns(&v, &ns);
    return ns;
}

static int wm_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    size_t i = (uintptr_t)state - 1;
    for (uint32_t k = 0; k < b->count; k++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, k, &len);
        int64_t t = event_time(ev, len);
        wm_seen.events[i]++;
        wm_seen.late[i] += t < b->watermark;
        wm_seen.after_end[i] += wm_seen.last_wm[i] == INT64_MAX;
        if (t > wm_seen.max_time[i])
            wm_seen.max_time[i] = t;
    }
    return SL_OK;
}

static int wm_watermark(void *state, sl_ctx *ctx, int64_t wm)
{
    size_t i = (uintptr_t)state - 1;
    wm_seen.backwards[i] |= wm <= wm_seen.last_wm[i];
    wm_seen.last_wm[i] = wm;
    if (wm != INT64_MAX && wm > wm_seen.max_finite[i])
        wm_seen.max_finite[i] = wm;
    return SL_OK;
}

static int wm_finish(void *state, sl_ctx *ctx)
{
    size_t i = (uintptr_t)state - 1;
    wm_seen.ended[i] = wm_seen.last_wm[i] == INT64_MAX;
    return SL_OK;
}

static const sl_operator wm_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.wm",
    .summary = "records watermarks and late events",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = collect_params,
    .outputs = no_outputs,
    .key_param = "key",
    .init = collect_init,
    .process = wm_process,
    .on_watermark = wm_watermark,
    .finish = wm_finish,
    .destroy = collect_destroy,
};

/* test.clock: `count` events one second apart from 2026-01-01, then stays alive
 * (emitting nothing) until `alive` after its start. */
typedef struct clock_src {
    int64_t count, alive_ns, n, until;
    sl_wbuf w;
} clock_src;

static const sl_param clock_params[] = {
    {"count", SL_PARAM_INT, "10", 0, "events", NULL},
    {"alive", SL_PARAM_DURATION, "0s", 0, "stay alive this long", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static int clock_init(sl_ctx *ctx, void **state)
{
    clock_src *c = calloc(1, sizeof *c);
    if (!c)
        return SL_ERROR;
    *state = c;
    ctx->host->node_int(ctx->host->param(ctx, "count"), &c->count);
    ctx->host->node_duration(ctx->host->param(ctx, "alive"), &c->alive_ns);
    return SL_OK;
}

static int clock_produce(void *state, sl_ctx *ctx, int64_t deadline)
{
    clock_src *c = state;
    const sl_host *h = ctx->host;
    if (!c->until)
        c->until = h->monotonic(ctx) + c->alive_ns;
    for (int k = 0; k < 100 && c->n < c->count; k++, c->n++) {
        sl_wbuf_reset(&c->w);
        sl_mp_write_map(&c->w, 1);
        sl_mp_write_cstr(&c->w, "time");
        sl_mp_write_timestamp(&c->w, 1767225600000000000ll + c->n * 1000000000ll);
        if (h->emit(ctx, 0, c->w.data, c->w.len) != 0)
            return SL_ERROR;
    }
    if (c->n < c->count)
        return SL_OK;
    int64_t now = h->monotonic(ctx);
    if (now >= c->until)
        return SL_EOS;
    int64_t wake = deadline < c->until ? deadline : c->until;
    struct timespec ts = {(wake - now) / 1000000000, (wake - now) % 1000000000};
    nanosleep(&ts, NULL);
    return SL_OK;
}

static void clock_destroy(void *state)
{
    clock_src *c = state;
    if (c)
        sl_wbuf_fini(&c->w);
    free(c);
}

static const char *const main_output[] = {"out", NULL};
static const sl_operator clock_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.clock",
    .summary = "events one second apart",
    .flags = SL_OP_SOURCE,
    .param_size = sizeof(sl_param),
    .params = clock_params,
    .outputs = main_output,
    .init = clock_init,
    .produce = clock_produce,
    .destroy = clock_destroy,
};

static int run_wm(const char *yaml, int fusion)
{
    memset(&wm_seen, 0, sizeof wm_seen);
    for (int i = 0; i < MAX_INST; i++)
        wm_seen.last_wm[i] = wm_seen.max_finite[i] = wm_seen.max_time[i] = INT64_MIN;
    return run_yaml(yaml, fusion);
}

/* A bound wider than the disorder: nothing late; a zero bound: late events show. */
static void test_watermark_bound(void **st)
{
    static const char *const yaml[] = {
        "operators:\n"
        "  g: {type: source.generator, count: 50000, max_late: 2s, late_frac: 0.05,"
        " watermark: {max_out_of_order: 3s}}\n"
        "  w: {type: test.wm, input: g, fuse: false}\n",
        "operators:\n"
        "  g: {type: source.generator, count: 50000, max_late: 2s, late_frac: 0.05,"
        " watermark: {max_out_of_order: 0s}}\n"
        "  w: {type: test.wm, input: g, fuse: false}\n",
    };
    for (int fusion = 0; fusion <= 1; fusion++)
        for (int k = 0; k < 2; k++) {
            assert_int_equal(run_wm(yaml[k], fusion), 0);
            assert_int_equal(wm_seen.events[0], 50000);
            assert_false(wm_seen.backwards[0]);
            assert_true(wm_seen.ended[0]);
            assert_int_equal(wm_seen.after_end[0], 0);
            /* the watermark followed the events during the run */
            assert_true(wm_seen.max_finite[0] > INT64_MIN);
            assert_true(wm_seen.max_finite[0] <= wm_seen.max_time[0] - (k == 0 ? 3000000000ll : 0));
            if (k == 0)
                assert_int_equal(wm_seen.late[0], 0);
            else
                assert_true(wm_seen.late[0] > 0);
        }
}

/* Two inputs: the slower holds the watermark back, unless it is idle. */
static void test_watermark_min_and_idle(void **st)
{
    static const char *const held =
        "operators:\n"
        "  a: {type: test.clock, count: 100, watermark: {max_out_of_order: 0s}}\n"
        "  b: {type: test.clock, count: 10, alive: 400ms, watermark: {max_out_of_order: 0s}}\n"
        "  w: {type: test.wm, input: [a, b]}\n";
    static const char *const idle =
        "operators:\n"
        "  a: {type: test.clock, count: 100, watermark: {max_out_of_order: 0s}}\n"
        "  b: {type: test.clock, count: 10, alive: 400ms,"
        " watermark: {max_out_of_order: 0s, idle_timeout: 50ms}}\n"
        "  w: {type: test.wm, input: [a, b]}\n";
    const int64_t t0 = 1767225600000000000ll, s = 1000000000ll;
    assert_int_equal(run_wm(held, 1), 0);
    assert_int_equal(wm_seen.events[0], 110);
    assert_int_equal(wm_seen.max_finite[0], t0 + 9 * s); /* b's last event */
    assert_true(wm_seen.ended[0]);
    assert_int_equal(run_wm(idle, 1), 0);
    assert_int_equal(wm_seen.max_finite[0], t0 + 99 * s); /* b idle: a's last event */
    assert_true(wm_seen.ended[0]);
    assert_false(wm_seen.backwards[0]);
}

/* A watermark on an operator that is not a source is refused. */
static void test_watermark_only_on_sources(void **st)
{
    assert_int_equal(run_wm("operators:\n"
                            "  a: {type: test.clock}\n"
                            "  w: {type: test.wm, input: a, watermark: {max_out_of_order: 1s}}\n",
                            1),
                     SL_ECONFIG);
    assert_int_equal(run_wm("operators:\n"
                            "  a: {type: test.clock, watermark: {max_out_of_order: 5x}}\n"
                            "  w: {type: test.wm, input: a}\n",
                            1),
                     SL_ECONFIG);
}

static int setup(void **st)
{
    sl_builtin_register();
    assert_int_equal(sl_registry_add(&collect_op, "test"), 0);
    assert_int_equal(sl_registry_add(&fail_op, "test"), 0);
    assert_int_equal(sl_registry_add(&wm_op, "test"), 0);
    assert_int_equal(sl_registry_add(&clock_op, "test"), 0);
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
        cmocka_unit_test(test_watermark_bound),
        cmocka_unit_test(test_watermark_min_and_idle),
        cmocka_unit_test(test_watermark_only_on_sources),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
