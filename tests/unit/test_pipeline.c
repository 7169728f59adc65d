/*
 * test_pipeline.c - graph checks of a pipeline file (each mistake at its
 * exact line and column, all in one pass) and stage planning (fusion rules,
 * edge kinds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "plan.h"
#include "registry.h"

/* Load text; return the diagnostics joined by newlines (caller frees), NULL if it loaded. */
static char *errors_of(const char *yaml)
{
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    int rc = sl_pipeline_load_string("p.yaml", yaml, NULL, 0, &d, &p);
    char *out = NULL;
    if (rc != 0) {
        size_t cap = 4096, len = 0;
        out = calloc(1, cap);
        for (size_t i = 0; i < d.n; i++) {
            char line[1024];
            sl_diag_format(&d, i, line, sizeof line);
            len += (size_t)snprintf(out + len, cap - len, "%s\n", line);
        }
    }
    assert_true(rc == 0 ? p != NULL : p == NULL);
    sl_pipeline_destroy(&p);
    sl_diag_fini(&d);
    return out;
}

static void expect_error(const char *yaml, const char *expected)
{
    char *e = errors_of(yaml);
    if (!e || !strstr(e, expected))
        fail_msg("expected diagnostic '%s', got:\n%s", expected, e ? e : "(loaded fine)");
    free(e);
}

static void test_unknown_type_suggests(void **st)
{
    expect_error("pipeline: t\noperators:\n  a:\n    type: source.fil\n    path: x\n",
                 "p.yaml:4:11: unknown operator type 'source.fil' (did you mean 'source.file'?)");
}

static void test_dangling_input(void **st)
{
    expect_error("operators:\n  a: {type: source.generator}\n  b:\n    type: sink.null\n"
                 "    input: aa\n",
                 "p.yaml:5:12: input 'aa' of 'b' names no operator (did you mean 'a'?)");
}

static void test_unknown_port(void **st)
{
    expect_error("operators:\n  a: {type: source.file, path: x}\n  b:\n    type: sink.null\n"
                 "    input: a.bogus\n",
                 "p.yaml:5:12: operator 'a' has no output port 'bogus' (ports: out, errors)");
}

static void test_sink_as_input(void **st)
{
    expect_error("operators:\n  a: {type: source.generator}\n  b: {type: sink.null, input: a}\n"
                 "  c: {type: sink.null, input: b}\n",
                 "p.yaml:4:31: 'b' is a sink and has no main output");
}

static void test_missing_input(void **st)
{
    expect_error("operators:\n  a: {type: source.generator}\n  b: {type: identity}\n",
                 "p.yaml:3:6: operator 'b' (identity) needs 'input'");
}

static void test_source_takes_no_input(void **st)
{
    expect_error("operators:\n  a: {type: source.generator}\n"
                 "  b: {type: source.generator, input: a}\n",
                 "p.yaml:3:38: source operator 'b' takes no input");
}

static void test_cycle(void **st)
{
    char *e = errors_of("operators:\n  a: {type: source.generator}\n"
                        "  b: {type: identity, input: [a, c]}\n"
                        "  c: {type: identity, input: b}\n"
                        "  d: {type: sink.null, input: c}\n");
    assert_non_null(e);
    assert_non_null(strstr(e, "p.yaml:3:6: operator 'b' is part of a cycle (b -> c -> b)"));
    assert_non_null(strstr(e, "p.yaml:4:6: operator 'c' is part of a cycle (c -> b -> c)"));
    assert_null(strstr(e, "'d' is part of a cycle"));
    free(e);
}

static void test_empty_pipeline(void **st)
{
    expect_error("pipeline: t\noperators: {}\n", "p.yaml:2:12: empty pipeline");
    expect_error("pipeline: t\n", "p.yaml:1:1: empty pipeline");
}

