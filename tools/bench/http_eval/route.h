/*
 * route.h - what both evaluation servers answer, so that they do identical work per request.
 *
 * Part of tools/bench/http_eval (docs/design/http-library.md).
 *   /x        200 {"ok":true}
 *   /p/<id>   200 {"id":"<id>"}  (pipelining order check; id is cut at 32 bytes of [A-Za-z0-9_-])
 *   /sse      handled by each server itself (a Server-Sent Events stream fed by another thread)
 *   else      404 {"error":"not found"}
 */
#ifndef SLUICE_HTTP_EVAL_ROUTE_H
#define SLUICE_HTTP_EVAL_ROUTE_H

#include <stdio.h>
#include <string.h>

#define ROUTE_BODY_MAX 64

static inline int route_is(const char *path, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(path, lit, n) == 0;
}

/* Writes the body for path into buf[ROUTE_BODY_MAX]; returns the HTTP status, *len the length. */
static inline int route_answer(const char *path, size_t len, char *buf, size_t *out_len)
{
    const char *q = memchr(path, '?', len);
    if (q != NULL)
        len = (size_t)(q - path);
    if (route_is(path, len, "/x")) {
        memcpy(buf, "{\"ok\":true}", 11);
        *out_len = 11;
        return 200;
    }
    if (len > 3 && memcmp(path, "/p/", 3) == 0) {
        size_t i, n = 0;
        char id[33];
        for (i = 3; i < len && n < 32; i++) {
            char c = path[i];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-')
                id[n++] = c;
        }
        id[n] = '\0';
        *out_len = (size_t)snprintf(buf, ROUTE_BODY_MAX, "{\"id\":\"%s\"}", id);
        return 200;
    }
    memcpy(buf, "{\"error\":\"not found\"}", 21);
    *out_len = 21;
    return 404;
}

#endif
