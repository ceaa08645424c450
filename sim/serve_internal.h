/*
 * sim/serve_internal.h — what `vmisim serve` (sim/serve.c) needs from the rest
 * of sim/ beyond sim.h: the guest RAM memfd (sim/memory.c) and the scenario's
 * domain builder (sim/runner.c).  Not public API.
 */
#ifndef VMISIM_SERVE_INTERNAL_H
#define VMISIM_SERVE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_domain;
struct scenario;
#include "sim.h"

/*
 * The memfd holding guest RAM (offset 0) and the pool of shared pages (offset
 * ram_size), owned by the domain; -1 if it has none.
 */
int sim_ram_memfd(const struct sim_domain *d);
/*
 * Where gfn's frame is in that memfd, for a foreign mapping: 0 and *offset,
 * -EINVAL beyond RAM, -ENOENT for a paged-out gfn (the pager is asked for it,
 * as Xen's foreign map does), -EOPNOTSUPP for another domain's page.
 */
int sim_foreign_frame(struct sim_domain *d, uint64_t gfn, uint64_t *offset);

/*
 * sim/runner.c: builds the scenario's domain as `vmisim run` does (code,
 * data, page tables, registers, p2m access, access_required) but without the
 * monitor ring, the monitor controls, paging, sharing, altp2m and the client:
 * those belong to the client that attaches.  0 and *out, or -EINVAL with one
 * sentence in err.
 */
int run_build_domain(const struct scenario *s, struct sim_domain **out, char *err, size_t errlen);

/* sim/serve.c: the `vmisim serve` command. */
int vmisim_serve(int argc, char **argv);

/*
 * The server itself, for the command above, `vmisim fuzz-client` (which runs
 * one per fuzz run, quietly) and the fuzz target of the control protocol.
 */
struct serve;
struct serve_opts {
    const char *socket_path;   /* where to listen; NULL: no socket, connections only via serve_add_conn */
    uint32_t domid;
    bool start_now;            /* run the guest at once instead of at the client's first notify */
    long start_timeout_ms;     /* start anyway after this long without a ready client (0: wait) */
    bool verbose;              /* every note on stderr */
    bool quiet;                /* no progress lines at all */
};
/* Builds the scenario's domain (run_build_domain) and listens.  0, or a negative errno and one sentence in err. */
int serve_open(const struct scenario *s, const struct serve_opts *o, struct serve **out, char *err, size_t errlen);
/* Adopts a connected socket (one end of a socketpair) as a client connection: 0 or -EMFILE/-ENOMEM/-errno. */
int serve_add_conn(struct serve *sv, int fd);
/*
 * One turn of the server: waits at most max_sleep_ms (-1: its own idle
 * timeout, 100 ms) for a client, answers every complete message, starts the
 * guest when due and runs one slice of it.  0, or a negative errno when
 * poll(2) fails.
 */
int serve_poll(struct serve *sv, int max_sleep_ms);
/* Notes of the domain, after the server's own accounting (the server owns the domain's observer). */
void serve_set_observer(struct serve *sv, sim_observer_fn fn, void *opaque);
struct sim_domain *serve_domain(const struct serve *sv);
/* The guest has been let run (a client became ready, or --start now). */
bool serve_started(const struct serve *sv);
/* Why the guest ended (halted, crashed, ...), or NULL while it has not. */
const char *serve_end(const struct serve *sv);
/* Closes every connection (tearing down the client's ring), the socket, the domain. */
void serve_close(struct serve *sv);

#endif
