/*
 * admin.c - the admin HTTP endpoint (see admin.h) on libmicrohttpd.
 *
 * We bind the listening socket ourselves and hand it to the daemon: a port
 * in use then fails with its errno and the address in our own words. The
 * daemon runs one internal polling thread; requests are rare (a scrape every
 * few seconds) and each renders into a fresh buffer the response takes over.
 */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "instance.h"
#include "metrics.h"

struct sl_admin {
    struct MHD_Daemon *d;
    sl_runtime *rt;
    int port;
};

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Hand a rendered buffer to the response, which frees it once sent. */
static enum MHD_Result send_buffer(struct MHD_Connection *c, const char *type, sl_wbuf *b)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(b->len, b->data, free);
    if (!r) {
        sl_wbuf_fini(b);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

static const char index_text[] =
    "sluice admin endpoint\n"
    "  /metrics       Prometheus text format\n"
    "  /api/pipeline  the graph and its metrics as JSON\n"
    "  /healthz       ok while the pipeline runs\n"
    "docs/operations.md describes each.\n";

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req)
{
    sl_admin *a = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sizeof "only GET and HEAD\n" - 1, (void *)"only GET and HEAD\n",
            MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ok;
    }
    sl_wbuf b = {0};
    if (strcmp(url, "/metrics") == 0) {
        if (sl__metrics_prometheus(a->rt, &b) != 0)
            goto oom;
        return send_buffer(c, "text/plain; version=0.0.4; charset=utf-8", &b);
    }
    if (strcmp(url, "/api/pipeline") == 0) {
        if (sl__metrics_json(a->rt, &b) != 0)
            goto oom;
        return send_buffer(c, "application/json", &b);
    }
    if (strcmp(url, "/healthz") == 0)
        return send_text(c, MHD_HTTP_OK, "text/plain", "ok\n");
    if (strcmp(url, "/") == 0)
        return send_text(c, MHD_HTTP_OK, "text/plain", index_text);
    return send_text(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found (see /)\n");
oom:
    sl_wbuf_fini(&b);
    return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n");
}

/* A socket bound to host:port and listening, or -errno. */
static int listen_on(const char *host, int port, int *family)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0)
        return g == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
    int rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
            *family = ai->ai_family;
            freeaddrinfo(res);
            return fd;
        }
        rc = -errno;
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int sl__admin_start(sl_runtime *rt, const char *listen, sl_admin **out)
{
    *out = NULL;
    char host[256];
    int port, family = AF_INET;
    if (sl_listen_parse(listen, host, sizeof host, &port) != 0) {
        sl__log(NULL, SL_LOG_ERROR, "admin.listen '%s': expected HOST:PORT", listen);
        return -EINVAL;
    }
    int fd = listen_on(host, port, &family);
    if (fd < 0) {
        sl__log(NULL, SL_LOG_ERROR, "admin.listen '%s': cannot listen: %s", listen,
                strerror(-fd));
        return fd;
    }
    sl_admin *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        return -ENOMEM;
    }
    a->rt = rt;
    a->port = bound_port(fd);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    a->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, a, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!a->d) {
        sl__log(NULL, SL_LOG_ERROR, "admin.listen '%s': the HTTP server did not start", listen);
        close(fd);
        free(a);
        return -EIO;
    }
    sl__log(NULL, SL_LOG_INFO, "admin endpoint on http://%s%s%s:%d (/metrics, /api/pipeline)",
            family == AF_INET6 ? "[" : "", host, family == AF_INET6 ? "]" : "", a->port);
    *out = a;
    return 0;
}

int sl__admin_port(const sl_admin *a) { return a->port; }

void sl__admin_stop(sl_admin **ap)
{
    sl_admin *a = ap ? *ap : NULL;
    if (!a)
        return;
    MHD_stop_daemon(a->d); /* closes the listening socket it was given */
    free(a);
    *ap = NULL;
}
