/*
 * catalog_record.c - one API of the catalog: reading and checking a record,
 * its stored form, its JSON, and the words the search index holds for it.
 *
 * A record arrives in three shapes, all msgpack maps read in place by one
 * reader (cat_api_read) so that a seed entry, an admin body and a stored
 * record obey the same rules: a JSON body parsed by engine/json.h, a seed
 * entry converted from YAML (catalog_seed.c), and the stored record. The
 * source decides which members may appear (`openapi` is never stored in the
 * record: it lives apart, in the `docs` database, as JSON text).
 *
 * The stored form (cat_api_encode) always has every member, in one order,
 * absent strings empty and absent lists []: readers (the portal, the list)
 * never meet a missing member.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "diag.h"

static const struct {
    const char *name;
    unsigned bit;
} members[] = {
    {"id", CAT_F_ID},
    {"name", CAT_F_NAME},
    {"summary", CAT_F_SUMMARY},
    {"description", CAT_F_DESCRIPTION},
    {"category", CAT_F_CATEGORY},
    {"tags", CAT_F_TAGS},
    {"version", CAT_F_VERSION},
    {"base_url", CAT_F_BASE_URL},
    {"plans", CAT_F_PLANS},
    {"openapi", CAT_F_OPENAPI},
    {"updated", CAT_F_UPDATED},
    {"origin", CAT_F_ORIGIN},
    {"seed_hash", CAT_F_SEED_HASH},
    {"docs", CAT_F_DOCS},
};
#define N_MEMBERS (sizeof members / sizeof *members)

#define WRITABLE                                                                                   \
    (CAT_F_ID | CAT_F_NAME | CAT_F_SUMMARY | CAT_F_DESCRIPTION | CAT_F_CATEGORY | CAT_F_TAGS |     \
     CAT_F_VERSION | CAT_F_BASE_URL | CAT_F_PLANS | CAT_F_OPENAPI)
/* read-only members a body may carry (what GET /admin/apis/{id} shows), ignored */
#define READ_ONLY (CAT_F_UPDATED | CAT_F_DOCS | CAT_F_ORIGIN)

static unsigned allowed(cat_source src)
{
    switch (src) {
    case CAT_FROM_BODY:
        return WRITABLE | READ_ONLY;
    case CAT_FROM_SEED:
        return WRITABLE;
    case CAT_FROM_STORE:
        return (WRITABLE & ~CAT_F_OPENAPI) | CAT_F_UPDATED | CAT_F_ORIGIN | CAT_F_SEED_HASH;
    }
    return 0;
}

/* ------------------------------------------------------------ errors */

int cat_err_set(cat_err *e, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->depth = 0;
    if (key) {
        snprintf(e->at[0].key, sizeof e->at[0].key, "%s", key);
        e->at[0].index = -1;
        e->depth = 1;
    }
    return -1;
}

static void step_key(cat_err *e, const char *k)
{
    if (e->depth == 4) return;
    snprintf(e->at[e->depth].key, sizeof e->at[0].key, "%s", k);
    e->at[e->depth++].index = -1;
}

static void step_index(cat_err *e, int i)
{
    if (e->depth == 4) return;
    e->at[e->depth].key[0] = '\0';
    e->at[e->depth++].index = i;
}

/* ------------------------------------------------------------ checks */

static int alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

int cat_id_valid(const char *s, size_t n)
{
    if (n == 0 || n > CAT_MAX_ID || !alnum((unsigned char)s[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!alnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '~' && s[i] != '-')
            return 0;
    return 1;
}

int cat_category_valid(const char *s, size_t n)
{
    if (n == 0 || n > CAT_MAX_CATEGORY) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 (i > 0 && (ch == '.' || ch == '_' || ch == '-'));
        if (!ok) return 0;
    }
    return 1;
}

/* Whether s is text of at most max bytes without control characters (\n, \t with multiline). */
static int text_ok(const char *s, size_t n, size_t max, int multiline)
{
    if (n > max) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0x7f || (ch < 0x20 && !(multiline && (ch == '\n' || ch == '\t' || ch == '\r'))))
            return 0;
    }
    return 1;
}

