/*
 * expr_internal.h - what the expression compiler's and evaluator's files share.
 *
 * Pipeline: expr_lex.c (tokens, literal decoding) -> expr_parse.c (a flat
 * node array, children by index) -> expr_check.c (name resolution, static
 * types, regex precompilation; calls expr_fold.c bottom-up to fold constant
 * subtrees) -> expr_compile.c (postfix bytecode, and-term split, the public
 * compile entry) -> expr_eval.c (the VM loop, field paths, the public eval
 * entries), with expr_ops.c (operator semantics), expr_func.c (built-in
 * functions), expr_value.c (values over msgpack: decode, equality, order,
 * encode), expr_time.c (durations) and expr_arena.c (bump allocator).
 *
 * Invariants:
 * - A value (sl__xval) is 16 bytes. Strings, bytes, lists and maps are
 *   borrowed pointers: into the event, into the compiled expression's
 *   constants, or into the VM arena (reset at the start of each evaluation).
 *   Lists and maps are msgpack bytes; their `len` is the number of readable
 *   bytes from the header on (an upper bound of the value's size, not its
 *   exact size), and every reader is bounded by it.
 * - Value kinds use the same numbers as sl_expr_type, plus XK_ERROR: an
 *   error is a value (v.s is its message) so that && and || can absorb it.
 * - Nothing recurses deeper than SL__X_MAX_DEPTH over the syntax tree (the
 *   parser refuses deeper trees) or SL__X_MAX_NEST over msgpack nesting.
 */
#ifndef SL_EXPR_INTERNAL_H
#define SL_EXPR_INTERNAL_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "expr.h"

#define SL__X_MAX_DEPTH 250 /* syntax tree depth, as CEL's default recursion limit */
#define SL__X_MAX_NEST 100  /* msgpack nesting followed by ==, in and map keys */

/* ------------------------------------------------------------------ arena */

typedef struct sl__xblock sl__xblock;

/*
 * A bump allocator over a list of blocks that never move, so pointers into
 * it stay valid until reset/fini. Reset keeps the blocks: once an evaluator
 * has seen its largest event it stops allocating.
 */
typedef struct sl__xarena {
    sl__xblock *head, *cur;
    size_t blocks; /* blocks ever allocated (tests watch it not grow) */
} sl__xarena;

void sl__xarena_init(sl__xarena *a);
void sl__xarena_fini(sl__xarena *a);
void sl__xarena_reset(sl__xarena *a);
/* n bytes, 8-aligned; NULL when out of memory. */
void *sl__xarena_alloc(sl__xarena *a, size_t n);
/* A copy of n bytes plus a NUL; NULL when out of memory. */
char *sl__xarena_strdup(sl__xarena *a, const char *s, size_t n);

/* ------------------------------------------------------------------ values */

enum {
    XK_NULL = SL_EXPR_NULL,
    XK_BOOL = SL_EXPR_BOOL,
    XK_INT = SL_EXPR_INT,
    XK_UINT = SL_EXPR_UINT,
    XK_DOUBLE = SL_EXPR_DOUBLE,
    XK_STRING = SL_EXPR_STRING,
    XK_BYTES = SL_EXPR_BYTES,
    XK_LIST = SL_EXPR_LIST,
    XK_MAP = SL_EXPR_MAP,
    XK_TIMESTAMP = SL_EXPR_TIMESTAMP, /* v.i: ns since the epoch */
    XK_DURATION = SL_EXPR_DURATION,   /* v.i: ns */
    XK_ERROR                          /* v.s: NUL-terminated message, len its length */
};

typedef struct sl__xval {
    uint8_t kind;
    uint8_t flags; /* XF_* of an error value; meaningless for other kinds */
    uint32_t len;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        const char *s;
        const uint8_t *mp;
    } v;
} sl__xval;

/*
 * An error that says something is missing (no such key, index out of range,
 * selecting from a non-map): has() answers false for these, and only these.
 */
#define XF_MISSING 1

/* Name of a kind or static type as CEL spells it ("int", "string", "dyn", ...). */
const char *sl__xkind_name(int kind);
/* Spelling of an operator ("+", "==", "in", ...). */
const char *sl__xop_name(int op);
/* A static error value. */
sl__xval sl__xstatic_err(const char *msg);

