/*
 * catalog_search.c - GET <prefix>: the list of APIs, filtered by `category`
 * and by the words of `q`, one page at a time, in name order (then id).
 *
 * Every answer comes from the indexes (catalog_store.c), inside one read
 * transaction, so it is exact and consistent with itself (total, items and
 * links from one snapshot):
 *
 *   no filter     by_name in order: skip (page - 1) * per_page keys, read
 *                 per_page records; total is the count of `apis`
 *   category      by_category from "category\0": the category's keys are
 *                 already in list order; counting them gives total
 *   q             the ids of each exact word (its `words` keys "word\0...",
 *                 sorted by id) intersected in one pass; the last word of q,
 *                 a prefix ("cred" finds "credit"), then filters those
 *                 candidates by their own words. A prefix alone is scanned
 *                 (every key it begins) and its ids deduplicated by a hash
 *                 set. The hits, filtered by category when given, are sorted
 *                 by (sort name, id)
 *
 * Costs: a list reads the keys before its page plus one record per item; a
 * search reads the keys of its exact words and one record per candidate.
 * Nothing reads every record. Why a prefix filters rather than being scanned
 * after other words: a short prefix can begin thousands of words, and
 * scanning and sorting their ids made 4 000 mixed requests on 10 000 APIs
 * cost 20 s of CPU instead of 0.3 s (docs/gateway/catalog.md, "what it
 * costs"); the candidates of an exact word were a few hundred there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "hash.h"

int cat_query(const cat_request *r, const char *name, cat_str *v)
{
    if (!r->query) return 0;
    const uint8_t *p = r->query;
    sl_mp_val x;
    if (sl_mp_map_find(&p, r->end, name, strlen(name)) != 1 || sl_mp_read(&p, r->end, &x) != 0 ||
        x.type != SL_MP_STR)
        return 0;
    v->p = x.v.str.ptr;
    v->n = x.v.str.len;
    return 1;
}

/* A whole number from 1 to max written in decimal digits only. 0, or -1. */
static int parse_count(const cat_str *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s->n == 0 || s->n > 10) return -1;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->p[i] < '0' || s->p[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s->p[i] - '0');
    }
    if (v < 1 || v > max) return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ id sets */

/* Id lists are one length byte then the id, sorted bytewise (shorter first on a tie). */
static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    return r ? r : (an > bn) - (an < bn);
}

/* a = a ∩ b (both sorted, without repeats). */
static void intersect(sl_wbuf *a, const sl_wbuf *b)
{
    size_t i = 0, j = 0, o = 0;
    while (i < a->len && j < b->len) {
        size_t an = a->data[i], bn = b->data[j];
        int r = cmp_bytes(a->data + i + 1, an, b->data + j + 1, bn);
        if (r == 0) {
            memmove(a->data + o, a->data + i, 1 + an);
            o += 1 + an;
        }
        if (r <= 0) i += 1 + an;
        if (r >= 0) j += 1 + bn;
    }
    a->len = o;
}

typedef struct word_scan {
    const uint8_t *w;
    size_t wn;
    int prefix;
    sl_wbuf *out;
    int oom;
} word_scan;

/* Visit `words` keys "word\0id": collect the ids of the word (or of every word it begins). */
static int collect_word(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    word_scan *s = arg;
    const uint8_t *k = key;
    (void)val;
    (void)vlen;
    if (klen <= s->wn || memcmp(k, s->w, s->wn) != 0) return SL_KV_STOP;
    const uint8_t *nul = memchr(k + s->wn, 0, klen - s->wn);
    if (!nul || (!s->prefix && nul != k + s->wn)) return s->prefix ? 0 : SL_KV_STOP;
    size_t n = klen - (size_t)(nul + 1 - k);
    if (n == 0 || n > CAT_MAX_ID) return 0;
    uint8_t l8 = (uint8_t)n;
    if (sl_wbuf_append(s->out, &l8, 1) != 0 || sl_wbuf_append(s->out, nul + 1, n) != 0) {
        s->oom = 1;
        return SL_KV_STOP;
    }
    return 0;
}

