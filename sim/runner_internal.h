/*
 * sim/runner_internal.h — `vmisim run`: a scenario file executed against the
 * simulator, with its scripted client on the real ring, checked, and reported
 * as a readable log, JSON and JUnit XML.  Shared by runner.c (orchestration
 * and final checks), client.c (the scripted client) and report.c (output).
 */
#ifndef VMISIM_RUNNER_INTERNAL_H
#define VMISIM_RUNNER_INTERNAL_H

#include <stdio.h>

#include "guest_build_internal.h"
#include "scenario_internal.h"
#include "sim_internal.h"

/* How the guest ended (final.guest), including "blocked" (waiting for the client). */
enum run_end {
    RUN_END_NONE = 0,
    RUN_END_HALTED,
    RUN_END_LIMIT,
    RUN_END_CRASHED,
    RUN_END_FAULT,
    RUN_END_BLOCKED,
    RUN_END_ERROR,
    RUN_END_SHUTDOWN, /* the guest shut the domain down (SCHEDOP_shutdown) */
};

enum run_log_kind {
    RUN_LOG_REQUEST,  /* the client took a request: msg */
    RUN_LOG_MATCH,    /* it matched an expectation: text names it */
    RUN_LOG_CLIENT,   /* the client did something (set access, held a response ...) */
    RUN_LOG_RESPONSE, /* the client put a response: msg */
    RUN_LOG_XEN,      /* the simulator did something (a sim_note) */
    RUN_LOG_END,      /* how the guest ended */
    RUN_LOG_CHECK,    /* a final assertion held */
    RUN_LOG_FAIL,     /* an expectation failed */
    RUN_LOG_HYPERCALL, /* --trace-hypercalls: one hypercall, decoded, and its result */
    RUN_LOG_CONSOLE,  /* a line the guest wrote with console_io */
};

struct run_log {
    enum run_log_kind kind;
    uint64_t seq;          /* event number (1-based) for REQUEST/MATCH/RESPONSE */
    unsigned vcpu;
    bool has_msg;
    struct vme_msg msg;
    char *text;
};

/* One expectation, the file's events with `repeat` expanded. */
struct run_expect {
    const struct scenario_event *ev;
    uint32_t rep;          /* 0..repeat-1 */
    bool used;
};

/* An answer the client has decided on: what it sends, on which ring, and what it does first. */
struct run_answer {
    struct vme_msg rsp;
    unsigned ring;         /* RUN_RING_MONITOR, RUN_RING_PAGING or RUN_RING_SHARING */
    const struct scenario_response *sr; /* for the pager's load just before sending */
    uint64_t gfn;          /* the request's gfn (MEM_PAGING) */
    uint64_t seq;
};

struct run_held {
    struct run_answer a;
    uint32_t remaining;    /* further events before it is sent */
};

/* The client's side of one vm_event ring. */
#define RUN_RING_MONITOR 0
#define RUN_RING_PAGING 1
#define RUN_RING_SHARING 2
#define RUN_RINGS 3
struct run_ring {
    struct ring_back *back; /* NULL: not attached (no such ring) */
    struct evtchn *evtchn;
    unsigned version;
};

/* The pager's copy of a page it evicted (paging.evict). */
struct run_saved_page {
    uint64_t gfn;
    uint8_t data[4096];
};

/* The main guest's code as nasm assembled it, kept while one scenario runs with many seeds. */
struct run_code {
    uint8_t *bytes;        /* NULL: not yet assembled */
    size_t len;
};

struct run {
    const struct scenario *s;
    struct sim_domain *d;
    struct run_ring rings[RUN_RINGS]; /* the monitor, paging and sharing rings */
    struct run_saved_page *saved;     /* one per paging.evict gfn */
    size_t nr_saved;
    struct run_expect *expect;
    size_t nr_expect, next_expect;
    struct run_held *held;
    size_t nr_held, cap_held;
    uint64_t events;       /* requests the client took */
    uint64_t counts[VME_REASON_COUNT];
    uint64_t insns;
    size_t code_size;      /* bytes of guest code loaded at entry_gpa */
    struct guest_build build; /* the guest's page tables (kept for page_table_of look-ups) */
    enum run_end end;
    char end_why[300];
    bool failed;           /* an expectation did not hold */
    bool error;            /* the scenario could not be run (exit 2) */
    uint64_t checks;       /* assertions that held */
    struct run_log *log;
    size_t nr_log, cap_log;
    FILE *out;             /* the readable log (NULL: quiet) */
    bool trace_hypercalls; /* --trace-hypercalls */
    /* The introspector (scenario `introspector`): a second domain, run beside the main one. */
    struct sim_domain *in;
    struct guest_build in_build;
    size_t in_code_size;
    uint64_t in_insns;
    enum run_end in_end;
    char in_end_why[300];
    /* -- schedule seed, record and replay (issue 8; sim/record.c) -- */
    uint64_t seed;         /* --seed: the scheduler's seed (0: round robin) */
    struct rec *rec;       /* the recording written or replayed; NULL: none */
    /* `snapshot: take` / `restore` in a response (client.c). */
    struct sim_snapshot *snap;
    struct ring_back_state snap_back[RUN_RINGS]; /* the client's indices with the snapshot */
    struct ring_back_state pre_take[RUN_RINGS];  /* its indices before its latest take */
    unsigned char snap_req[400];                 /* the request outstanding in the snapshot */
    unsigned snap_ring;
    uint64_t snap_seq;
    bool snap_redeliver;   /* after a restore: the next request on snap_ring must be snap_req */
    bool rec_client;       /* replay --as-client: the recording plays the client */
    bool borrowed;         /* the scenario is the caller's (explore runs it many times) */
    struct run_code *code_cache; /* NULL, or the guest's code assembled once for many runs */
};

/* report.c */
void run_log_add(struct run *r, enum run_log_kind kind, uint64_t seq, unsigned vcpu,
                 const struct vme_msg *msg, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* "MEM_ACCESS vCPU 0 gfn 0x200+0x10 gla 0x600010 w [gla valid, with gla] flags VCPU_PAUSED rip 0x4010" */
void run_describe(char *buf, size_t len, const struct vme_msg *m, bool response);
/* Value of a matcher field, formatted as the file writes it. */
void run_format_field(char *buf, size_t len, const struct scenario_match *f, uint64_t value);
const char *run_end_name(enum run_end end);
void run_log_free(struct run *r);
/* Writes the runs as one JSON document / a JUnit XML file.  0 or -errno. */
int run_write_json(const char *path, struct run *const *runs, size_t n);
int run_write_junit(const char *path, struct run *const *runs, size_t n, const char *const *errors,
                    const char *const *files, size_t nfiles);

/* client.c */
/* The scripted client's turn: takes every request, checks it, answers. Returns true if it did anything. */
bool run_client_step(struct run *r, bool domain_blocked);
/* The order the client serves the rings in: paging, sharing, monitor (as the hypervisor polls them). */
extern const unsigned run_ring_order[RUN_RINGS];
/* Pushes the responses put on every ring and rings each doorbell the hypervisor asked for. */
void run_client_push(struct run *r);
/* Every expectation was met (after the run). */
void run_client_finish(struct run *r);
/* The gfn a request is about, whatever its reason (0 when it has none). */
uint64_t run_msg_gfn(const struct vme_msg *m);
/* The value of matcher field `f` in message `m`. */
uint64_t run_field_value(const struct scenario_match *f, const struct vme_msg *m);
/* The request's register `reg` (scenario_reg numbering). */
uint64_t run_msg_reg(const struct vme_msg *m, enum scenario_reg reg, bool *known);

#endif
