/*
 * test_params.c - an operator's mapping checked against its parameter table:
 * each kind of mistake with its exact "file:line:col: message" (key position
 * for unknown keys, value position for bad values, the operator's mapping for
 * missing keys), defaults inserted only after a clean check, and tables read
 * with the stride the plugin declared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "params.h"

static const sl_param file_params[] = {
    {"path", SL_PARAM_STRING, NULL, 1, "file to read", NULL},
    {"format", SL_PARAM_ENUM, "jsonl", 0, "input format", "jsonl|msgpack"},
    {"linger", SL_PARAM_DURATION, "5ms", 0, "flush after", NULL},
    {"max_size", SL_PARAM_SIZE, NULL, 0, "largest line", NULL},
    {"capacity", SL_PARAM_INT, NULL, 0, "entries", NULL},
    {"error_rate", SL_PARAM_DOUBLE, NULL, 0, "false positives", NULL},
    {"follow", SL_PARAM_BOOL, "false", 0, "tail the file", NULL},
    {"fields", SL_PARAM_MAP, NULL, 0, "computed fields", NULL},
    {"columns", SL_PARAM_LIST, "[]", 0, "columns", NULL},
    {"where", SL_PARAM_EXPR, NULL, 0, "condition", NULL},
    {"extra", SL_PARAM_ANY, NULL, 0, "anything", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const engine_keys[] = {"type", "input", "parallelism", NULL};

typedef struct fixture {
    sl_diag d;
    sl_node *root;
    sl_node *op;
} fixture;

static void assert_item(const sl_diag *d, size_t i, const char *want)
{
    char buf[1024];
    assert_true(i < d->n);
    assert_string_equal(sl_diag_format(d, i, buf, sizeof buf), want);
}

/* Load a pipeline text and find operators.<name>. */
static void setup_op(fixture *f, const char *text, const char *name)
{
    sl_diag_init(&f->d);
    f->root = NULL;
    assert_int_equal(sl_config_load_string("p.yaml", text, strlen(text), &f->d, &f->root), 0);
    f->op = sl_node_get(sl_node_get(f->root, "operators"), name);
    assert_non_null(f->op);
}

static void teardown_op(fixture *f)
{
    sl_node_destroy(&f->root);
    sl_diag_fini(&f->d);
}

static int check(fixture *f)
{
    return sl_params_check(f->op, file_params, sizeof(sl_param), engine_keys, "source.file", &f->d);
}

/* Check one operator body (indented under operators.events) expecting one problem `want`. */
static void expect_one(const char *text, const char *want)
{
    fixture f;
    setup_op(&f, text, "events");
    int before = (int)f.op->n;
    assert_int_equal(check(&f), 1);
    assert_int_equal(f.d.n, 1);
    assert_item(&f.d, 0, want);
    /* no defaults are inserted when the check fails */
    assert_int_equal((int)f.op->n, before);
    teardown_op(&f);
}

/* A clean mapping: 0 problems, defaults inserted at the operator's position. */
static void test_clean_and_defaults(void **state)
{
    fixture f;
    (void)state;
    setup_op(&f,
             "operators:\n"
             "  events:\n"
             "    type: source.file\n"
             "    path: data/events.jsonl\n"
             "    linger: 250ms\n"
             "    max_size: 64KiB\n"
             "    capacity: 0x10\n"
             "    error_rate: 0.01\n"
             "    fields: {a: b}\n"
             "    where: data.total > 100\n"
             "    extra: [1, {x: y}]\n",
             "events");
    assert_int_equal(check(&f), 0);
    assert_int_equal(f.d.n, 0);
    /* explicit values kept */
    assert_string_equal(sl_node_get(f.op, "linger")->str, "250ms");
    /* defaults added: format, follow, columns (a list) - not linger */
    assert_int_equal(f.op->n, 12);
    sl_node *format = sl_node_get(f.op, "format");
    assert_non_null(format);
    assert_string_equal(format->str, "jsonl");
    assert_string_equal(format->file, "p.yaml");
    assert_int_equal(format->line, 3);
    assert_int_equal(format->col, 5);
    assert_string_equal(sl_node_get(f.op, "follow")->str, "false");
    sl_node *columns = sl_node_get(f.op, "columns");
    assert_int_equal(columns->kind, SL_NODE_SEQ);
    assert_int_equal(columns->n, 0);
    assert_null(sl_node_get(f.op, "max_size_default"));
    teardown_op(&f);
}