static int url_ok(const char *s, size_t n)
{
    if (n == 0) return 1;
    if (n > CAT_MAX_URL) return 0;
    if (!(n > 8 && memcmp(s, "https://", 8) == 0) && !(n > 7 && memcmp(s, "http://", 7) == 0))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

static int key_is(const sl_mp_val *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == SL_MP_STR && k->v.str.len == n && memcmp(k->v.str.ptr, s, n) == 0;
}

/* tags: an array of at most CAT_MAX_TAGS strings of 1 to CAT_MAX_TAG bytes. */
static int read_tags(const uint8_t *p, const uint8_t *end, cat_err *e)
{
    sl_mp_val v;
    if (sl_mp_read(&p, end, &v) != 0 || v.type != SL_MP_ARRAY || v.v.n > CAT_MAX_TAGS)
        return cat_err_set(e, "tags", "'tags' must be a list of at most %d strings", CAT_MAX_TAGS);
    for (uint32_t i = 0; i < v.v.n; i++) {
        sl_mp_val t;
        if (sl_mp_read(&p, end, &t) != 0 || t.type != SL_MP_STR || t.v.str.len == 0 ||
            !text_ok(t.v.str.ptr, t.v.str.len, CAT_MAX_TAG, 0)) {
            cat_err_set(e, "tags",
                        "tags[%u] must be a string of 1 to %d characters (no control "
                        "characters)",
                        i, CAT_MAX_TAG);
            step_index(e, (int)i);
            return -1;
        }
    }
    return 0;
}

/* plans: an array of at most CAT_MAX_PLANS maps {name, limits?}. */
static int read_plans(const uint8_t *p, const uint8_t *end, cat_err *e)
{
    sl_mp_val v;
    if (sl_mp_read(&p, end, &v) != 0 || v.type != SL_MP_ARRAY || v.v.n > CAT_MAX_PLANS)
        return cat_err_set(e, "plans", "'plans' must be a list of at most %d {name, limits}",
                           CAT_MAX_PLANS);
    for (uint32_t i = 0; i < v.v.n; i++) {
        sl_mp_val m;
        if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) {
            cat_err_set(e, "plans", "plans[%u] must be a map {name, limits}", i);
            step_index(e, (int)i);
            return -1;
        }
        int have_name = 0, have_limits = 0;
        for (uint32_t j = 0; j < m.v.n; j++) {
            sl_mp_val k, x;
            const uint8_t *vp;
            if (sl_mp_read(&p, end, &k) != 0) return cat_err_set(e, "plans", "malformed plans");
            vp = p;
            if (sl_mp_read(&vp, end, &x) != 0 || sl_mp_skip(&p, end) != 0)
                return cat_err_set(e, "plans", "malformed plans");
            const char *what = key_is(&k, "name") ? "name" : key_is(&k, "limits") ? "limits" : NULL;
            int ok;
            if (!what) {
                cat_err_set(e, "plans", "plans[%u]: unknown member '%.*s' (expected name, limits)",
                            i, k.type == SL_MP_STR ? (int)(k.v.str.len > 40 ? 40 : k.v.str.len) : 1,
                            k.type == SL_MP_STR ? k.v.str.ptr : "?");
                step_index(e, (int)i);
                return -1;
            }
            int *seen = what[0] == 'n' ? &have_name : &have_limits;
            if (what[0] == 'n')
                ok = x.type == SL_MP_STR && x.v.str.len > 0 &&
                     text_ok(x.v.str.ptr, x.v.str.len, CAT_MAX_PLAN_NAME, 0);
            else
                ok = x.type == SL_MP_NIL ||
                     (x.type == SL_MP_STR &&
                      text_ok(x.v.str.ptr, x.v.str.len, CAT_MAX_PLAN_TEXT, 0));
            if (*seen || !ok) {
                if (*seen)
                    cat_err_set(e, "plans", "plans[%u]: member '%s' appears twice", i, what);
                else if (what[0] == 'n')
                    cat_err_set(e, "plans", "plans[%u].name must be a string of 1 to %d characters",
                                i, CAT_MAX_PLAN_NAME);
                else
                    cat_err_set(e, "plans",
                                "plans[%u].limits must be a string of at most %d "
                                "characters",
                                i, CAT_MAX_PLAN_TEXT);
                step_index(e, (int)i);
                step_key(e, what);
                return -1;
            }
            *seen = 1;
        }
        if (!have_name) {
            cat_err_set(e, "plans", "plans[%u] needs a name", i);
            step_index(e, (int)i);
            return -1;
        }
    }
    return 0;
}

