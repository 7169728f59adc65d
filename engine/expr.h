/*
 * expr.h - the expression language: a subset of CEL (Common Expression
 * Language) evaluated straight on msgpack events.
 *
 *   type.startsWith("order.") && data.total > 100.0
 *   data.customerId in ["cust-123", "cust-456"]
 *   has(data.status) ? data.status.lower() : "unknown"
 *
 * An expression is parsed once (sl_expr_compile), checked where types are
 * known, constant-folded, and compiled to a compact form that an evaluator
 * (sl_expr_vm, one per operator instance) runs against event bytes without
 * building a DOM and without allocating for non-string results.
 *
 * Scope: with no variables declared, identifiers name the event's top-level
 * attributes (`type`, `data`, `id`, `time`, ...). With variables declared
 * (a join's `left` and `right`), each identifier must be one of them and
 * each variable is bound to its own msgpack document at evaluation.
 *
 * Semantics are CEL's (see docs/expressions.md): int, uint and double are
 * distinct (no implicit mixing in arithmetic; comparisons across numeric
 * types are allowed as in cel-go's heterogeneous equality/ordering),
 * integer overflow and division by zero are errors, a missing field is an
 * error (test with has()), and && / || absorb errors when the other side
 * decides the result.
 */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_expr sl_expr;
typedef struct sl_expr_vm sl_expr_vm;

/* Static type of an expression, where the checker can tell. */
typedef enum sl_expr_type {
    SL_EXPR_DYN, /* known only at run time (e.g. an event field) */
    SL_EXPR_NULL,
    SL_EXPR_BOOL,
    SL_EXPR_INT,
    SL_EXPR_UINT,
    SL_EXPR_DOUBLE,
    SL_EXPR_STRING,
    SL_EXPR_BYTES,
    SL_EXPR_LIST,
    SL_EXPR_MAP,
    SL_EXPR_TIMESTAMP,
    SL_EXPR_DURATION
} sl_expr_type;

typedef struct sl_expr_error {
    char msg[256]; /* e.g. "unknown function 'startWith' (did you mean 'startsWith'?)" */
    size_t offset; /* byte offset into the expression text of the offending token */
} sl_expr_error;

/*
 * Compile `text` (`len` bytes). `vars` is a NULL-terminated list of
 * variable names, or NULL for the event scope. Returns 0 and *out, or -1
 * with *err filled (nothing to free). `text` and `vars` are borrowed for the
 * call only. A compiled expression is immutable: several threads may
 * evaluate it at once, each with its own sl_expr_vm.
 */
int sl_expr_compile(const char *text, size_t len, const char *const *vars, sl_expr **out,
                    sl_expr_error *err);
/* Accepts NULL; sets *ep to NULL. */
void sl_expr_destroy(sl_expr **ep);

/* The checker's idea of the result type (SL_EXPR_DYN when unknown). */
sl_expr_type sl_expr_result_type(const sl_expr *e);
/*
 * If the expression is a plain field path (a.b["c"].d), its segments; else 0.
 * With variables, segments[0] is the variable's name. A list index (a.b[0])
 * makes it no plain path. The arrays are borrowed from e.
 */
size_t sl_expr_path(const sl_expr *e, const char *const **segments, const size_t **lens);
/*
 * Top-level && terms: number of them, and the i-th as its own compiled
 * expression (borrowed from e; NULL past the end). An expression that is no
 * && has one term, e itself. Evaluating the terms in any order and combining
 * them as CEL does (any false: false; else any error: error; else true)
 * gives exactly the result of e.
 */
size_t sl_expr_and_terms(const sl_expr *e);
const sl_expr *sl_expr_and_term(const sl_expr *e, size_t i);

/* An evaluator: stack and scratch memory, reused across events. Not thread-safe. */
sl_expr_vm *sl_expr_vm_new(void);
void sl_expr_vm_destroy(sl_expr_vm **vmp);

/*
 * Evaluate as a predicate against `n_docs` msgpack documents (the event, or
 * one per declared variable, in order). Returns 1 (true), 0 (false), or -1
 * on an evaluation error or a non-bool result (the reason is in
 * sl_expr_vm_error).
 */
int sl_expr_eval_bool(const sl_expr *e, sl_expr_vm *vm, const uint8_t *const *docs,
                      const size_t *lens, size_t n_docs);

/*
 * Evaluate and append the result as one msgpack value to `out`. Returns 0,
 * or -1 on an evaluation error (out unchanged; reason in sl_expr_vm_error).
 * Timestamps are written as the timestamp extension, durations as int64
 * nanoseconds, lists and maps as msgpack arrays and maps.
 */
int sl_expr_eval_msgpack(const sl_expr *e, sl_expr_vm *vm, const uint8_t *const *docs,
                         const size_t *lens, size_t n_docs, sl_wbuf *out);

/* Message of the last evaluation error, e.g. "no such key: 'total'" or "division by zero". */
const char *sl_expr_vm_error(const sl_expr_vm *vm);

/*
 * Heap allocations the evaluator has made since sl_expr_vm_new (stack
 * growth, arena blocks). It stops changing once the evaluator has seen its
 * largest expression and event: evaluating then allocates nothing, except
 * what libc's regexec may allocate inside matches().
 */
size_t sl_expr_vm_allocations(const sl_expr_vm *vm);

#ifdef __cplusplus
}
#endif

#endif
