/*
 * admin.h - a pipeline's admin HTTP endpoint (`admin: {listen: HOST:PORT}`,
 * docs/operations.md): what a running engine tells Prometheus, `sluice top`,
 * `sluice graph --from` and the dashboard.
 *
 *   GET /metrics        Prometheus text format (engine/metrics_prom.c)
 *   GET /api/pipeline   the graph and current metrics as JSON (metrics_json.c)
 *   GET /healthz        200 "ok" while the pipeline runs
 *
 * It is served by libmicrohttpd on a thread of its own (docs/design/
 * http-library.md says why this library here), so a scrape never runs on a
 * stage thread; each request renders from the runtime's atomics.
 */
#ifndef SL_ADMIN_H
#define SL_ADMIN_H

typedef struct sl_runtime sl_runtime;
typedef struct sl_admin sl_admin;

/*
 * Listen on `listen` ("HOST:PORT"; port 0 picks a free one) and serve rt
 * (borrowed; must outlive the endpoint). Logs the address it listens on.
 * Returns 0 and *out, or a negative errno after logging why (address in use,
 * unknown host).
 */
int sl__admin_start(sl_runtime *rt, const char *listen, sl_admin **out);

/* The port it listens on. */
int sl__admin_port(const sl_admin *a);

/* Stop serving (waits for requests in progress) and free; accepts NULL, sets *ap to NULL. */
void sl__admin_stop(sl_admin **ap);

#endif