static void test_bad_batch_and_parallelism(void **st)
{
    expect_error("batch: {max_events: 0, linger: 5x}\noperators:\n  a: {type: source.generator}\n",
                 "p.yaml:1:21: invalid batch.max_events");
    expect_error("batch: {max_events: 10, linger: 5x}\noperators:\n  a: {type: source.generator}\n",
                 "p.yaml:1:33: invalid duration '5x' for 'linger'");
    expect_error("operators:\n  a: {type: source.generator}\n"
                 "  b: {type: identity, input: a, parallelism: many}\n",
                 "p.yaml:3:46: invalid parallelism 'many'");
}

static void test_checkpoint_block(void **st)
{
    const char *ops = "operators:\n  a: {type: source.generator}\n  b: {type: sink.null, input: a}\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "checkpoint: {interval: 5ms}\n%s", ops);
    expect_error(yaml, "p.yaml:1:24: invalid checkpoint.interval '5ms' (expected a duration of at least 10ms");
    snprintf(yaml, sizeof yaml, "checkpoint: {intervall: 1s}\n%s", ops);
    expect_error(yaml, "p.yaml:1:14: unknown key 'checkpoint.intervall' (did you mean 'interval'?)");
    snprintf(yaml, sizeof yaml, "checkpoint: 10s\n%s", ops);
    expect_error(yaml, "p.yaml:1:13: 'checkpoint' must be a mapping");
    const struct {
        const char *block;
        int64_t ns;
    } ok[] = {{"", 0}, {"checkpoint: {}\n", 10000000000ll}, {"checkpoint: {interval: 250ms}\n", 250000000}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        snprintf(yaml, sizeof yaml, "%s%s", ok[i].block, ops);
        sl_diag d;
        sl_diag_init(&d);
        sl_pipeline *p = NULL;
        assert_int_equal(sl_pipeline_load_string("p.yaml", yaml, NULL, 0, &d, &p), 0);
        assert_int_equal(p->checkpoint_interval_ns, ok[i].ns);
        sl_pipeline_destroy(&p);
        sl_diag_fini(&d);
    }
}

static void test_unknown_top_level_key(void **st)
{
    expect_error("pipline: t\noperators:\n  a: {type: source.generator}\n",
                 "p.yaml:1:1: unknown top-level key 'pipline' (did you mean 'pipeline'?)");
}

static void test_all_mistakes_in_one_pass(void **st)
{
    char *e = errors_of("operators:\n"
                        "  a: {type: source.generator, cont: 5}\n"
                        "  b: {type: identiy, input: a}\n"
                        "  c: {type: sink.null, input: zz}\n");
    assert_non_null(e);
    assert_non_null(strstr(e, "p.yaml:2:31: unknown parameter 'cont' for operator type 'source.generator' (did you mean 'count'?)"));
    assert_non_null(strstr(e, "p.yaml:3:13: unknown operator type 'identiy' (did you mean 'identity'?)"));
    assert_non_null(strstr(e, "p.yaml:4:31: input 'zz' of 'c' names no operator"));
    free(e);
}

static sl_pipeline *load_ok(const char *yaml)
{
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    int rc = sl_pipeline_load_string("p.yaml", yaml, NULL, 0, &d, &p);
    if (rc != 0) {
        char line[512];
        fail_msg("did not load: %s", d.n ? sl_diag_format(&d, 0, line, sizeof line) : "?");
    }
    sl_diag_fini(&d);
    return p;
}