/* The OpenAPI document: a map with openapi "3.x", info {title, version} and paths. */
static int read_openapi(const uint8_t *p, const uint8_t *end, cat_err *e)
{
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP)
        return cat_err_set(e, "openapi", "'openapi' must be an OpenAPI 3 document (an object)");
    int have = 0;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0) return cat_err_set(e, "openapi", "malformed document");
        const uint8_t *vp = p;
        if (sl_mp_read(&vp, end, &v) != 0) return cat_err_set(e, "openapi", "malformed document");
        if (key_is(&k, "openapi")) {
            have |= 1;
            if (v.type != SL_MP_STR || v.v.str.len < 3 || v.v.str.len > 16 ||
                memcmp(v.v.str.ptr, "3.", 2) != 0) {
                cat_err_set(e, "openapi",
                            "openapi.openapi must be the OpenAPI version, a string "
                            "\"3.x.y\" (quote it in YAML)");
                step_key(e, "openapi");
                return -1;
            }
        } else if (key_is(&k, "info")) {
            have |= 2;
            if (v.type != SL_MP_MAP) {
                cat_err_set(e, "openapi", "openapi.info must be an object {title, version}");
                step_key(e, "info");
                return -1;
            }
            const uint8_t *ip = p, *t;
            t = ip;
            int rt = sl_mp_map_find(&t, end, "title", 5);
            sl_mp_val tv;
            if (rt != 1 || sl_mp_read(&t, end, &tv) != 0 || tv.type != SL_MP_STR ||
                tv.v.str.len == 0) {
                cat_err_set(e, "openapi", "openapi.info.title must be a non-empty string");
                step_key(e, "info");
                if (rt == 1) step_key(e, "title");
                return -1;
            }
            t = ip;
            rt = sl_mp_map_find(&t, end, "version", 7);
            if (rt != 1 || sl_mp_read(&t, end, &tv) != 0 || tv.type != SL_MP_STR) {
                cat_err_set(e, "openapi",
                            "openapi.info.version must be a string (quote it in YAML: \"1.0\")");
                step_key(e, "info");
                if (rt == 1) step_key(e, "version");
                return -1;
            }
        } else if (key_is(&k, "paths")) {
            have |= 4;
            if (v.type != SL_MP_MAP) {
                cat_err_set(e, "openapi", "openapi.paths must be an object");
                step_key(e, "paths");
                return -1;
            }
        }
        if (sl_mp_skip(&p, end) != 0) return cat_err_set(e, "openapi", "malformed document");
    }
    if (have != 7)
        return cat_err_set(e, "openapi", "the OpenAPI document needs %s",
                           !(have & 1)   ? "'openapi' (the version, \"3.0.3\")"
                           : !(have & 2) ? "'info' {title, version}"
                                         : "'paths'");
    return 0;
}

/* Read a string member of at most max bytes; "what" names it in errors. */
static int read_text(const sl_mp_val *v, cat_str *out, size_t min, size_t max, int multiline,
                     const char *what, cat_err *e)
{
    if (v->type != SL_MP_STR || v->v.str.len < min ||
        !text_ok(v->v.str.ptr, v->v.str.len, max, multiline))
        return cat_err_set(e, what, "'%s' must be a string of %zu to %zu characters%s", what, min,
                           max, multiline ? "" : " without control characters or line breaks");
    out->p = v->v.str.ptr;
    out->n = v->v.str.len;
    return 0;
}