static void test_unknown_with_suggestion(void **state)
{
    (void)state;
    expect_one("operators:\n"
               "  events:\n"
               "    type: source.file\n"
               "    path: x\n"
               "    fromat: jsonl\n",
               "p.yaml:5:5: unknown parameter 'fromat' for operator type 'source.file' "
               "(did you mean 'format'?)");
    /* engine keys are candidates too */
    expect_one("operators:\n"
               "  events:\n"
               "    type: source.file\n"
               "    inpt: a\n"
               "    path: x\n",
               "p.yaml:4:5: unknown parameter 'inpt' for operator type 'source.file' "
               "(did you mean 'input'?)");
    expect_one("operators:\n"
               "  events:\n"
               "    type: source.file\n"
               "    path: x\n"
               "    colour: red\n",
               "p.yaml:5:5: unknown parameter 'colour' for operator type 'source.file'");
}

/* The spec's example: a typo of a required key gives both messages. */
static void test_unknown_and_missing(void **state)
{
    fixture f;
    (void)state;
    setup_op(&f,
             "operators:\n"
             "  events:\n"
             "    type: source.file\n"
             "    pth: data/events.jsonl\n",
             "events");
    assert_int_equal(check(&f), 2);
    assert_int_equal(f.d.n, 2);
    assert_item(&f.d, 0,
                "p.yaml:4:5: unknown parameter 'pth' for operator type 'source.file' "
                "(did you mean 'path'?)");
    assert_item(&f.d, 1,
                "p.yaml:3:5: missing required parameter 'path' for operator type "
                "'source.file'");
    teardown_op(&f);
}

static void test_missing_required(void **state)
{
    (void)state;
    /* a flow mapping: the operator's position is its '{' */
    expect_one("operators:\n"
               "  events: {type: source.file, format: jsonl}\n",
               "p.yaml:2:11: missing required parameter 'path' for operator type 'source.file'");
    expect_one("operators:\n"
               "  events:\n"
               "    type: source.file\n"
               "    path:\n",
               "p.yaml:4:10: missing value for required parameter 'path' of operator type "
               "'source.file'");
}

static void test_bad_scalars(void **state)
{
    (void)state;
    expect_one("operators:\n  events:\n    path: x\n    capacity: lots\n",
               "p.yaml:4:15: invalid integer 'lots' for 'capacity'");
    expect_one("operators:\n  events:\n    path: x\n    capacity: 99999999999999999999\n",
               "p.yaml:4:15: invalid integer '99999999999999999999' for 'capacity'");
    expect_one("operators:\n  events:\n    path: x\n    linger: 5x\n",
               "p.yaml:4:13: invalid duration '5x' for 'linger' (expected e.g. 250ms, 5s, 1m)");
    expect_one("operators:\n  events:\n    path: x\n    linger: 5\n",
               "p.yaml:4:13: invalid duration '5' for 'linger' (expected e.g. 250ms, 5s, 1m)");
    expect_one("operators:\n  events:\n    path: x\n    max_size: 12 MB\n",
               "p.yaml:4:15: invalid size '12 MB' for 'max_size' "
               "(expected e.g. 512, 64KiB, 16MiB, 1GB)");
    expect_one("operators:\n  events:\n    path: x\n    error_rate: 1%\n",
               "p.yaml:4:17: invalid number '1%' for 'error_rate'");
    expect_one("operators:\n  events:\n    path: x\n    follow: maybe\n",
               "p.yaml:4:13: invalid boolean 'maybe' for 'follow' (expected true or false)");
    expect_one("operators:\n  events:\n    path: x\n    linger:\n",
               "p.yaml:4:12: missing value for 'linger' (expected a duration, e.g. 250ms, 5s, "
               "1m)");
}

static void test_bad_enum(void **state)
{
    (void)state;
    expect_one("operators:\n  events:\n    path: x\n    format: xml\n",
               "p.yaml:4:13: invalid value 'xml' for 'format' (expected one of: jsonl, msgpack)");
    expect_one("operators:\n  events:\n    path: x\n    format: jsnl\n",
               "p.yaml:4:13: invalid value 'jsnl' for 'format' (expected one of: jsonl, msgpack; "
               "did you mean 'jsonl'?)");
    expect_one("operators:\n  events:\n    path: x\n    format: JSONL\n",
               "p.yaml:4:13: invalid value 'JSONL' for 'format' (expected one of: jsonl, msgpack)");
}