static void test_fusion_rules(void **st)
{
    sl_pipeline *p = load_ok("operators:\n"
                             "  src: {type: source.generator}\n"
                             "  a: {type: identity, input: src}\n"               /* fused */
                             "  b: {type: identity, input: a, parallelism: 2}\n" /* new: parallelism */
                             "  c: {type: identity, input: b, parallelism: 2}\n" /* fused into b */
                             "  d: {type: identity, input: c, parallelism: 2, partition_by: id}\n"
                             "  e: {type: sink.null, input: d, fuse: false}\n"
                             "  f: {type: sink.null, input: src.out}\n"); /* src.out has 2 consumers */
    sl_plan plan;
    assert_int_equal(sl_plan_build(p, 1, &plan), 0);
    size_t src = (size_t)sl_pipeline_find(p, "src"), a = (size_t)sl_pipeline_find(p, "a"),
           b = (size_t)sl_pipeline_find(p, "b"), c = (size_t)sl_pipeline_find(p, "c"),
           d = (size_t)sl_pipeline_find(p, "d"), e = (size_t)sl_pipeline_find(p, "e"),
           f = (size_t)sl_pipeline_find(p, "f");
    /* src feeds a and f, so neither is fused */
    assert_int_not_equal(plan.stage_of[a], plan.stage_of[src]);
    assert_int_not_equal(plan.stage_of[f], plan.stage_of[src]);
    assert_int_not_equal(plan.stage_of[b], plan.stage_of[a]);
    assert_int_equal(plan.stage_of[c], plan.stage_of[b]);
    assert_int_not_equal(plan.stage_of[d], plan.stage_of[c]); /* keyed with parallelism 2 */
    assert_int_not_equal(plan.stage_of[e], plan.stage_of[d]); /* fuse: false */
    assert_int_equal(sl_plan_edge_kind(&plan, p, c, &p->ops[c].inputs[0]), SL_EDGE_FUSED);
    assert_int_equal(sl_plan_edge_kind(&plan, p, b, &p->ops[b].inputs[0]), SL_EDGE_ROUND_ROBIN);
    assert_int_equal(sl_plan_edge_kind(&plan, p, d, &p->ops[d].inputs[0]), SL_EDGE_KEYED);
    assert_int_equal(sl_plan_edge_kind(&plan, p, e, &p->ops[e].inputs[0]), SL_EDGE_FORWARD);
    sl_plan_fini(&plan);
    sl_pipeline_destroy(&p);
    /* a source's only consumer starts a new stage, unless it asks for fusion */
    p = load_ok("operators:\n"
                "  src: {type: source.generator}\n"
                "  a: {type: identity, input: src}\n"
                "  s2: {type: source.generator}\n"
                "  b: {type: identity, input: s2, fuse: true}\n");
    assert_int_equal(sl_plan_build(p, 1, &plan), 0);
    assert_int_not_equal(plan.stage_of[sl_pipeline_find(p, "a")],
                         plan.stage_of[sl_pipeline_find(p, "src")]);
    assert_int_equal(plan.stage_of[sl_pipeline_find(p, "b")],
                     plan.stage_of[sl_pipeline_find(p, "s2")]);
    sl_plan_fini(&plan);
    /* without fusion every operator is its own stage */
    assert_int_equal(sl_plan_build(p, 0, &plan), 0);
    assert_int_equal(plan.n_stages, p->n_ops);
    sl_plan_fini(&plan);
    sl_pipeline_destroy(&p);
}

static void test_set_overrides_and_defaults(void **st)
{
    const char *sets[] = {"operators.a.count=42", "batch.max_events=7"};
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    assert_int_equal(sl_pipeline_load_string("p.yaml",
                                             "pipeline: t\noperators:\n"
                                             "  a: {type: source.generator, count: 5}\n",
                                             sets, 2, &d, &p),
                     0);
    assert_int_equal(p->batch_max_events, 7);
    assert_string_equal(sl_node_get(p->ops[0].node, "count")->str, "42");
    /* a default was applied for a parameter that was not written */
    assert_non_null(sl_node_get(p->ops[0].node, "seed"));
    assert_string_equal(p->state_dir, "state/t");
    sl_pipeline_destroy(&p);
    sl_diag_fini(&d);
}

static int setup(void **st)
{
    sl_builtin_register();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_type_suggests),
        cmocka_unit_test(test_dangling_input),
        cmocka_unit_test(test_unknown_port),
        cmocka_unit_test(test_sink_as_input),
        cmocka_unit_test(test_missing_input),
        cmocka_unit_test(test_source_takes_no_input),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_checkpoint_block),
        cmocka_unit_test(test_empty_pipeline),
        cmocka_unit_test(test_bad_batch_and_parallelism),
        cmocka_unit_test(test_unknown_top_level_key),
        cmocka_unit_test(test_all_mistakes_in_one_pass),
        cmocka_unit_test(test_fusion_rules),
        cmocka_unit_test(test_set_overrides_and_defaults),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
