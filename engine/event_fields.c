/*
 * event_fields.c - the host's field_get and field_set: read and write a
 * field of a msgpack event by dotted path ("data.amount"), for operators
 * that do not want to walk msgpack themselves (plugins above all).
 *
 * field_set copies the event once into the caller's buffer with the field
 * replaced or added (maps along the path are created when missing, or
 * replace a non-map value): no allocation besides the buffer's growth.
 */
#include <string.h>

#include "instance.h"

/* Length of the first segment of path (up to '.' or the end). */
static size_t segment(const char *path) { return strcspn(path, "."); }

int sl__field_get(sl_ctx *ctx, const uint8_t *ev, size_t len, const char *path,
                  const uint8_t **val, size_t *vlen)
{
    (void)ctx;
    const uint8_t *p = ev, *end = ev + len;
    for (const char *s = path;;) {
        size_t n = segment(s);
        int r = sl_mp_map_find(&p, end, s, n);
        if (r != 1)
            return r;
        if (!s[n])
            break;
        s += n + 1;
    }
    const uint8_t *start = p;
    if (sl_mp_skip(&p, end) != 0)
        return -1;
    *val = start;
    *vlen = (size_t)(p - start);
    return 1;
}

/* Write map m (NULL: none) with the field at path set to val, to out. */
static int set_in(const uint8_t *m, const uint8_t *end, const char *path, const void *val,
                  size_t vlen, sl_wbuf *out)
{
    size_t n = segment(path);
    const char *rest = path[n] ? path + n + 1 : NULL;
    sl_mp_val h = {.type = SL_MP_NIL};
    const uint8_t *q = m;
    if (m && (sl_mp_read(&q, end, &h) != 0))
        return -1;
    uint32_t pairs = h.type == SL_MP_MAP ? h.v.n : 0;
    /* pass 1: is the key there? (so the map header has the right count) */
    const uint8_t *scan = m, *found = NULL;
    if (pairs && sl_mp_map_find(&scan, end, path, n) == 1)
        found = scan;
    if (sl_mp_write_map(out, pairs + (found ? 0 : 1)) != 0)
        return -1;
    for (uint32_t i = 0; i < pairs; i++) {
        const uint8_t *k = q;
        if (sl_mp_skip(&q, end) != 0)
            return -1;
        const uint8_t *v = q;
        if (sl_mp_skip(&q, end) != 0 || sl_wbuf_append(out, k, (size_t)(v - k)) != 0)
            return -1;
        if (v != found) {
            if (sl_wbuf_append(out, v, (size_t)(q - v)) != 0)
                return -1;
        } else if (rest ? set_in(v, q, rest, val, vlen, out) != 0
                        : sl_wbuf_append(out, val, vlen) != 0) {
            return -1;
        }
    }
    if (!found && (sl_mp_write_str(out, path, n) != 0 ||
                   (rest ? set_in(NULL, NULL, rest, val, vlen, out) != 0
                         : sl_wbuf_append(out, val, vlen) != 0)))
        return -1;
    return 0;
}

int sl__field_set(sl_ctx *ctx, const uint8_t *ev, size_t len, const char *path, const void *val,
                  size_t vlen, sl_wbuf *out)
{
    (void)ctx;
    const uint8_t *p = ev;
    sl_mp_val h;
    if (!path || !*path || sl_mp_read(&p, ev + len, &h) != 0 || h.type != SL_MP_MAP)
        return -1;
    size_t mark = out->len;
    if (set_in(ev, ev + len, path, val, vlen, out) != 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}
