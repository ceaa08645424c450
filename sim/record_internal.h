/*
 * sim/record_internal.h — record and replay of a scenario run
 * (`vmisim run --record FILE`, `vmisim replay [--as-client] FILE`), the file
 * format of docs/record-format.md.  A recording is the run's history in order:
 * every scheduling decision of each domain, every client turn, every request
 * the client took and response it put (raw slot bytes), every control call it
 * made at an event (xc_set_mem_access, altp2m, inject, pager load, max_pages),
 * every failure of its expectations, and the verdict.
 *
 * The runner (runner.c, client.c) calls the rec_* hooks at those points; what
 * a hook does depends on the mode: REC_WRITE appends the entry to the file;
 * REC_CHECK (replay) compares it with the next recorded entry and stops the
 * run at the first difference; REC_CLIENT (replay --as-client) is REC_CHECK
 * where the recording also plays the client (rec_client_step).  In both
 * replay modes the recording dictates the schedule (a sim schedule source).
 */
#ifndef VMISIM_RECORD_INTERNAL_H
#define VMISIM_RECORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct run;
struct sim_domain;

#define REC_VERSION 1

enum rec_mode {
    REC_WRITE,  /* vmisim run --record */
    REC_CHECK,  /* vmisim replay: the scripted client runs, every entry is compared */
    REC_CLIENT, /* vmisim replay --as-client: the recording is the client */
};

/* What a replay found: exit 0, 1 or 2 of `vmisim replay`. */
enum rec_outcome {
    REC_SAME = 0,     /* every entry happened again, in order, and the verdict is the recorded one */
    REC_DIVERGED = 1, /* the run went another way (rec_message says where) */
    REC_UNUSABLE = 2, /* the file (or the scenario it names) cannot be used */
};

/* The control calls the client makes at an event, in replayable form. */
enum rec_action {
    REC_ACT_SET_ACCESS,    /* access gfn count */
    REC_ACT_ALTP2M_ACCESS, /* view gfn access */
    REC_ACT_CHANGE_GFN,    /* view gfn to */
    REC_ACT_INJECT,        /* vcpu vector type error_code(-1: none) insn_len cr2 */
    REC_ACT_PAGING_LOAD,   /* gfn, and the page (or none) */
    REC_ACT_MAX_PAGES,     /* pages */
    REC_ACT_COUNT,
};

struct rec;

/* FNV-1a (64 bits) of a file's bytes and its size: the scenario's identity in a recording. */
int rec_hash_file(const char *path, uint64_t *hash, uint64_t *size, char *err, size_t errlen);

/* Starts writing a recording of `scenario` (as named on the command line). */
int rec_open_write(struct rec **out, const char *path, const char *scenario, uint64_t seed,
                   char *err, size_t errlen);
/*
 * Reads a recording whole and checks its form (not yet its scenario): one
 * message naming the line for a corrupt, truncated or unknown-version file.
 */
int rec_open_read(struct rec **out, const char *path, enum rec_mode mode, char *err, size_t errlen);
/* The scenario file it was made from, its hash and size, and its seed. */
const char *rec_scenario(const struct rec *c);
void rec_scenario_hash(const struct rec *c, uint64_t *hash, uint64_t *size);
uint64_t rec_seed(const struct rec *c);
size_t rec_nr_entries(const struct rec *c);
/* Closes (a written file is flushed: -errno when it could not be). */
int rec_close(struct rec *c, char *err, size_t errlen);

/* The outcome of a replay so far, and the one sentence that explains it ("" if none). */
enum rec_outcome rec_outcome(const struct rec *c);
const char *rec_message(const struct rec *c);

/* ---- Hooks, called by the runner ---------------------------------------------- */

/* Attaches to a domain of the run (0 the main one, 1 the introspector): observer or source. */
void rec_attach_domain(struct run *r, struct sim_domain *d, unsigned dom);
/* The start of a client turn (run_client_step). */
void rec_turn(struct run *r);
/* The client took a request / put a response: `slot` of `len` bytes, on ring `ring`. */
void rec_request(struct run *r, unsigned ring, const void *slot, size_t len);
void rec_response(struct run *r, unsigned ring, const void *slot, size_t len);
/* The client made a control call with these arguments (page: REC_ACT_PAGING_LOAD's 4096 bytes or NULL). */
void rec_action(struct run *r, enum rec_action a, const uint64_t *args, const uint8_t *page, int rc);
/* The guest's run is over and the client checks what it still expected (before run_client_finish). */
void rec_client_end(struct run *r);
/* An expectation of the scripted client failed, with this message. */
void rec_client_fail(struct run *r, const char *text);
/* The run is over and checked: the verdict (written, or compared with the recorded one). */
void rec_verdict(struct run *r);

/* ---- replay --as-client ------------------------------------------------------- */

/* The client's turn played from the recording: what run_client_step does, without the scenario's client. */
bool rec_client_step(struct run *r, bool domain_blocked);
/* After the final assertions: the failure the recorded client reported at its end, if any. */
void rec_client_finish(struct run *r);

#endif