/* A value of the wrong kind is reported at the value. */
static void test_wrong_kind(void **state)
{
    (void)state;
    expect_one("operators:\n  events:\n    path: {a: 1}\n",
               "p.yaml:3:11: expected a scalar for 'path', found a mapping");
    expect_one("operators:\n  events:\n    path: x\n    linger: [5s]\n",
               "p.yaml:4:13: expected a scalar for 'linger', found a sequence");
    expect_one("operators:\n  events:\n    path: x\n    fields: [a, b]\n",
               "p.yaml:4:13: expected a mapping for 'fields', found a sequence");
    expect_one("operators:\n  events:\n    path: x\n    columns: a\n",
               "p.yaml:4:14: expected a sequence for 'columns', found a scalar");
    expect_one("operators:\n  events:\n    path: x\n    where:\n      a: 1\n",
               "p.yaml:5:7: expected a scalar for 'where', found a mapping");
}

/* Every problem is reported in one call; quoted numbers are accepted. */
static void test_all_problems_at_once(void **state)
{
    fixture f;
    (void)state;
    setup_op(&f,
             "operators:\n"
             "  events:\n"
             "    type: source.file\n"
             "    input: other\n"
             "    parallelism: 4\n"
             "    capacity: \"100\"\n"
             "    linger: 5x\n"
             "    bogus: 1\n"
             "    format: xml\n",
             "events");
    assert_int_equal(check(&f), 4);
    assert_int_equal(f.d.n, 4);
    assert_item(&f.d, 0,
                "p.yaml:7:13: invalid duration '5x' for 'linger' "
                "(expected e.g. 250ms, 5s, 1m)");
    assert_item(&f.d, 1, "p.yaml:8:5: unknown parameter 'bogus' for operator type 'source.file'");
    assert_item(&f.d, 2,
                "p.yaml:9:13: invalid value 'xml' for 'format' "
                "(expected one of: jsonl, msgpack)");
    assert_item(&f.d, 3,
                "p.yaml:3:5: missing required parameter 'path' for operator type "
                "'source.file'");
    teardown_op(&f);
}

/* A bad value that came from --set points at --set. */
static void test_value_from_set(void **state)
{
    fixture f;
    (void)state;
    setup_op(&f, "operators:\n  events:\n    path: x\n", "events");
    assert_int_equal(sl_config_set(f.root, "operators.events.linger=5x", &f.d), 0);
    f.op = sl_node_get(sl_node_get(f.root, "operators"), "events");
    assert_int_equal(check(&f), 1);
    assert_item(&f.d, 0, "--set: invalid duration '5x' for 'linger' (expected e.g. 250ms, 5s, 1m)");
    teardown_op(&f);
}

/* Old plugins have smaller entries, newer ones larger: the stride decides. */
typedef struct old_param { /* a layout without help and choices */
    const char *name;
    sl_param_type type;
    const char *default_value;
    int required;
} old_param;

typedef struct new_param { /* a future layout with one more field */
    sl_param base;
    const char *unit;
} new_param;

static void test_stride(void **state)
{
    static const old_param old_table[] = {
        {"path", SL_PARAM_STRING, NULL, 1},
        {"linger", SL_PARAM_DURATION, "1s", 0},
        {NULL, 0, NULL, 0},
    };
    static const new_param new_table[] = {
        {{"path", SL_PARAM_STRING, NULL, 1, "h", NULL}, "none"},
        {{"format", SL_PARAM_ENUM, "jsonl", 0, "h", "jsonl|msgpack"}, "none"},
        {{NULL, 0, NULL, 0, NULL, NULL}, NULL},
    };
    fixture f;
    (void)state;
    setup_op(&f, "operators:\n  events:\n    type: t\n    pth: x\n", "events");
    assert_int_equal(sl_params_check(f.op, (const sl_param *)(const void *)old_table,
                                     sizeof(old_param), engine_keys, "old", &f.d),
                     2);
    assert_item(&f.d, 0,
                "p.yaml:4:5: unknown parameter 'pth' for operator type 'old' "
                "(did you mean 'path'?)");
    assert_item(&f.d, 1, "p.yaml:3:5: missing required parameter 'path' for operator type 'old'");
    teardown_op(&f);

    setup_op(&f, "operators:\n  events:\n    type: t\n    path: x\n", "events");
    assert_int_equal(sl_params_check(f.op, (const sl_param *)(const void *)old_table,
                                     sizeof(old_param), engine_keys, "old", &f.d),
                     0);
    assert_string_equal(sl_node_get(f.op, "linger")->str, "1s");
    teardown_op(&f);

    setup_op(&f, "operators:\n  events:\n    path: x\n    format: xml\n", "events");
    assert_int_equal(
        sl_params_check(f.op, &new_table[0].base, sizeof(new_param), engine_keys, "new", &f.d), 1);
    assert_item(&f.d, 0,
                "p.yaml:4:13: invalid value 'xml' for 'format' "
                "(expected one of: jsonl, msgpack)");
    teardown_op(&f);
}

