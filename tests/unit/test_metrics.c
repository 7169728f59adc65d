/*
 * test_metrics.c - what the admin endpoint reports (engine/metrics.h): the
 * batch duration histogram's buckets and quantiles, and the Prometheus and
 * JSON renderings of a pipeline that ran (counts, label escaping, a
 * histogram whose count is the number of batches delivered).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instance.h"
#include "metrics.h"
#include "pipeline.h"
#include "registry.h"
#include "runtime.h"

static unsigned bucket_of(int64_t ns)
{
    sl_hist h;
    memset(&h, 0, sizeof h);
    sl__hist_add(&h, ns);
    for (unsigned k = 0; k <= SL_HIST_BOUNDS; k++)
        if (atomic_load(&h.bucket[k]))
            return k;
    return 99;
}

/* Each duration lands in the first bucket whose bound (1 us * 4^k) it does not exceed. */
static void test_hist_buckets(void **unused)
{
    assert_int_equal(bucket_of(-5), 0);
    assert_int_equal(bucket_of(0), 0);
    assert_int_equal(bucket_of(1000), 0);     /* bounds are inclusive (le) */
    assert_int_equal(bucket_of(1001), 1);
    assert_int_equal(bucket_of(4000), 1);
    assert_int_equal(bucket_of(4001), 2);
    assert_int_equal(bucket_of(16000), 2);
    assert_int_equal(bucket_of(16001), 3);
    assert_int_equal(bucket_of(1000000), 5);  /* 1 ms: 1024 us bound */
    assert_int_equal(bucket_of(4194304000ll), 11); /* the last finite bound, 4.19 s */
    assert_int_equal(bucket_of(4194304001ll), SL_HIST_BOUNDS); /* +Inf */
    assert_int_equal(bucket_of(INT64_MAX), SL_HIST_BOUNDS);
    for (unsigned k = 0; k < SL_HIST_BOUNDS; k++)
        assert_int_equal(bucket_of((int64_t)(sl__hist_bound(k) * 1e9 + 0.5)), k);
}

static void test_hist_quantile(void **unused)
{
    sl_hist h;
    memset(&h, 0, sizeof h);
    assert_true(sl__hist_quantile(&h, 0.5) == 0);
    for (int i = 0; i < 90; i++)
        sl__hist_add(&h, 3000);   /* bucket 1: <= 4 us */
    for (int i = 0; i < 10; i++)
        sl__hist_add(&h, 900000); /* bucket 5: <= 1.024 ms */
    assert_int_equal(atomic_load(&h.count), 100);
    assert_int_equal(atomic_load(&h.sum_ns), 90 * 3000 + 10 * 900000);
    assert_true(sl__hist_quantile(&h, 0.5) == sl__hist_bound(1));
    assert_true(sl__hist_quantile(&h, 0.9) == sl__hist_bound(1));
    assert_true(sl__hist_quantile(&h, 0.91) == sl__hist_bound(5));
    assert_true(sl__hist_quantile(&h, 0.99) == sl__hist_bound(5));
}

static const char yaml[] = "pipeline: 'we \"quote\" \\ this'\n"
                           "batch: {max_events: 100}\n"
                           "operators:\n"
                           "  gen: {type: source.generator, count: 1000, seed: 3}\n"
                           "  pass: {type: identity, input: gen, fuse: false}\n"
                           "  sink: {type: sink.null, input: pass}\n";

static void test_render_after_a_run(void **unused)
{
    sl_builtin_register();
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    assert_int_equal(sl_pipeline_load_string("m.yaml", yaml, NULL, 0, &d, &p), 0);
    sl_run_opts o;
    sl_run_opts_default(&o);
    o.handle_signals = 0;
    o.progress = 0;
    sl_runtime *rt = NULL;
    assert_int_equal(sl_runtime_new(p, &o, &d, &rt), 0);
    rt->timing = 1; /* as an admin endpoint would have it, without listening */
    assert_int_equal(sl_runtime_run(rt), 0);

    sl_wbuf b = {0};
    assert_int_equal(sl__metrics_prometheus(rt, &b), 0);
    assert_int_equal(sl_wbuf_append(&b, "", 1), 0);
    const char *text = (const char *)b.data;
    /* label values escape the quote and the backslash */
    assert_non_null(strstr(text, "sluice_info{pipeline=\"we \\\"quote\\\" \\\\ this\","));
    assert_non_null(strstr(text, "sluice_operator_events_out_total{pipeline=\"we \\\"quote\\\" "
                                 "\\\\ this\",operator=\"gen\",type=\"source.generator\","
                                 "subtask=\"0\"} 1000\n"));
    assert_non_null(strstr(text, "operator=\"sink\",type=\"sink.null\",subtask=\"0\"} 1000\n"));
    /* the identity ran in a stage of its own: 1000 events in batches of 100 */
    assert_non_null(strstr(text, "sluice_operator_batch_duration_seconds_count{pipeline=\"we "
                                 "\\\"quote\\\" \\\\ this\",operator=\"pass\",type=\"identity\","
                                 "subtask=\"0\"} 10\n"));
    assert_non_null(strstr(text, "operator=\"pass\",type=\"identity\",subtask=\"0\",le=\"+Inf\"} 10\n"));
    assert_non_null(strstr(text, "# TYPE sluice_operator_batch_duration_seconds histogram\n"));
    /* nothing queued once the run is over; no checkpoint block, no checkpoint metrics */
    assert_non_null(strstr(text, "sluice_operator_input_queue_batches{pipeline=\"we \\\"quote\\\" "
                                 "\\\\ this\",operator=\"pass\",type=\"identity\",subtask=\"0\"} 0\n"));
    assert_null(strstr(text, "sluice_checkpoints_total"));
    sl_wbuf_fini(&b);

    assert_int_equal(sl__metrics_json(rt, &b), 0);
    assert_int_equal(sl_wbuf_append(&b, "", 1), 0);
    text = (const char *)b.data;
    assert_non_null(strstr(text, "\"pipeline\":\"we \\\"quote\\\" \\\\ this\""));
    assert_non_null(strstr(text, "\"checkpoint\":null"));
    assert_non_null(strstr(text, "\"name\":\"pass\",\"type\":\"identity\",\"parallelism\":1,"
                                 "\"source\":false,\"sink\":false,\"ports\":[\"out\"],"
                                 "\"inputs\":[{\"from\":\"gen\",\"port\":\"out\",\"slot\":\"input\"}]"));
    assert_non_null(strstr(text, "\"in\":1000,\"out\":1000,\"errors\":0"));
    assert_non_null(strstr(text, "\"batches\":10,"));
    /* watermarks ended at +infinity: null, not a number */
    assert_non_null(strstr(text, "\"watermark_ms\":null"));
    sl_wbuf_fini(&b);

    sl_runtime_destroy(&rt);
    sl_pipeline_destroy(&p);
    sl_diag_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets),
        cmocka_unit_test(test_hist_quantile),
        cmocka_unit_test(test_render_after_a_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