/* Scan the `words` keys of word w (exact, or every word it begins) into out. 0 or -1. */
static int scan_word(catalog *c, sl_ctx *ctx, const uint8_t *w, size_t wn, int prefix, sl_wbuf *out)
{
    word_scan s = {w, wn, prefix, out, 0};
    sl_wbuf *from = &c->keys;
    sl_wbuf_reset(from);
    sl_wbuf_reset(out);
    if (sl_wbuf_append(from, w, wn) != 0 || (!prefix && sl_wbuf_append(from, "", 1) != 0))
        return -1;
    if (ctx->host->kv_scan(ctx, c->words, from->data, from->len, collect_word, &s) != 0 || s.oom)
        return -1;
    return 0;
}

/*
 * Keep the first occurrence of each id of list in (cat_words format) in out,
 * in no particular order, through an open-addressing set of offsets: a
 * prefix's ids repeat (one run per word it begins) and can be many, and the
 * hits are sorted by name later anyway. 0 or -1.
 */
static int dedup_ids(catalog *c, const sl_wbuf *in, sl_wbuf *out)
{
    size_t n = 0;
    for (size_t off = 0; off < in->len; off += 1 + in->data[off])
        n++;
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > c->set_cap) {
        uint32_t *set = realloc(c->set, cap * sizeof *set);
        if (!set) return -1;
        c->set = set;
        c->set_cap = cap;
    }
    memset(c->set, 0, cap * sizeof *c->set);
    sl_wbuf_reset(out);
    for (size_t off = 0; off < in->len; off += 1 + in->data[off]) {
        const uint8_t *id = in->data + off + 1;
        size_t idn = in->data[off];
        size_t slot = (size_t)sl_hash_bytes(id, idn) & (cap - 1);
        int seen = 0;
        for (; c->set[slot]; slot = (slot + 1) & (cap - 1)) {
            const uint8_t *o = in->data + c->set[slot] - 1;
            if (o[0] == idn && memcmp(o + 1, id, idn) == 0) {
                seen = 1;
                break;
            }
        }
        if (seen) continue;
        c->set[slot] = (uint32_t)off + 1;
        if (sl_wbuf_append(out, in->data + off, 1 + idn) != 0) return -1;
    }
    return 0;
}

/*
 * The candidates of c->qwords into c->ids: the ids having every exact word
 * (each word's ids come sorted from its keys, so the sets intersect in one
 * pass). The last word, when it is a prefix, is not scanned if other words
 * were: the candidates are few by then, and sort_hits checks each one's own
 * words for the prefix (a short prefix can begin thousands of words). Alone,
 * it is scanned and its ids deduplicated.
 */
static int match_words(catalog *c, sl_ctx *ctx, int prefix)
{
    sl_wbuf *ws = &c->qwords;
    size_t nw = 0, i = 0;
    for (size_t off = 0; off < ws->len; off += 1 + ws->data[off])
        nw++;
    if (prefix && nw == 1)
        return scan_word(c, ctx, ws->data + 1, ws->data[0], 1, &c->ids2) != 0 ||
                       dedup_ids(c, &c->ids2, &c->ids) != 0
                   ? -1
                   : 0;
    for (size_t off = 0; off < ws->len; off += 1 + ws->data[off], i++) {
        if (prefix && i == nw - 1) break; /* filtered by sort_hits */
        if (scan_word(c, ctx, ws->data + off + 1, ws->data[off], 0, i == 0 ? &c->ids : &c->ids2) !=
            0)
            return -1;
        if (i > 0) intersect(&c->ids, &c->ids2);
        if (c->ids.len == 0) break;
    }
    return 0;
}

static int cmp_hit(const void *x, const void *y)
{
    const cat_hit *a = x, *b = y;
    return cmp_bytes(a->key, a->key_len, b->key, b->key_len);
}

/* The string member key of stored record rec, or an empty one. */
static cat_str member(const uint8_t *rec, size_t len, const char *key)
{
    const uint8_t *p = rec, *end = rec + len;
    sl_mp_val v;
    if (sl_mp_map_find(&p, end, key, strlen(key)) != 1 || sl_mp_read(&p, end, &v) != 0 ||
        v.type != SL_MP_STR)
        return (cat_str){"", 0};
    return (cat_str){v.v.str.ptr, v.v.str.len};
}