/* A table with no parameters (NULL) accepts only engine keys. */
static void test_no_table(void **state)
{
    fixture f;
    (void)state;
    setup_op(&f, "operators:\n  events:\n    type: t\n    input: a\n    x: 1\n", "events");
    assert_int_equal(sl_params_check(f.op, NULL, sizeof(sl_param), engine_keys, "t", &f.d), 1);
    assert_item(&f.d, 0, "p.yaml:5:5: unknown parameter 'x' for operator type 't'");
    teardown_op(&f);
}

/* The operator must be a mapping; a broken default in a table is reported. */
static void test_bad_op_and_bad_default(void **state)
{
    static const sl_param bad_default[] = {
        {"linger", SL_PARAM_DURATION, "5x", 0, NULL, NULL},
        {"list", SL_PARAM_LIST, "[1,", 0, NULL, NULL},
        {NULL, 0, NULL, 0, NULL, NULL},
    };
    fixture f;
    (void)state;
    setup_op(&f, "operators:\n  events: oops\n", "events");
    assert_int_equal(check(&f), 1);
    assert_item(&f.d, 0,
                "p.yaml:2:11: expected a mapping for operator type 'source.file', "
                "found a scalar");
    teardown_op(&f);

    setup_op(&f, "operators:\n  events:\n    type: t\n", "events");
    assert_int_equal(sl_params_check(f.op, bad_default, sizeof(sl_param), engine_keys, "t", &f.d),
                     2);
    assert_item(&f.d, 0,
                "p.yaml:3:5: invalid default for operator type 't': invalid duration "
                "'5x' for 'linger' (expected e.g. 250ms, 5s, 1m)");
    assert_item(&f.d, 1,
                "p.yaml:3:5: invalid default '[1,' for parameter 'list' of operator "
                "type 't': did not find expected node content (while parsing a flow "
                "node)");
    assert_int_equal(f.op->n, 1);
    teardown_op(&f);
}

/* sl_param_check_value on its own, and the type names. */
static void test_check_value_and_names(void **state)
{
    static const sl_param p = {"n", SL_PARAM_INT, NULL, 0, NULL, NULL};
    sl_diag d;
    sl_node *v = NULL;
    char msg[256];
    (void)state;
    sl_diag_init(&d);
    assert_int_equal(sl_node_parse("-12", "f", 1, 1, &d, &v), 0);
    assert_int_equal(sl_param_check_value(&p, v, msg, sizeof msg), 0);
    sl_node_destroy(&v);
    assert_int_equal(sl_node_parse("1.5", "f", 1, 1, &d, &v), 0);
    assert_int_equal(sl_param_check_value(&p, v, msg, sizeof msg), -1);
    assert_string_equal(msg, "invalid integer '1.5' for 'n'");
    sl_node_destroy(&v);
    sl_diag_fini(&d);

    static const char *const names[] = {"string", "int",  "double", "bool", "duration", "size",
                                        "enum",   "expr", "list",   "map",  "any"};
    for (int t = SL_PARAM_STRING; t <= SL_PARAM_ANY; t++)
        assert_string_equal(sl_param_type_name((sl_param_type)t), names[t]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_and_defaults),
        cmocka_unit_test(test_unknown_with_suggestion),
        cmocka_unit_test(test_unknown_and_missing),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_bad_scalars),
        cmocka_unit_test(test_bad_enum),
        cmocka_unit_test(test_wrong_kind),
        cmocka_unit_test(test_all_problems_at_once),
        cmocka_unit_test(test_value_from_set),
        cmocka_unit_test(test_stride),
        cmocka_unit_test(test_no_table),
        cmocka_unit_test(test_bad_op_and_bad_default),
        cmocka_unit_test(test_check_value_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
