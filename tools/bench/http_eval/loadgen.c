/*
 * loadgen.c - a constant-rate (open-loop) HTTP/1.1 load generator for the latency point of the
 * HTTP library evaluation (docs/design/http-library.md). wrk 4.1 has no fixed-rate mode, and a
 * wrk Lua delay() fires on 1 ms ticks, so all connections send in bursts; this sends request i at
 * start + i / rate exactly (round-robin over the connections, pipelining on a connection that
 * has not answered yet), and measures each latency from the time the request was due, so a
 * stalled server or a late generator is charged in full (no coordinated omission).
 *
 *   cc -O2 -Wall -Wextra -o loadgen loadgen.c
 *   loadgen -c CONNS -r REQ_PER_S -d SECONDS [-p PORT] [-u PATH]
 *
 * One thread, epoll, nanosecond waits (epoll_pwait2). Prints wrk-like lines (Requests/sec,
 * Latency Distribution 50/90/99/99.9%, Socket errors, Non-2xx) so run.sh parses both alike,
 * plus how late the generator itself sent (if that is large, the numbers are the generator's).
 * Responses must carry Content-Length (all servers of the evaluation do).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING 256 /* requests in flight per connection */

struct conn {
    int fd;
    uint64_t due[RING]; /* due time of each request in flight, oldest first */
    unsigned head, n;
    char in[65536];
    size_t in_len;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Parses complete responses in c->in; returns how many, or -1 on a malformed one. */
static int take_responses(struct conn *c, uint64_t t, uint32_t *lat, size_t *nlat, size_t cap,
                          unsigned long *non2xx)
{
    int got = 0;
    for (;;) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4), *cl;
        size_t hlen, blen, total;
        if (end == NULL)
            return got;
        hlen = (size_t)(end - c->in) + 4;
        cl = memmem(c->in, hlen, "Content-Length:", 15);
        if (cl == NULL)
            cl = memmem(c->in, hlen, "content-length:", 15);
        if (cl == NULL || c->n == 0)
            return -1;
        blen = strtoul(cl + 15, NULL, 10);
        total = hlen + blen;
        if (c->in_len < total)
            return got;
        if (c->in_len < 12 || c->in[9] != '2')
            (*non2xx)++;
        if (*nlat < cap) {
            uint64_t us = (t - c->due[c->head]) / 1000;
            lat[(*nlat)++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        }
        c->head = (c->head + 1) % RING;
        c->n--;
        memmove(c->in, c->in + total, c->in_len - total);
        c->in_len -= total;
        got++;
    }
}

int main(int argc, char **argv)
{
    unsigned conns = 64, port = 8080, secs = 10;
    double rate = 10000;
    const char *path = "/x";
    char req[256];
    size_t req_len;
    int o, ep;
    struct conn *cs;
    uint32_t *lat;
    size_t nlat = 0, cap;
    unsigned long sent = 0, done = 0, non2xx = 0, errors = 0, over_ring = 0;
    uint64_t start, end, interval, late_max = 0, late_sum = 0;
    unsigned i;

    while ((o = getopt(argc, argv, "c:r:d:p:u:")) != -1) {
        switch (o) {
        case 'c': conns = (unsigned)atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': secs = (unsigned)atoi(optarg); break;
        case 'p': port = (unsigned)atoi(optarg); break;
        case 'u': path = optarg; break;
        default:
            fprintf(stderr, "usage: %s -c CONNS -r REQ_PER_S -d SECONDS [-p PORT] [-u PATH]\n",
                    argv[0]);
            return 2;
        }
    }
    if (conns == 0 || rate <= 0 || secs == 0)
        return 2;
    req_len = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                               path, port);
    cap = (size_t)(rate * secs * 1.1) + 1024;
    lat = malloc(cap * sizeof(*lat));
    cs = calloc(conns, sizeof(*cs));
    ep = epoll_create1(0);
    if (lat == NULL || cs == NULL || ep < 0)
        return 1;

    for (i = 0; i < conns; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        int one = 1;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (cs[i].fd < 0 || connect(cs[i].fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            perror("loadgen: connect");
            return 1;
        }
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }

    interval = (uint64_t)(1e9 / rate);
    start = now_ns() + 10000000; /* 10 ms to settle */
    end = start + (uint64_t)secs * 1000000000u;
    for (;;) {
        uint64_t t = now_ns(), next = start + sent * interval;
        struct epoll_event evs[256];
        struct timespec to;
        int n, k;

        /* send everything that is due */
        while (next <= t && next < end) {
            struct conn *c = &cs[sent % conns];
            if (c->n == RING) {
                over_ring++; /* the server is far behind: drop this one, count it */
            } else if (write(c->fd, req, req_len) != (ssize_t)req_len) {
                errors++;
            } else {
                c->due[(c->head + c->n) % RING] = next;
                c->n++;
            }
            if (t - next > late_max)
                late_max = t - next;
            late_sum += t - next;
            sent++;
            next = start + sent * interval;
        }
        if (t >= end + 2000000000u) /* 2 s for the last answers */
            break;
        if (next >= end) {
            unsigned busy = 0;
            for (i = 0; i < conns; i++)
                busy += cs[i].n;
            if (busy == 0)
                break;
            next = t + 1000000;
        }
        to.tv_sec = 0;
        to.tv_nsec = next > t ? (long)(next - t) : 0;
        n = epoll_pwait2(ep, evs, 256, &to, NULL);
        if (n < 0 && errno != EINTR) {
            perror("loadgen: epoll_pwait2");
            return 1;
        }
        t = now_ns();
        for (k = 0; k < n; k++) {
            struct conn *c = &cs[evs[k].data.u32];
            ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
            int got;
            if (r <= 0) {
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            c->in_len += (size_t)r;
            got = take_responses(c, t, lat, &nlat, cap, &non2xx);
            if (got < 0) {
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            done += (unsigned long)got;
        }
    }

    qsort(lat, nlat, sizeof(*lat), cmp_u32);
    printf("loadgen: %u connections, target %.0f req/s for %u s, %lu sent\n", conns, rate, secs,
           sent);
    printf("  Latency Distribution (from each request's due time)\n");
    if (nlat != 0) {
        static const double ps[] = {50, 90, 99, 99.9};
        for (i = 0; i < 4; i++) {
            size_t at = (size_t)(ps[i] / 100.0 * (double)(nlat - 1));
            printf("  %5g%%  %.2fus\n", ps[i], (double)lat[at]);
        }
        printf("  max  %.2fus\n", (double)lat[nlat - 1]);
    }
    printf("Generator lateness: mean %.1fus, max %.1fus\n",
           sent ? (double)late_sum / (double)sent / 1000.0 : 0.0, (double)late_max / 1000.0);
    printf("Socket errors: connect 0, read %lu, write 0, timeout %lu\n", errors, over_ring);
    printf("Non-2xx or 3xx responses: %lu\n", non2xx);
    printf("Requests/sec: %.2f\n", (double)done / (double)secs);
    return 0;
}