/* Whether one of the words in w (cat_words format) begins with pre. */
static int words_have_prefix(const sl_wbuf *w, const uint8_t *pre, size_t pn)
{
    for (size_t off = 0; off < w->len; off += 1 + w->data[off])
        if (w->data[off] >= pn && memcmp(w->data + off + 1, pre, pn) == 0) return 1;
    return 0;
}

/* Whether stored record rec has a word (name, summary, description, tags) beginning with pre. */
static int has_prefix(catalog *c, const uint8_t *rec, size_t len, const uint8_t *pre, size_t pn)
{
    static const char *const text[] = {"name", "summary", "description"};
    sl_wbuf *w = &c->words_buf;
    for (size_t i = 0; i < sizeof text / sizeof *text; i++) {
        cat_str s = member(rec, len, text[i]);
        sl_wbuf_reset(w);
        if (cat_words(s.p, s.n, w) != 0) return -1;
        if (words_have_prefix(w, pre, pn)) return 1;
    }
    const uint8_t *p = rec, *end = rec + len;
    sl_mp_val arr, t;
    if (sl_mp_map_find(&p, end, "tags", 4) != 1 || sl_mp_read(&p, end, &arr) != 0 ||
        arr.type != SL_MP_ARRAY)
        return 0;
    sl_wbuf_reset(w);
    for (uint32_t i = 0; i < arr.v.n; i++)
        if (sl_mp_read(&p, end, &t) != 0 || t.type != SL_MP_STR ||
            cat_words(t.v.str.ptr, t.v.str.len, w) != 0)
            return -1;
    return words_have_prefix(w, pre, pn);
}

/*
 * The hits among c->ids (in the category, and with a word beginning with
 * `pre` when pre is not NULL), sorted into c->hits. Their count, or -1.
 */
static long sort_hits(catalog *c, sl_ctx *ctx, const cat_str *category, const uint8_t *pre,
                      size_t pn)
{
    size_t n = 0;
    sl_wbuf_reset(&c->keys);
    for (size_t off = 0; off < c->ids.len; off += 1 + c->ids.data[off]) {
        const char *id = (const char *)c->ids.data + off + 1;
        size_t idn = c->ids.data[off];
        const uint8_t *rec;
        size_t rlen;
        if (cat_store_get(c, ctx, id, idn, &rec, &rlen) != 1) {
            ctx->host->log(ctx, SL_LOG_ERROR, "catalog store: index entry without record '%.*s'",
                           (int)idn, id);
            return -1;
        }
        if (category->n) {
            cat_str cat = member(rec, rlen, "category");
            if (cat.n != category->n || memcmp(cat.p, category->p, cat.n) != 0) continue;
        }
        if (pre) {
            int r = has_prefix(c, rec, rlen, pre, pn);
            if (r < 0) return -1;
            if (!r) continue;
        }
        if (n == c->hits_cap) {
            size_t cap = c->hits_cap ? c->hits_cap * 2 : 64;
            cat_hit *v = realloc(c->hits, cap * sizeof *v);
            if (!v) return -1;
            c->hits = v;
            c->hits_cap = cap;
        }
        cat_str name = member(rec, rlen, "name");
        cat_hit *hit = &c->hits[n++];
        hit->key_off = c->keys.len;
        if (cat_sort_name(name.p, name.n, &c->keys) != 0 || sl_wbuf_append(&c->keys, "", 1) != 0 ||
            sl_wbuf_append(&c->keys, id, idn) != 0)
            return -1;
        hit->key_len = c->keys.len - hit->key_off;
        hit->rec = rec;
        hit->rec_len = rlen;
    }
    for (size_t i = 0; i < n; i++)
        c->hits[i].key = c->keys.data + c->hits[i].key_off;
    if (n > 1) qsort(c->hits, n, sizeof *c->hits, cmp_hit);
    return (long)n;
}

typedef struct page_scan {
    const uint8_t *prefix; /* by_category: "category\0", before the sort name; else NULL */
    size_t prefix_len;
    uint64_t skip, take, seen;
    int count_all; /* go on to the end, counting */
    sl_wbuf *out;
    int oom;
} page_scan;