/*
 * Decode the msgpack value at p (bounded by end) into *out: non-negative
 * integers up to INT64_MAX are int, larger ones uint; the timestamp ext is a
 * timestamp; arrays/maps keep a pointer to their header. Returns 0, or -1
 * with *out an error value (static message: malformed or unsupported).
 */
int sl__xdecode(const uint8_t *p, const uint8_t *end, sl__xval *out);
/* Decode the element at *p and move *p past it (over nested elements too). Same returns. */
int sl__xnext(const uint8_t **p, const uint8_t *end, sl__xval *out);
/* Element count of a list or map value (its header); -1 if malformed. */
int64_t sl__xcount(const sl__xval *v);

/* Equality as CEL (numbers across int/uint/double by value): 1, 0, or -1 (malformed/too deep). */
int sl__xeq(const sl__xval *a, const sl__xval *b, int depth);
/*
 * Ordering: *r = -1, 0, 1, or 2 when unordered (NaN). Returns 0, or -1 when
 * the two kinds have no ordering (no matching overload).
 */
int sl__xcmp(const sl__xval *a, const sl__xval *b, int *r);
/* Find key in a map value: 1 found (*pos at its value), 0 absent, -1 malformed/too deep. */
int sl__xmap_find(const sl__xval *map, const sl__xval *key, const uint8_t **pos);
/* Same, decoding the value into *out (which may then be an error value). */
int sl__xmap_get(const sl__xval *map, const sl__xval *key, sl__xval *out);
/* Append v as one msgpack value (durations as int64 ns). Returns 0 or -1 (out of memory /
 * malformed). */
int sl__xencode(sl_wbuf *out, const sl__xval *v);
/* Exact byte size of a list or map value (sl_mp_skip over it); 0 if malformed. */
size_t sl__xcontainer_size(const sl__xval *v);
/* Number of UTF-8 code points (bytes that do not continue a sequence). */
int64_t sl__xutf8_count(const char *s, size_t n);
/* 1 if s is well-formed UTF-8. */
int sl__xutf8_valid(const char *s, size_t n);
/* Append the UTF-8 encoding of cp (<= 0x10FFFF) to buf; returns bytes written (1..4). */
int sl__xutf8_put(uint32_t cp, char *buf);

/* ------------------------------------------------------------- durations */

/* Go/CEL duration text ("1h30m", "1.5s", "-100ms", "0") -> ns. Returns 0 or -1. */
int sl__xduration_parse(const char *s, size_t n, int64_t *ns);
/* CEL's string(duration): seconds with the fraction trimmed, "5400s", "1.5s". Returns length; buf
 * >= 32. */
size_t sl__xduration_format(int64_t ns, char *buf);

/* UTC calendar fields of a timestamp (for the get*() accessors). */
typedef struct sl__xcivil_t {
    int64_t year;
    int month;     /* 1..12 */
    int day;       /* 1..31 */
    int yday;      /* 0..365 */
    int weekday;   /* 0 = Sunday */
    int64_t nanos; /* since midnight */
} sl__xcivil_t;
void sl__xcivil(int64_t ns, sl__xcivil_t *c);

/* ------------------------------------------------------------------ syntax */

typedef enum sl__xtokkind {
    T_EOF,
    T_INT,
    T_UINT,
    T_DOUBLE,
    T_STRING,
    T_BYTES,
    T_IDENT,
    T_NULL,
    T_TRUE,
    T_FALSE,
    T_IN,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_LBRACE,
    T_RBRACE,
    T_DOT,
    T_COMMA,
    T_COLON,
    T_QUESTION,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
    T_NOT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR
} sl__xtokkind;

typedef struct sl__xtok {
    sl__xtokkind kind;
    size_t off, len; /* where it is in the text */
    uint64_t u;      /* T_INT (magnitude, may be 2^63 for a negated literal), T_UINT */
    double d;        /* T_DOUBLE */
    const char *s;   /* T_STRING/T_BYTES decoded (arena), T_IDENT points into the text */
    size_t slen;
} sl__xtok;

/* Node kinds of the syntax tree. */
enum {
    N_CONST,  /* val */
    N_IDENT,  /* name; aux = doc index after resolution */
    N_SELECT, /* a.name */
    N_INDEX,  /* a[b] */
    N_CALL,   /* name(kids) or a.name(kids): kids include the receiver first; aux = function id */
    N_UNARY,  /* op a */
    N_BINARY, /* a op b (arithmetic, comparison, in) */
    N_AND,    /* a && b */
    N_OR,     /* a || b */
    N_COND,   /* a ? b : c */
    N_LIST,   /* [kids] */
    N_MAP,    /* {k0: v0, k1: v1, ...} as kids */
    N_HAS     /* has(a), a is N_SELECT, N_INDEX with a constant key, or N_IDENT */
};