int cat_api_read(const uint8_t *p, size_t len, cat_source src, cat_api *a, cat_err *e)
{
    const uint8_t *end = p + len;
    unsigned ok_bits = allowed(src);
    sl_mp_val m;
    memset(a, 0, sizeof *a);
    e->depth = 0;
    e->msg[0] = '\0';
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP)
        return cat_err_set(e, NULL, "an API is an object {id, name, category, openapi, ...}");
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR)
            return cat_err_set(e, NULL, "member names must be strings");
        unsigned bit = 0;
        const char *name = NULL;
        for (size_t j = 0; j < N_MEMBERS; j++)
            if (key_is(&k, members[j].name)) {
                bit = members[j].bit;
                name = members[j].name;
            }
        if (!(bit & ok_bits)) {
            char word[48];
            snprintf(word, sizeof word, "%.*s", (int)(k.v.str.len > 40 ? 40 : k.v.str.len),
                     k.v.str.ptr);
            const char *cands[N_MEMBERS + 1];
            size_t nc = 0;
            for (size_t j = 0; j < N_MEMBERS; j++)
                if (members[j].bit & ok_bits & ~READ_ONLY) cands[nc++] = members[j].name;
            cands[nc] = NULL;
            const char *hint = sl_suggest(word, cands);
            cat_err_set(e, NULL, "unknown member '%s'%s%s%s", word, hint ? " (did you mean '" : "",
                        hint ? hint : "", hint ? "'?)" : "");
            step_key(e, word);
            return -1;
        }
        if ((a->have | a->nulls) & bit)
            return cat_err_set(e, name, "member '%s' appears twice", name);
        const uint8_t *vs = p;
        if (sl_mp_read(&p, end, &v) != 0) return cat_err_set(e, name, "malformed value");
        p = vs;
        if (sl_mp_skip(&p, end) != 0) return cat_err_set(e, name, "malformed value");
        if (src == CAT_FROM_BODY && (bit & READ_ONLY)) continue; /* shown by GET, not set */
        if (v.type == SL_MP_NIL && src != CAT_FROM_STORE) {
            a->nulls |= bit;
            continue;
        }
        int rc = 0;
        switch (bit) {
        case CAT_F_ID:
            if (v.type != SL_MP_STR || !cat_id_valid(v.v.str.ptr, v.v.str.len))
                rc = cat_err_set(e, name,
                                 "'id' must be 1 to %d characters among A-Z a-z 0-9 . _ "
                                 "~ -, starting with a letter or digit",
                                 CAT_MAX_ID);
            else
                a->id = (cat_str){v.v.str.ptr, v.v.str.len};
            break;
        case CAT_F_NAME:
            rc = read_text(&v, &a->name, 1, CAT_MAX_NAME, 0, name, e);
            break;
        case CAT_F_SUMMARY:
            rc = read_text(&v, &a->summary, 0, CAT_MAX_SUMMARY, 0, name, e);
            break;
        case CAT_F_DESCRIPTION:
            rc = read_text(&v, &a->description, 0, CAT_MAX_DESCRIPTION, 1, name, e);
            break;
        case CAT_F_VERSION:
            rc = read_text(&v, &a->version, 0, CAT_MAX_VERSION, 0, name, e);
            break;
        case CAT_F_CATEGORY:
            if (v.type != SL_MP_STR || !cat_category_valid(v.v.str.ptr, v.v.str.len))
                rc = cat_err_set(e, name,
                                 "'category' must be 1 to %d characters among a-z 0-9 . "
                                 "_ -, starting with a letter or digit (lower case)",
                                 CAT_MAX_CATEGORY);
            else
                a->category = (cat_str){v.v.str.ptr, v.v.str.len};
            break;
        case CAT_F_BASE_URL:
            if (v.type != SL_MP_STR || !url_ok(v.v.str.ptr, v.v.str.len))
                rc = cat_err_set(e, name,
                                 "'base_url' must be an http:// or https:// URL of at "
                                 "most %d characters, without spaces",
                                 CAT_MAX_URL);
            else
                a->base_url = (cat_str){v.v.str.ptr, v.v.str.len};
            break;
        case CAT_F_TAGS:
            rc = read_tags(vs, p, e);
            a->tags = vs;
            a->tags_len = (size_t)(p - vs);
            break;
        case CAT_F_PLANS:
            rc = read_plans(vs, p, e);
            a->plans = vs;
            a->plans_len = (size_t)(p - vs);
            break;
        case CAT_F_OPENAPI:
            rc = read_openapi(vs, p, e);
            a->openapi = vs;
            a->openapi_len = (size_t)(p - vs);
            break;
        case CAT_F_UPDATED:
            if (v.type != SL_MP_EXT || sl_mp_timestamp_ns(&v, &a->updated) != 0)
                rc = cat_err_set(e, name, "'updated' must be a time");
            break;
        case CAT_F_ORIGIN:
            if (key_is(&v, "seed") || key_is(&v, "admin"))
                a->origin = (cat_str){v.v.str.ptr, v.v.str.len};
            else
                rc = cat_err_set(e, name, "'origin' must be \"seed\" or \"admin\"");
            break;
        case CAT_F_SEED_HASH:
            if (v.type != SL_MP_UINT)
                rc = cat_err_set(e, name, "'seed_hash' must be a number");
            else
                a->seed_hash = v.v.u;
            break;
        default:
            break;
        }
        if (rc != 0) return -1;
        a->have |= bit;
    }
    if (p != end) return cat_err_set(e, NULL, "trailing bytes after the record");
    return 0;
}