/* Visit list-order keys [prefix] sortname \0 id: collect the ids of one page. */
static int collect_page(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    page_scan *s = arg;
    const uint8_t *k = key;
    (void)val;
    (void)vlen;
    uint64_t i = s->seen++;
    if (i >= s->skip && i < s->skip + s->take) {
        const uint8_t *nul = memchr(k + s->prefix_len, 0, klen - s->prefix_len);
        size_t n = nul ? klen - (size_t)(nul + 1 - k) : 0;
        if (n == 0 || n > CAT_MAX_ID) return 0;
        uint8_t l8 = (uint8_t)n;
        if (sl_wbuf_append(s->out, &l8, 1) != 0 || sl_wbuf_append(s->out, nul + 1, n) != 0) {
            s->oom = 1;
            return SL_KV_STOP;
        }
    }
    return !s->count_all && s->seen >= s->skip + s->take ? SL_KV_STOP : 0;
}

/* Visit by_category keys from "category\0": count and collect while they are the category's. */
static int collect_category(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    page_scan *s = arg;
    if (klen <= s->prefix_len || memcmp(key, s->prefix, s->prefix_len) != 0) return SL_KV_STOP;
    return collect_page(arg, key, klen, val, vlen);
}

/* ------------------------------------------------------------ links */

static int pct_append(char *buf, size_t cap, size_t *n, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (*n + 4 >= cap) return -1;
        if (plain) {
            buf[(*n)++] = (char)ch;
        } else {
            buf[(*n)++] = '%';
            buf[(*n)++] = hex[ch >> 4];
            buf[(*n)++] = hex[ch & 15];
        }
    }
    buf[*n] = '\0';
    return 0;
}

/* Append the JSON string of the link to page `page` of this list. */
static int write_link(catalog *c, sl_wbuf *out, const cat_str *cat, const cat_str *q, uint64_t page,
                      uint64_t per)
{
    char buf[CAT_MAX_PREFIX + 3 * (CAT_MAX_CATEGORY + CAT_MAX_Q) + 96];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s?", c->prefix);
    if (cat->n) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "category=");
        if (pct_append(buf, sizeof buf, &n, cat->p, cat->n) != 0) return -1;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "&");
    }
    if (q->n) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "q=");
        if (pct_append(buf, sizeof buf, &n, q->p, q->n) != 0) return -1;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "&");
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "page=%llu&per_page=%llu",
                          (unsigned long long)page, (unsigned long long)per);
    return sl_json_write_string(out, buf, n);
}

/* ------------------------------------------------------------ the answer */