/* Operators (N_UNARY, N_BINARY); also instruction numbers in expr_compile.c. */
enum {
    XOP_NEG,
    XOP_NOT,
    XOP_ADD,
    XOP_SUB,
    XOP_MUL,
    XOP_DIV,
    XOP_MOD,
    XOP_EQ,
    XOP_NE,
    XOP_LT,
    XOP_LE,
    XOP_GT,
    XOP_GE,
    XOP_IN
};

#define SL__XNONE UINT32_MAX

typedef struct sl__xnode {
    uint8_t kind;
    uint8_t op;   /* XOP_* */
    uint8_t type; /* static type (sl_expr_type) */
    uint8_t is_method;
    uint16_t depth; /* height of the subtree */
    uint32_t off;   /* byte offset of the token to blame (operator, name, literal) */
    uint32_t start; /* byte offset where the node's text begins */
    uint32_t a, b, c;
    uint32_t kids, nkids; /* range in the kids array */
    uint32_t aux;         /* function id, doc index, regex index */
    const char *name;     /* N_IDENT, N_SELECT, N_CALL */
    uint32_t name_len;
    sl__xval val; /* N_CONST */
} sl__xnode;

/* The compiler's state, from the text to the bytecode. */
typedef struct sl__xcc {
    const char *text;
    size_t len;
    const char *const *vars; /* NULL: event scope */
    size_t nvars;
    sl_expr_error *err;
    int failed;

    sl__xnode *nodes;
    uint32_t nnodes, capnodes;
    uint32_t *kids;
    uint32_t nkids, capkids;

    sl__xarena *arena; /* owned by the root sl_expr: constants, names, code */
    regex_t **regexes; /* each one malloc'ed; owned by the root sl_expr */
    uint32_t nregexes, capregexes;
    sl_expr_vm *vm; /* for folding */

    /* lexer */
    size_t pos;
    sl__xtok tok;
    int nest;
    int nofold;
} sl__xcc;

#define SL__X_NOFOLD 1 /* compile flag: no constant folding (tests compare both forms) */

/* sl_expr_compile with flags (SL__X_*). */
int sl__xcompile(const char *text, size_t len, const char *const *vars, int flags, sl_expr **out,
                 sl_expr_error *err);