int cat_api_complete(const cat_api *a, cat_err *e)
{
    static const struct {
        unsigned bit;
        const char *name;
    } req[] = {{CAT_F_ID, "id"},
               {CAT_F_NAME, "name"},
               {CAT_F_CATEGORY, "category"},
               {CAT_F_OPENAPI, "openapi"}};
    for (size_t i = 0; i < sizeof req / sizeof *req; i++)
        if (!(a->have & req[i].bit))
            return cat_err_set(e, NULL,
                               "an API needs '%s' (required: id, name, category, "
                               "openapi)",
                               req[i].name);
    return 0;
}

/* ------------------------------------------------------------ the stored form */

static int write_str(sl_wbuf *b, const char *key, const cat_str *s)
{
    return sl_mp_write_cstr(b, key) | sl_mp_write_str(b, s->p ? s->p : "", s->n);
}

int cat_api_encode(const cat_api *a, int64_t updated, int origin, uint64_t seed_hash, sl_wbuf *out)
{
    int bad = sl_mp_write_map(out, origin == CAT_ORIGIN_SEED ? 12 : 11) |
              write_str(out, "id", &a->id) | write_str(out, "name", &a->name) |
              write_str(out, "summary", &a->summary) |
              write_str(out, "description", &a->description) |
              write_str(out, "category", &a->category) | sl_mp_write_cstr(out, "tags");
    /* tags and plans are written anew: a body's plan members may come in any order */
    const uint8_t *p = a->tags, *end = a->tags + a->tags_len;
    sl_mp_val v;
    if (p && sl_mp_read(&p, end, &v) == 0 && v.type == SL_MP_ARRAY) {
        bad |= sl_mp_write_array(out, v.v.n);
        for (uint32_t i = 0; i < v.v.n; i++) {
            sl_mp_val t;
            if (sl_mp_read(&p, end, &t) != 0) return -1;
            bad |= sl_mp_write_str(out, t.v.str.ptr, t.v.str.len);
        }
    } else {
        bad |= sl_mp_write_array(out, 0);
    }
    bad |= write_str(out, "version", &a->version) | write_str(out, "base_url", &a->base_url) |
           sl_mp_write_cstr(out, "plans");
    p = a->plans;
    end = a->plans + a->plans_len;
    if (p && sl_mp_read(&p, end, &v) == 0 && v.type == SL_MP_ARRAY) {
        bad |= sl_mp_write_array(out, v.v.n);
        for (uint32_t i = 0; i < v.v.n; i++) {
            const uint8_t *q = p, *f;
            sl_mp_val name = {0}, limits = {0};
            f = q;
            if (sl_mp_map_find(&f, end, "name", 4) == 1) sl_mp_read(&f, end, &name);
            f = q;
            if (sl_mp_map_find(&f, end, "limits", 6) == 1) sl_mp_read(&f, end, &limits);
            if (sl_mp_skip(&p, end) != 0) return -1;
            bad |= sl_mp_write_map(out, 2) | sl_mp_write_cstr(out, "name") |
                   sl_mp_write_str(out, name.type == SL_MP_STR ? name.v.str.ptr : "",
                                   name.type == SL_MP_STR ? name.v.str.len : 0) |
                   sl_mp_write_cstr(out, "limits") |
                   sl_mp_write_str(out, limits.type == SL_MP_STR ? limits.v.str.ptr : "",
                                   limits.type == SL_MP_STR ? limits.v.str.len : 0);
        }
    } else {
        bad |= sl_mp_write_array(out, 0);
    }
    bad |= sl_mp_write_cstr(out, "updated") | sl_mp_write_timestamp(out, updated) |
           sl_mp_write_cstr(out, "origin") |
           sl_mp_write_cstr(out, origin == CAT_ORIGIN_SEED ? "seed" : "admin");
    if (origin == CAT_ORIGIN_SEED)
        bad |= sl_mp_write_cstr(out, "seed_hash") | sl_mp_write_uint(out, seed_hash);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------ JSON */

int cat_render_full(const catalog *c, const uint8_t *rec, size_t len, int admin, const char *doc,
                    size_t doc_len, sl_wbuf *out)
{
    const uint8_t *p = rec, *end = rec + len;
    sl_mp_val m, id = {0};
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return -1;
    int bad = sl_wbuf_append(out, "{", 1), first = 1;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR) return -1;
        const uint8_t *vs = p;
        if (sl_mp_skip(&p, end) != 0) return -1;
        if (key_is(&k, "seed_hash") || (!admin && key_is(&k, "origin"))) continue;
        if (key_is(&k, "id")) {
            const uint8_t *q = vs;
            sl_mp_read(&q, end, &id);
        }
        bad |= (first ? 0 : sl_wbuf_append(out, ",", 1)) |
               sl_json_write_string(out, k.v.str.ptr, k.v.str.len) | sl_wbuf_append(out, ":", 1) |
               sl_msgpack_to_json(vs, (size_t)(p - vs), out);
        first = 0;
    }
    if (id.type != SL_MP_STR) return -1;
    char link[CAT_MAX_PREFIX + CAT_MAX_ID + 8];
    int ln =
        snprintf(link, sizeof link, "%s/%.*s/docs", c->prefix, (int)id.v.str.len, id.v.str.ptr);
    bad |= sl_wbuf_append(out, ",\"docs\":", 8) | sl_json_write_string(out, link, (size_t)ln);
    if (admin)
        bad |= sl_wbuf_append(out, ",\"openapi\":", 11) |
               (doc ? sl_wbuf_append(out, doc, doc_len) : sl_wbuf_append(out, "null", 4));
    bad |= sl_wbuf_append(out, "}", 1);
    return bad ? -1 : 0;
}

