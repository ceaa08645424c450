/*
 * sim/serve_internal.h — what `vmisim serve` (sim/serve.c) needs from the rest
 * of sim/ beyond sim.h: the guest RAM memfd (sim/memory.c) and the scenario's
 * domain builder (sim/runner.c).  Not public API.
 */
#ifndef VMISIM_SERVE_INTERNAL_H
#define VMISIM_SERVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

struct sim_domain;
struct scenario;

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

#endif
