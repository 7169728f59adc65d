/*
 * test_config.c - the pipeline file loader: tree and positions, every kind of
 * mistake with its exact "file:line:col: message", ${VAR} expansion, --set
 * overrides, and the scalar parsers (ints, doubles, bools, durations, sizes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* ---------------------------------------------------------------- helpers */

static void assert_item(const sl_diag *d, size_t i, const char *want)
{
    char buf[1024];
    assert_true(i < d->n);
    assert_string_equal(sl_diag_format(d, i, buf, sizeof buf), want);
}

/* Load text as "p.yaml"; the result code goes to *rc. */
static sl_node *load(const char *text, sl_diag *d, int *rc)
{
    sl_node *root = NULL;
    *rc = sl_config_load_string("p.yaml", text, strlen(text), d, &root);
    return root;
}

/* Load text, expect failure with exactly one diagnostic `want`. */
static void expect_load_error(const char *text, const char *want)
{
    sl_diag d;
    int rc;
    sl_diag_init(&d);
    sl_node *root = load(text, &d, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(d.n, 1);
    assert_item(&d, 0, want);
    sl_node_destroy(&root);
    assert_null(root);
    sl_diag_fini(&d);
}

/* Load text that must be fine. */
static sl_node *load_ok(const char *text)
{
    sl_diag d;
    int rc;
    sl_diag_init(&d);
    sl_node *root = load(text, &d, &rc);
    if (d.n) print_message("unexpected: %s\n", d.items[0].msg);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    assert_non_null(root);
    sl_diag_fini(&d);
    return root;
}

/* Node at a dotted path of map keys ("a.b.c"), or NULL. */
static sl_node *at(sl_node *n, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *seg = strtok(buf, "."); seg && n; seg = strtok(NULL, "."))
        n = sl_node_get(n, seg);
    return n;
}