/* Record a compile error at offset (the first one wins). Returns -1. */
int sl__xfail(sl__xcc *cc, size_t off, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Read the next token into cc->tok. Returns 0 or -1 (error recorded). */
int sl__xlex(sl__xcc *cc);
/* Parse the whole text; *root the top node. Returns 0 or -1. */
int sl__xparse(sl__xcc *cc, uint32_t *root);
/* Resolve, type check and fold the tree under n (bottom-up). Returns 0 or -1. */
int sl__xcheck(sl__xcc *cc, uint32_t n);
/* Fold node n if its operands are constants (called by the checker). Returns 0 or -1. */
int sl__xfold(sl__xcc *cc, uint32_t n);
/*
 * The static result type of operator op over operand types ta, tb
 * (SL_EXPR_DYN when unknown), or -1 when no overload can match.
 */
int sl__xop_type(int op, int ta, int tb);

/* ----------------------------------------------------------------- functions */

/* A built-in: args[0..n-1] (no errors among them), result in *out (may be an error). */
typedef void (*sl__xfn)(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out);

typedef struct sl__xfunc {
    const char *name;
    uint8_t global, method; /* callable as f(x, ...) / as x.f(...) */
    uint8_t nargs;          /* including the receiver */
    uint8_t pure;           /* may be folded */
    sl__xfn impl;
    const uint8_t (*sigs)[4]; /* {ret, p0, p1, p2}; p == 0 (dyn) matches anything */
    uint8_t nsigs;
} sl__xfunc;

extern const sl__xfunc sl__xfuncs[];
extern const size_t sl__xnfuncs;
#define SL__XFN_MATCHES 0 /* index of matches() in sl__xfuncs: compiled to its own instruction */

/* ------------------------------------------------------------------ bytecode */

enum {
    /* XOP_NEG .. XOP_IN come first (same numbers) */
    OP_CONST = XOP_IN + 1, /* push consts[a] */
    OP_PATH,               /* push the value at paths[a] */
    OP_HAS_PATH,           /* push whether paths[a] exists */
    OP_SELECT,             /* pop v, push v[consts[a]] */
    OP_HAS_FIELD,          /* pop v, push whether v has key consts[a] */
    OP_INDEX,              /* pop i, pop v, push v[i] */
    OP_AND,                /* top false: jump to a; else fall through */
    OP_AND_END,            /* pop b, pop a, push a && b (CEL, errors absorbed) */
    OP_OR,                 /* top true: jump to a */
    OP_OR_END,
    OP_COND,  /* pop c: true falls through, false jumps to a, else pushes an error and jumps
                 where the JMP at a-1 goes */
    OP_JMP,   /* to a */
    OP_LIST,  /* pop a values, push a list */
    OP_MAP,   /* pop 2a values, push a map */
    OP_CALL,  /* sl__xfuncs[a] over the top n values */
    OP_MATCH, /* pop s, push regexes[a] matches s */
};

typedef struct sl__xins {
    uint8_t op;
    uint8_t n;
    uint16_t pad;
    uint32_t a;
} sl__xins;

typedef struct sl__xseg {
    const char *key; /* NULL: an index segment */
    uint32_t klen;
    uint8_t ikind;   /* XK_INT or XK_UINT: how the index was written (for messages) */
    uint8_t bracket; /* a key written a["k"] (errors as OP_INDEX) rather than a.k */
    int64_t index;
} sl__xseg;

typedef struct sl__xpath {
    uint32_t doc;
    uint32_t nseg;
    const sl__xseg *segs;
} sl__xpath;

struct sl_expr {
    const sl__xins *code;
    uint32_t ncode;
    const sl__xval *consts;
    const sl__xpath *paths;
    regex_t *const *regexes;
    uint32_t max_stack;
    uint32_t ndocs;
    uint8_t type;
    /* a plain field path (sl_expr_path) */
    size_t path_n;
    const char *const *path_segs;
    const size_t *path_lens;
    /* top-level && terms; a single term is the expression itself */
    const struct sl_expr *const *terms;
    size_t nterms;
    /* the root owns these; terms share them */
    sl__xarena *arena;
    regex_t **owned_regexes;
    uint32_t nowned_regexes;
};

struct sl_expr_vm {
    sl__xval *stack;
    size_t cap;
    sl__xarena arena;
    sl_wbuf scratch;
    size_t allocs; /* stack growths (arena blocks are in arena.blocks) */
    char err[256];
};

/* Run e and leave the result in *res (which may be an error value). Returns 0, or -1 on out of
 * memory. */
int sl__xrun(const sl_expr *e, sl_expr_vm *vm, const uint8_t *const *docs, const size_t *lens,
             size_t n_docs, sl__xval *res);
/* An error value whose message is formatted into the VM arena. */
sl__xval sl__xerr(sl_expr_vm *vm, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "no matching overload for 'name' applied to (int, string)" as an error value. */
sl__xval sl__xnooverload(sl_expr_vm *vm, const char *name, const sl__xval *args, uint32_t n);

/* Operators over values (expr_ops.c); the result may be an error value. */
void sl__xunary(sl_expr_vm *vm, int op, const sl__xval *a, sl__xval *out);
void sl__xbinary(sl_expr_vm *vm, int op, const sl__xval *a, const sl__xval *b, sl__xval *out);
void sl__xindex(sl_expr_vm *vm, const sl__xval *a, const sl__xval *i, sl__xval *out);
/* The "missing" errors (XF_MISSING): key absent from a map, index past a list's end. */
sl__xval sl__xkey_error(sl_expr_vm *vm, const sl__xval *key);
sl__xval sl__xrange_error(sl_expr_vm *vm, const sl__xval *index, uint32_t size);
/* Build a list or map from values (in the VM arena). */
void sl__xmake_list(sl_expr_vm *vm, const sl__xval *items, uint32_t n, sl__xval *out);
void sl__xmake_map(sl_expr_vm *vm, const sl__xval *kv, uint32_t pairs, sl__xval *out);

/* Generate bytecode for the subtree n into a new expression in cc's arena (used by folding too). */
int sl__xgen(sl__xcc *cc, uint32_t n, sl_expr **out);

#endif