int cat_render_item(const uint8_t *rec, size_t len, sl_wbuf *out)
{
    static const char *const keys[] = {"id", "name", "summary", "category", "tags"};
    const uint8_t *end = rec + len;
    int bad = sl_wbuf_append(out, "{", 1);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const uint8_t *p = rec, *vs;
        size_t kl = strlen(keys[i]);
        if (sl_mp_map_find(&p, end, keys[i], kl) != 1) return -1;
        vs = p;
        if (sl_mp_skip(&p, end) != 0) return -1;
        bad |= (i ? sl_wbuf_append(out, ",", 1) : 0) | sl_json_write_string(out, keys[i], kl) |
               sl_wbuf_append(out, ":", 1) | sl_msgpack_to_json(vs, (size_t)(p - vs), out);
    }
    bad |= sl_wbuf_append(out, "}", 1);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------ words */

static int word_char(unsigned char ch)
{
    return alnum(ch) || ch >= 0x80;
}

int cat_words(const char *s, size_t n, sl_wbuf *out)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_char((unsigned char)s[i]))
            i++;
        if (i == n) break;
        size_t start = i;
        while (i < n && word_char((unsigned char)s[i]))
            i++;
        size_t len = i - start > CAT_MAX_WORD ? CAT_MAX_WORD : i - start;
        uint8_t l8 = (uint8_t)len;
        if (sl_wbuf_append(out, &l8, 1) != 0 || sl_wbuf_reserve(out, len) != 0) return -1;
        for (size_t j = 0; j < len; j++) {
            char ch = s[start + j];
            out->data[out->len++] = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
    }
    return 0;
}

typedef struct word_ref {
    const uint8_t *p;
    uint8_t n;
} word_ref;

static int cmp_word(const void *x, const void *y)
{
    const word_ref *a = x, *b = y;
    int r = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);
    return r ? r : (int)a->n - (int)b->n;
}

int cat_words_unique(sl_wbuf *w)
{
    size_t n = 0;
    for (size_t off = 0; off < w->len; off += 1 + w->data[off])
        n++;
    if (n < 2) return 0;
    word_ref *v = malloc(n * sizeof *v);
    uint8_t *copy = malloc(w->len);
    if (!v || !copy) {
        free(v);
        free(copy);
        return -1;
    }
    memcpy(copy, w->data, w->len);
    size_t i = 0;
    for (size_t off = 0; off < w->len; off += 1 + copy[off])
        v[i++] = (word_ref){copy + off + 1, copy[off]};
    qsort(v, n, sizeof *v, cmp_word);
    w->len = 0;
    for (i = 0; i < n; i++) {
        if (i && cmp_word(&v[i - 1], &v[i]) == 0) continue;
        w->data[w->len++] = v[i].n; /* never longer than before: no growth */
        memcpy(w->data + w->len, v[i].p, v[i].n);
        w->len += v[i].n;
    }
    free(v);
    free(copy);
    return 0;
}

int cat_sort_name(const char *s, size_t n, sl_wbuf *out)
{
    if (sl_wbuf_reserve(out, n) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        out->data[out->len++] = (uint8_t)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    return 0;
}