int cat_search(catalog *c, sl_ctx *ctx, const cat_request *r)
{
    const sl_host *h = ctx->host;
    cat_str cat = {"", 0}, q = {"", 0}, s;
    uint64_t page = 1, per = c->per_page;
    char catbuf[CAT_MAX_CATEGORY + 1];
    if (cat_query(r, "page", &s) && parse_count(&s, CAT_MAX_PAGE, &page) != 0)
        return cat_fail(c, 400, "page must be a whole number from 1 to %d", CAT_MAX_PAGE);
    if (cat_query(r, "per_page", &s) && parse_count(&s, c->max_per_page, &per) != 0)
        return cat_fail(c, 400, "per_page must be a whole number from 1 to %u", c->max_per_page);
    if (cat_query(r, "category", &s) && s.n) {
        /* categories are lower case; a query in another case finds them all the same */
        for (uint32_t i = 0; i < s.n && i < CAT_MAX_CATEGORY; i++)
            catbuf[i] = (char)(s.p[i] >= 'A' && s.p[i] <= 'Z' ? s.p[i] + 32 : s.p[i]);
        if (!cat_category_valid(catbuf, s.n))
            return cat_fail(c, 400, "category must be 1 to %d characters among a-z 0-9 . _ -",
                            CAT_MAX_CATEGORY);
        cat = (cat_str){catbuf, s.n};
    }
    sl_wbuf_reset(&c->qwords);
    int prefix = 0;
    if (cat_query(r, "q", &s) && s.n) {
        if (s.n > CAT_MAX_Q) return cat_fail(c, 400, "q has at most %d bytes", CAT_MAX_Q);
        if (cat_words(s.p, s.n, &c->qwords) != 0) return -1;
        size_t nw = 0, last = 0;
        for (size_t off = 0; off < c->qwords.len; off += 1 + c->qwords.data[off], nw++)
            last = off;
        if (nw > CAT_MAX_QWORDS)
            return cat_fail(c, 400, "q has at most %d words (all of them must match)",
                            CAT_MAX_QWORDS);
        /* the last word is still being typed unless a separator follows it */
        unsigned char tail = (unsigned char)s.p[s.n - 1];
        int word_tail = (tail >= 'a' && tail <= 'z') || (tail >= 'A' && tail <= 'Z') ||
                        (tail >= '0' && tail <= '9') || tail >= 0x80;
        prefix = nw && word_tail && c->qwords.data[last] >= CAT_MIN_PREFIX;
        if (nw) q = s;
    }
    if (h->kv_begin(ctx, 0) != 0) return cat_store_failed(c, ctx);
    uint64_t total = 0, skip = (page - 1) * per;
    sl_wbuf *b = &c->reply.body;
    sl_wbuf_reset(b);
    int bad = sl_wbuf_append(b, "{\"items\":[", 10);
    if (q.n) {
        if (match_words(c, ctx, prefix) != 0) return cat_store_failed(c, ctx);
        /* a prefix after other words filters their candidates (see match_words) */
        size_t nw = 0, last = 0;
        for (size_t off = 0; off < c->qwords.len; off += 1 + c->qwords.data[off], nw++)
            last = off;
        int filter = prefix && nw > 1;
        long n = sort_hits(c, ctx, &cat, filter ? c->qwords.data + last + 1 : NULL,
                           filter ? c->qwords.data[last] : 0);
        if (n < 0) return cat_store_failed(c, ctx);
        total = (uint64_t)n;
        for (uint64_t i = skip; i < total && i < skip + per; i++)
            bad |= (i > skip ? sl_wbuf_append(b, ",", 1) : 0) |
                   cat_render_item(c->hits[i].rec, c->hits[i].rec_len, b);
    } else {
        sl_wbuf_reset(&c->ids);
        page_scan ps = {NULL, 0, skip, per, 0, cat.n > 0, &c->ids, 0};
        int rc;
        if (cat.n) {
            sl_wbuf *from = &c->keys;
            sl_wbuf_reset(from);
            if (sl_wbuf_append(from, cat.p, cat.n) != 0 || sl_wbuf_append(from, "", 1) != 0)
                return cat_store_failed(c, ctx);
            ps.prefix = from->data;
            ps.prefix_len = from->len;
            rc = h->kv_scan(ctx, c->by_category, from->data, from->len, collect_category, &ps);
            total = ps.seen;
        } else {
            rc = h->kv_scan(ctx, c->by_name, NULL, 0, collect_page, &ps);
            total = h->kv_count(ctx, c->apis);
        }
        if (rc != 0 || ps.oom) return cat_store_failed(c, ctx);
        size_t i = 0;
        for (size_t off = 0; off < c->ids.len; off += 1 + c->ids.data[off], i++) {
            const uint8_t *rec;
            size_t rlen;
            if (cat_store_get(c, ctx, (const char *)c->ids.data + off + 1, c->ids.data[off], &rec,
                              &rlen) != 1)
                return cat_store_failed(c, ctx);
            bad |= (i ? sl_wbuf_append(b, ",", 1) : 0) | cat_render_item(rec, rlen, b);
        }
    }
    h->kv_abort(ctx);
    char num[96];
    int nn = snprintf(num, sizeof num, "],\"page\":%llu,\"per_page\":%llu,\"total\":%llu,\"next\":",
                      (unsigned long long)page, (unsigned long long)per, (unsigned long long)total);
    bad |= sl_wbuf_append(b, num, (size_t)nn);
    bad |= page * per < total ? write_link(c, b, &cat, &q, page + 1, per)
                              : sl_wbuf_append(b, "null", 4);
    bad |= sl_wbuf_append(b, ",\"prev\":", 8);
    /* prev of a page past the end is the last page: a client that overshot finds its way back */
    uint64_t last = total ? (total + per - 1) / per : 1;
    bad |= page > 1 ? write_link(c, b, &cat, &q, page - 1 < last ? page - 1 : last, per)
                    : sl_wbuf_append(b, "null", 4);
    bad |= sl_wbuf_append(b, "}", 1);
    if (bad) return -1;
    cat_ok(c, 200);
    return 0;
}