static void assert_scalar(const sl_node *n, const char *text, int line, int col)
{
    assert_non_null(n);
    assert_int_equal(n->kind, SL_NODE_SCALAR);
    assert_string_equal(n->str, text);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

/* ------------------------------------------------------------ tree shape */

/* Maps, sequences, scalars, positions (1-based) and the shared file name. */
static void test_tree_and_positions(void **state)
{
    (void)state;
    sl_node *root = load_ok("pipeline: demo\n"
                            "operators:\n"
                            "  events:\n"
                            "    type: source.file\n"
                            "    windows: [{tumbling: 1m}, x]\n"
                            "    list:\n"
                            "      - a\n"
                            "      - 'b'\n");
    assert_int_equal(root->kind, SL_NODE_MAP);
    assert_int_equal(root->line, 1);
    assert_int_equal(root->col, 1);
    assert_string_equal(root->file, "p.yaml");
    assert_ptr_equal(root->file, root->file_owned);
    assert_int_equal(root->n, 2);
    assert_string_equal(root->keys[1], "operators");
    assert_int_equal(root->key_nodes[1]->line, 2);
    assert_int_equal(root->key_nodes[1]->col, 1);

    assert_scalar(at(root, "pipeline"), "demo", 1, 11);
    sl_node *ev = at(root, "operators.events");
    assert_int_equal(ev->kind, SL_NODE_MAP);
    assert_int_equal(ev->line, 4); /* a block map starts at its first key */
    assert_int_equal(ev->col, 5);
    assert_ptr_equal(ev->file, root->file); /* one string for the whole tree */
    assert_null(ev->file_owned);
    assert_scalar(at(root, "operators.events.type"), "source.file", 4, 11);

    sl_node *w = at(root, "operators.events.windows");
    assert_int_equal(w->kind, SL_NODE_SEQ);
    assert_int_equal(w->line, 5);
    assert_int_equal(w->col, 14);
    assert_int_equal(w->n, 2);
    assert_int_equal(w->items[0]->kind, SL_NODE_MAP);
    assert_int_equal(w->items[0]->col, 15);
    assert_scalar(sl_node_get(w->items[0], "tumbling"), "1m", 5, 26);
    assert_scalar(w->items[1], "x", 5, 31);

    sl_node *list = at(root, "operators.events.list");
    assert_int_equal(list->n, 2);
    assert_scalar(list->items[0], "a", 7, 9);
    assert_scalar(list->items[1], "b", 8, 9);
    assert_true(list->items[1]->quoted);
    assert_false(list->items[0]->quoted);

    assert_int_equal(sl_node_index(ev, "windows"), 1);
    assert_int_equal(sl_node_index(ev, "nope"), -1);
    assert_int_equal(sl_node_index(w, "x"), -1); /* not a map */
    assert_null(sl_node_get(w, "x"));
    assert_null(sl_node_get(NULL, "x"));
    sl_node_destroy(&root);
    sl_node_destroy(&root); /* NULL is fine */
}

/* quoted for '...' and "..." (and block scalars, !!str); is_null for plain null words only. */
static void test_quoted_and_null(void **state)
{
    (void)state;
    sl_node *root = load_ok("a: ~\n"
                            "b: null\n"
                            "c: Null\n"
                            "d: NULL\n"
                            "e:\n"
                            "f: 'null'\n"
                            "g: \"\"\n"
                            "h: nULL\n"
                            "i: 123\n"
                            "j: \"123\"\n"
                            "k: '7'\n"
                            "l: |\n"
                            "  text\n"
                            "m: !!str 5\n");
    static const char *const nulls[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++) {
        sl_node *n = sl_node_get(root, nulls[i]);
        assert_true(n->is_null);
        assert_false(n->quoted);
    }
    assert_string_equal(at(root, "e")->str, "");
    assert_false(at(root, "f")->is_null);
    assert_true(at(root, "f")->quoted);
    assert_false(at(root, "g")->is_null);
    assert_true(at(root, "g")->quoted);
    assert_false(at(root, "h")->is_null);
    assert_false(at(root, "i")->quoted);
    assert_true(at(root, "j")->quoted);
    assert_true(at(root, "k")->quoted);
    assert_true(at(root, "l")->quoted);
    assert_string_equal(at(root, "l")->str, "text\n");
    assert_true(at(root, "m")->quoted);
    sl_node_destroy(&root);
}

/* ----------------------------------------------------------- load errors */

/* Line and column of the first '@' in text (1-based, columns in characters). */
static void marker_pos(const char *text, int *line, int *col)
{
    *line = *col = 1;
    for (const char *p = text; *p != '@'; p++) {
        assert_true(*p != '\0');
        if (*p == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)*p & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

/* A byte of a scalar's text is traced back to its spot in the file, whatever the style. */
static void test_text_positions(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "v: a + @b\n",
        "v: 'it''s a @'\n",
        "v: \"q\\\"x\\u00e9\\t\\\\ @\"\n",
        "v: \"\\x41\\U0001F600 @\"\n",
        "v: first line\n  second\n\n    third @\n",
        "v: 'one\n  two   \n  @'\n",
        "v: \"joined\\\n   here @\"\n",
        "v: |\n  line one\n  \n    more\n  tail @\n",
        "v: >\n  folded one\n  folded two\n\n  next @\n",
        "v: >-\n  a\n    indented\n  b @ # not a comment\n",
        "v: !!str tagged @\n",
        "w: 1\nv: [x, \"é@\"]\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sl_node *root = load_ok(cases[i]);
        const sl_node *v = sl_node_get(root, "v");
        if (v->kind == SL_NODE_SEQ) v = v->items[1];
        const char *at = strchr(v->str, '@');
        assert_non_null(at);
        int line, col, want_line, want_col;
        marker_pos(cases[i], &want_line, &want_col);
        sl_node_text_pos(v, (size_t)(at - v->str), &line, &col);
        if (line != want_line || col != want_col)
            print_message("case %zu: got %d:%d, want %d:%d\n", i, line, col, want_line, want_col);
        assert_int_equal(line, want_line);
        assert_int_equal(col, want_col);
        sl_node_destroy(&root);
    }
    /* text that ${VAR} expansion changed cannot be traced: the scalar's start */
    setenv("SL_TEST_POS", "xyz", 1);
    sl_node *root = load_ok("v: \"${SL_TEST_POS} @\"\n");
    const sl_node *v = sl_node_get(root, "v");
    int line, col;
    sl_node_text_pos(v, 4, &line, &col);
    assert_int_equal(line, 1);
    assert_int_equal(col, 4);
    sl_node_destroy(&root);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_load_error(
        "a: [1, 2\n",
        "p.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence)");
    expect_load_error("a:\n\t- b\n", "p.yaml:2:1: found character that cannot start any token "
                                     "(while scanning for the next token)");
    expect_load_error("a: b: c\n", "p.yaml:1:5: mapping values are not allowed in this context");
    expect_load_error("a:\n  b: 1\n c: 2\n",
                      "p.yaml:3:2: did not find expected key (while parsing a block mapping)");
    expect_load_error("a: \"x\n", "p.yaml:2:1: found unexpected end of stream "
                                  "(while scanning a quoted scalar)");
    expect_load_error("a: \"\xff\"\n", "p.yaml:1:5: invalid leading UTF-8 octet (byte 0xFF)");
}

static void test_duplicate_key(void **state)
{
    sl_diag d;
    int rc;
    (void)state;
    sl_diag_init(&d);
    sl_node *root = load("operators:\n"
                         "  events:\n"
                         "    type: source.file\n"
                         "    path: a.jsonl\n"
                         "    type: dedup\n",
                         &d, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(d.n, 1);
    assert_item(&d, 0, "p.yaml:5:5: duplicate key 'type' (first at line 3)");
    /* the tree is still there and keeps the first value */
    assert_string_equal(at(root, "operators.events.type")->str, "source.file");
    assert_int_equal(at(root, "operators.events")->n, 2);
    sl_node_destroy(&root);
    sl_diag_fini(&d);
}

static void test_alias(void **state)
{
    (void)state;
    expect_load_error("a: &x 1\nb: *x\n", "p.yaml:2:4: anchors and aliases are not supported");
    expect_load_error("base: &b {x: 1}\nc:\n  <<: *b\n",
                      "p.yaml:3:7: anchors and aliases are not supported");
}

static void test_non_scalar_key(void **state)
{
    (void)state;
    expect_load_error("? [a, b]\n: 1\n", "p.yaml:1:3: mapping keys must be scalars");
    expect_load_error("{a: 1}: x\n", "p.yaml:1:1: mapping keys must be scalars");
}

static void test_empty_file(void **state)
{
    (void)state;
    expect_load_error("", "p.yaml: empty pipeline file");
    expect_load_error("# just a comment\n\n", "p.yaml: empty pipeline file");
    expect_load_error("---\n", "p.yaml: empty pipeline file");
    expect_load_error("~\n", "p.yaml: empty pipeline file");
}

static void test_multiple_documents(void **state)
{
    (void)state;
    expect_load_error("a: 1\n---\nb: 2\n",
                      "p.yaml:2:1: more than one YAML document in one file is not supported");
}

/* Hostile nesting stops with a message instead of exhausting the stack. */
static void test_nesting_limit(void **state)
{
    char text[512];
    (void)state;
    memset(text, '[', 300);
    memset(text + 300, ']', 150);
    text[450] = '\0';
    expect_load_error(text, "p.yaml:1:201: nesting deeper than 200 levels");
}

/* Problems that leave the stream readable are all reported in one load. */
static void test_errors_collected(void **state)
{
    sl_diag d;
    int rc;
    (void)state;
    unsetenv("SLUICE_TEST_UNSET");
    sl_diag_init(&d);
    sl_node *root = load("a: 1\n"
                         "b: ${SLUICE_TEST_UNSET}\n"
                         "a: 2\n"
                         "c: *x\n",
                         &d, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(d.n, 3);
    assert_item(&d, 0,
                "p.yaml:2:4: environment variable 'SLUICE_TEST_UNSET' is not set "
                "(use ${SLUICE_TEST_UNSET:-default})");
    assert_item(&d, 1, "p.yaml:3:1: duplicate key 'a' (first at line 1)");
    assert_item(&d, 2, "p.yaml:4:4: anchors and aliases are not supported");
    sl_node_destroy(&root);
    sl_diag_fini(&d);
}

/* ------------------------------------------------------------ expansion */

static void test_expand_values(void **state)
{
    (void)state;
    setenv("SLUICE_T_DIR", "/var/lib/x", 1);
    setenv("SLUICE_T_EMPTY", "", 1);
    setenv("SLUICE_T_NUM", "42", 1);
    unsetenv("SLUICE_T_UNSET");
    sl_node *root = load_ok("dir: ${SLUICE_T_DIR}/state\n"
                            "def: ${SLUICE_T_UNSET:-data/events.jsonl}\n"
                            "emptydef: ${SLUICE_T_EMPTY:-fallback}\n"
                            "empty: ${SLUICE_T_EMPTY}\n"
                            "num: ${SLUICE_T_NUM}\n"
                            "quoted: \"${SLUICE_T_NUM}\"\n"
                            "dollar: cost $$5 and $HOME and $\n"
                            "nested: ${SLUICE_T_UNSET:-${SLUICE_T_DIR}/x}\n"
                            "blankdef: ${SLUICE_T_UNSET:-}\n"
                            "${SLUICE_T_DIR}: key\n"
                            /* inside [...] and {...} YAML needs ${...} quoted */
                            "list: ['${SLUICE_T_NUM}', \"x${SLUICE_T_NUM}y\"]\n");
    assert_string_equal(at(root, "dir")->str, "/var/lib/x/state");
    assert_string_equal(at(root, "def")->str, "data/events.jsonl");
    assert_string_equal(at(root, "emptydef")->str, "fallback");
    assert_string_equal(at(root, "empty")->str, "");
    assert_true(at(root, "empty")->is_null);
    /* a plain scalar that expands to a number stays plain (a number) */
    assert_string_equal(at(root, "num")->str, "42");
    assert_false(at(root, "num")->quoted);
    assert_true(at(root, "quoted")->quoted);
    assert_string_equal(at(root, "dollar")->str, "cost $5 and $HOME and $");
    assert_string_equal(at(root, "nested")->str, "/var/lib/x/x");
    assert_string_equal(at(root, "blankdef")->str, "");
    /* keys are not expanded */
    assert_string_equal(at(root, "${SLUICE_T_DIR}")->str, "key");
    assert_string_equal(at(root, "list")->items[0]->str, "42");
    assert_string_equal(at(root, "list")->items[1]->str, "x42y");
    sl_node_destroy(&root);
    unsetenv("SLUICE_T_DIR");
    unsetenv("SLUICE_T_EMPTY");
    unsetenv("SLUICE_T_NUM");
}

static void test_expand_errors(void **state)
{
    (void)state;
    unsetenv("SLUICE_T_UNSET");
    expect_load_error("state_dir: ${SLUICE_T_UNSET}\n",
                      "p.yaml:1:12: environment variable 'SLUICE_T_UNSET' is not set "
                      "(use ${SLUICE_T_UNSET:-default})");
    expect_load_error("a:\n  path: \"x/${SLUICE_T_DIR\"\n",
                      "p.yaml:2:9: unterminated '${' (missing '}')");
    expect_load_error("a: ${1X}\n", "p.yaml:1:4: invalid variable name in '${1X}'");
    expect_load_error("a: ${X:+y}\n", "p.yaml:1:4: invalid variable reference '${X:+y}' "
                                      "(expected ${NAME} or ${NAME:-default})");
    /* the unset variable inside a default that is used */
    expect_load_error("a: ${SLUICE_T_UNSET:-${SLUICE_T_UNSET}}\n",
                      "p.yaml:1:4: environment variable 'SLUICE_T_UNSET' is not set "
                      "(use ${SLUICE_T_UNSET:-default})");
}

/* ------------------------------------------------------------- files */

static void test_load_file(void **state)
{
    char path[] = "/tmp/sluice-test-config-XXXXXX";
    const char *text = "pipeline: t\nbatch: {linger: 5ms}\n";
    sl_diag d;
    sl_node *root = NULL;
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    sl_diag_init(&d);
    assert_int_equal(sl_config_load_file(path, &d, &root), 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(root->file, path);
    assert_scalar(at(root, "batch.linger"), "5ms", 2, 17);
    assert_string_equal(at(root, "batch.linger")->file, path);
    sl_node_destroy(&root);
    unlink(path);

    assert_int_equal(sl_config_load_file(path, &d, &root), -1);
    assert_null(root);
    assert_int_equal(d.n, 1);
    char want[128];
    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path);
    assert_item(&d, 0, want);
    sl_diag_fini(&d);

    sl_diag_init(&d);
    assert_int_equal(sl_config_load_file("/nonexistent/x.yaml", &d, &root), -1);
    assert_item(&d, 0, "cannot open '/nonexistent/x.yaml': No such file or directory");
    sl_diag_fini(&d);
}

/* A file's syntax error carries the file's own name. */
static void test_load_file_error_names_file(void **state)
{
    char path[] = "/tmp/sluice-test-config-XXXXXX";
    const char *text = "a: 1\nb: [\n";
    sl_diag d;
    sl_node *root = NULL;
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    sl_diag_init(&d);
    assert_int_equal(sl_config_load_file(path, &d, &root), -1);
    char want[256];
    snprintf(want, sizeof want,
             "%s:3:1: did not find expected node content "
             "(while parsing a flow node)",
             path);
    assert_item(&d, 0, want);
    sl_node_destroy(&root);
    sl_diag_fini(&d);
    unlink(path);
}

/* ---------------------------------------------------------------- --set */

static const char *const base_yaml = "pipeline: demo\n"
                                     "batch:\n"
                                     "operators:\n"
                                     "  events:\n"
                                     "    type: source.file\n"
                                     "    path: data/events.jsonl\n"
                                     "  list: [1, 2]\n";

/* Apply one assignment that must succeed. */
static void set_ok(sl_node *root, const char *assignment)
{
    sl_diag d;
    sl_diag_init(&d);
    int rc = sl_config_set(root, assignment, &d);
    if (d.n) print_message("unexpected: %s\n", d.items[0].msg);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    sl_diag_fini(&d);
}

/* Apply one assignment that must fail with exactly `want`. */
static void set_error(sl_node *root, const char *assignment, const char *want)
{
    sl_diag d;
    sl_diag_init(&d);
    assert_int_equal(sl_config_set(root, assignment, &d), -1);
    assert_int_equal(d.n, 1);
    assert_item(&d, 0, want);
    sl_diag_fini(&d);
}

static void test_set_override(void **state)
{
    (void)state;
    sl_node *root = load_ok(base_yaml);
    set_ok(root, "operators.events.path=x.jsonl");
    sl_node *ev = at(root, "operators.events");
    assert_int_equal(ev->n, 2); /* replaced, not added */
    sl_node *path = at(root, "operators.events.path");
    assert_string_equal(path->str, "x.jsonl");
    assert_string_equal(path->file, "--set");
    assert_int_equal(path->line, 0);
    /* the key keeps its place in the file */
    assert_int_equal(ev->key_nodes[1]->line, 6);
    sl_node_destroy(&root);
}

static void test_set_creates_nested(void **state)
{
    (void)state;
    sl_node *root = load_ok(base_yaml);
    set_ok(root, "checkpoint.interval=10s");
    set_ok(root, "operators.events.watermark.max_out_of_order=5s");
    set_ok(root, "batch.linger=5ms"); /* `batch:` was empty (null): becomes a mapping */
    sl_node *cp = at(root, "checkpoint");
    assert_int_equal(cp->kind, SL_NODE_MAP);
    assert_string_equal(cp->file, "--set");
    assert_int_equal(cp->line, 0);
    assert_string_equal(at(root, "checkpoint.interval")->str, "10s");
    assert_string_equal(at(root, "operators.events.watermark.max_out_of_order")->str, "5s");
    assert_int_equal(at(root, "batch")->kind, SL_NODE_MAP);
    assert_string_equal(at(root, "batch.linger")->str, "5ms");
    assert_int_equal(root->n, 4);
    assert_string_equal(root->keys[3], "checkpoint");
    sl_node_destroy(&root);
}

/* Values are YAML flow nodes: lists, maps, quoted strings, empty. */
static void test_set_values(void **state)
{
    (void)state;
    sl_node *root = load_ok(base_yaml);
    set_ok(root, "operators.list=[3, 4, 5]");
    sl_node *list = at(root, "operators.list");
    assert_int_equal(list->kind, SL_NODE_SEQ);
    assert_int_equal(list->n, 3);
    assert_string_equal(list->items[2]->str, "5");
    assert_string_equal(list->items[2]->file, "--set");

    set_ok(root, "operators.events.on={left: a, right: b}");
    assert_int_equal(at(root, "operators.events.on")->kind, SL_NODE_MAP);
    assert_string_equal(at(root, "operators.events.on.right")->str, "b");

    set_ok(root, "a='123'");
    assert_true(at(root, "a")->quoted);
    set_ok(root, "b=123");
    assert_false(at(root, "b")->quoted);
    set_ok(root, "c=");
    assert_string_equal(at(root, "c")->str, "");
    assert_true(at(root, "c")->is_null);
    set_ok(root, "url=http://host:80/x?a=b"); /* only the first '=' splits */
    assert_string_equal(at(root, "url")->str, "http://host:80/x?a=b");
    /* a whole subtree is replaced by a scalar */
    set_ok(root, "operators.events=off");
    assert_string_equal(at(root, "operators.events")->str, "off");
    sl_node_destroy(&root);
}

static void test_set_errors(void **state)
{
    (void)state;
    sl_node *root = load_ok(base_yaml);
    set_error(root, "operators.events.path",
              "--set: 'operators.events.path': expected KEY=VALUE "
              "(e.g. operators.events.path=x.jsonl)");
    set_error(root, "=5", "--set: '=5': empty key");
    set_error(root, "a..b=1", "--set: 'a..b': empty key segment in the path");
    set_error(root, "a.=1", "--set: 'a.': empty key segment in the path");
    set_error(root, "pipeline.name=x",
              "--set: 'pipeline.name': 'pipeline' is a scalar, "
              "not a mapping");
    set_error(root, "operators.events.type.x.y=1",
              "--set: 'operators.events.type.x.y': 'operators.events.type' is a scalar, "
              "not a mapping");
    set_error(root, "operators.list.x=1",
              "--set: 'operators.list.x': 'operators.list' is a sequence, not a mapping");
    set_error(root, "operators.list=[1,",
              "--set: 'operators.list': invalid value '[1,': did not find expected node "
              "content (while parsing a flow node)");
    /* nothing changed */
    assert_int_equal(at(root, "operators.list")->n, 2);
    assert_string_equal(at(root, "pipeline")->str, "demo");
    assert_null(at(root, "a"));
    sl_node_destroy(&root);

    root = load_ok("- 1\n");
    set_error(root, "a=1", "--set: 'a': the document is a sequence, not a mapping");
    sl_node_destroy(&root);
}

/* sl_node_parse gives every node the caller's position; sl_node_map_set replaces. */
static void test_node_parse_and_map_set(void **state)
{
    sl_diag d;
    sl_node *v = NULL;
    (void)state;
    sl_diag_init(&d);
    assert_int_equal(sl_node_parse("{a: [1, 2]}", "f.yaml", 3, 5, &d, &v), 0);
    assert_int_equal(v->kind, SL_NODE_MAP);
    assert_int_equal(v->line, 3);
    assert_int_equal(sl_node_get(v, "a")->items[1]->col, 5);
    assert_string_equal(sl_node_get(v, "a")->file, "f.yaml");
    assert_null(v->file_owned);

    sl_node *w = NULL;
    assert_int_equal(sl_node_parse("x", "g.yaml", 1, 1, &d, &w), 0);
    assert_int_equal(sl_node_map_set(v, "a", w), 0);
    assert_string_equal(sl_node_get(v, "a")->str, "x");
    assert_int_equal(v->n, 1);
    w = NULL;
    assert_int_equal(sl_node_parse("", "g.yaml", 1, 1, &d, &w), 0);
    assert_true(w->is_null);
    assert_int_equal(sl_node_map_set(v, "b", w), 0);
    assert_int_equal(v->n, 2);
    assert_int_equal(v->key_nodes[1]->line, 1);
    assert_string_equal(v->key_nodes[1]->file, "g.yaml");
    /* not a map: fails and still frees the value */
    w = NULL;
    assert_int_equal(sl_node_parse("y", "g.yaml", 1, 1, &d, &w), 0);
    assert_int_equal(sl_node_map_set(sl_node_get(v, "a"), "k", w), -1);
    assert_int_equal(d.n, 0);

    assert_int_equal(sl_node_parse("[1,", "g.yaml", 7, 2, &d, &w), -1);
    assert_item(&d, 0,
                "g.yaml:7:2: did not find expected node content (while parsing a flow node)");
    sl_node_destroy(&w);
    sl_node_destroy(&v);
    sl_diag_fini(&d);

    assert_string_equal(sl_node_kind_name(SL_NODE_SCALAR), "a scalar");
    assert_string_equal(sl_node_kind_name(SL_NODE_MAP), "a mapping");
    assert_string_equal(sl_node_kind_name(SL_NODE_SEQ), "a sequence");
}

/* ------------------------------------------------------------- parsers */

static void test_parse_int(void **state)
{
    static const struct {
        const char *s;
        int ok;
        int64_t v;
    } cases[] = {
        {"0", 1, 0},
        {"42", 1, 42},
        {"-17", 1, -17},
        {"+5", 1, 5},
        {"0x1F", 1, 31},
        {"0Xff", 1, 255},
        {"-0x10", 1, -16},
        {"010", 1, 10}, /* decimal, not octal */
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN},
        {"9223372036854775808", 0, 0},
        {"-9223372036854775809", 0, 0},
        {"0x8000000000000000", 0, 0},
        {"99999999999999999999", 0, 0},
        {"", 0, 0},
        {"-", 0, 0},
        {"0x", 0, 0},
        {"12abc", 0, 0},
        {" 12", 0, 0},
        {"12 ", 0, 0},
        {"1.5", 0, 0},
        {"1e3", 0, 0},
        {"0x1g", 0, 0},
        {"--1", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 12345;
        int rc = sl_parse_int(cases[i].s, &v);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("sl_parse_int(\"%s\") returned %d", cases[i].s, rc);
        if (cases[i].ok)
            assert_true(v == cases[i].v);
        else
            assert_true(v == 12345); /* untouched on error */
    }
}

static void test_parse_double(void **state)
{
    static const struct {
        const char *s;
        int ok;
        double v;
    } cases[] = {
        {"0", 1, 0.0},     {"0.01", 1, 0.01},   {"-2.5", 1, -2.5}, {"1e3", 1, 1000.0},
        {"100", 1, 100.0}, {".5", 1, 0.5},      {"5.", 1, 5.0},    {"+1E-2", 1, 0.01},
        {"", 0, 0},        {"abc", 0, 0},       {"1.5x", 0, 0},    {"nan", 0, 0},
        {"inf", 0, 0},     {"-Infinity", 0, 0}, {"1e999", 0, 0},   {"0x10", 0, 0},
        {" 1", 0, 0},      {"1..2", 0, 0},      {".", 0, 0},       {"e5", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double v = 0;
        int rc = sl_parse_double(cases[i].s, &v);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("sl_parse_double(\"%s\") returned %d", cases[i].s, rc);
        if (cases[i].ok) assert_true(v == cases[i].v);
    }
}

static void test_parse_bool(void **state)
{
    static const struct {
        const char *s;
        int ok, v;
    } cases[] = {
        {"true", 1, 1}, {"True", 1, 1},  {"TRUE", 1, 1},  {"yes", 1, 1},
        {"on", 1, 1},   {"ON", 1, 1},    {"false", 1, 0}, {"no", 1, 0},
        {"Off", 1, 0},  {"FALSE", 1, 0}, {"1", 0, 0},     {"0", 0, 0},
        {"y", 0, 0},    {"", 0, 0},      {"truth", 0, 0}, {"true ", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int v = -1;
        int rc = sl_parse_bool(cases[i].s, &v);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("sl_parse_bool(\"%s\") returned %d", cases[i].s, rc);
        if (cases[i].ok) assert_int_equal(v, cases[i].v);
    }
}

static void test_parse_duration(void **state)
{
    static const int64_t US = 1000, MS = 1000000, S = INT64_C(1000000000);
    static const int64_t M = 60 * S, H = 3600 * S, D = 86400 * S;
    const struct {
        const char *s;
        int ok;
        int64_t v;
    } cases[] = {
        {"0", 1, 0},
        {"0s", 1, 0},
        {"10ns", 1, 10},
        {"100us", 1, 100 * US},
        {"250ms", 1, 250 * MS},
        {"5s", 1, 5 * S},
        {"1m", 1, M},
        {"1h", 1, H},
        {"1d", 1, D},
        {"1.5s", 1, 1500 * MS},
        {"0.25h", 1, 15 * M},
        {".5m", 1, 30 * S},
        {"1h30m", 1, H + 30 * M},
        {"1d2h3m4s5ms6us7ns", 1, D + 2 * H + 3 * M + 4 * S + 5 * MS + 6 * US + 7},
        {"1.000000001s", 1, S + 1},
        {"1.0000000019s", 1, S + 1}, /* beyond 1e-9 of the unit: truncated */
        {"106751d", 1, 106751 * D},
        {"106752d", 0, 0}, /* > INT64_MAX ns (about 292 years) */
        {"9223372036s", 1, INT64_C(9223372036) * S},
        {"9223372037s", 0, 0},
        {"9223372036s854775807ns", 1, INT64_MAX},
        {"9223372036s854775808ns", 0, 0},
        {"5x", 0, 0},
        {"5", 0, 0},
        {"-1s", 0, 0},
        {"+1s", 0, 0},
        {"", 0, 0},
        {"s", 0, 0},
        {"1.s", 0, 0},
        {"1h 30m", 0, 0},
        {"1h30", 0, 0},
        {"5S", 0, 0},
        {"00", 0, 0},
        {"1.5", 0, 0},
        {"5 s", 0, 0},
        {"5sec", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -7;
        int rc = sl_parse_duration(cases[i].s, &v);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("sl_parse_duration(\"%s\") returned %d", cases[i].s, rc);
        if (cases[i].ok && v != cases[i].v)
            fail_msg("sl_parse_duration(\"%s\") = %lld, want %lld", cases[i].s, (long long)v,
                     (long long)cases[i].v);
    }
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        int ok;
        uint64_t v;
    } cases[] = {
        {"0", 1, 0},
        {"512", 1, 512},
        {"512B", 1, 512},
        {"1KB", 1, 1000},
        {"1MB", 1, 1000000},
        {"1GB", 1, 1000000000},
        {"2TB", 1, UINT64_C(2000000000000)},
        {"64KiB", 1, 64 * 1024},
        {"16MiB", 1, 16 * 1024 * 1024},
        {"1GiB", 1, UINT64_C(1) << 30},
        {"1TiB", 1, UINT64_C(1) << 40},
        {"4K", 1, 4096},
        {"3M", 1, 3 << 20},
        {"2G", 1, UINT64_C(2) << 30},
        {"18446744073709551615", 1, UINT64_MAX},
        {"18446744073709551616", 0, 0},
        {"16777216TiB", 0, 0}, /* 2^64 */
        {"16777215TiB", 1, UINT64_C(16777215) << 40},
        {"", 0, 0},
        {"KB", 0, 0},
        {"5x", 0, 0},
        {"1.5GB", 0, 0},
        {"-1", 0, 0},
        {"1 KB", 0, 0},
        {"1kb", 0, 0},
        {"1KiBs", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 7;
        int rc = sl_parse_size(cases[i].s, &v);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("sl_parse_size(\"%s\") returned %d", cases[i].s, rc);
        if (cases[i].ok && v != cases[i].v)
            fail_msg("sl_parse_size(\"%s\") = %llu", cases[i].s, (unsigned long long)v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_and_positions),
        cmocka_unit_test(test_quoted_and_null),
        cmocka_unit_test(test_text_positions),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_alias),
        cmocka_unit_test(test_non_scalar_key),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_multiple_documents),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_errors_collected),
        cmocka_unit_test(test_expand_values),
        cmocka_unit_test(test_expand_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_file_error_names_file),
        cmocka_unit_test(test_set_override),
        cmocka_unit_test(test_set_creates_nested),
        cmocka_unit_test(test_set_values),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_node_parse_and_map_set),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
