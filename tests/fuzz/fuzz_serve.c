/*
 * tests/fuzz/fuzz_serve.c — the control protocol of `vmisim serve` (ring/xenctl_abi.h) from
 * hostile clients.
 *
 * Each input runs one server (serve_open, no socket: every connection is one end of a
 * socketpair handed over with serve_add_conn) for a two-vCPU guest that loops writing one
 * page and executing CPUID.  The harness is up to six clients at once: it writes whatever
 * bytes the input says into the sockets — well-formed calls with fuzzed payloads, wrong
 * sizes, wrong domids, unknown ops, bad headers, messages cut anywhere and finished later
 * or never, descriptors the server did not ask for — lets the server poll, and reads every
 * answer.  A client that enabled the monitor ring gets its descriptors and can ring the
 * doorbell (which starts the guest) and answer the requests.  The harness parses its own
 * byte stream exactly as the protocol defines it, so it knows which answers are due.
 * Proves, for every input:
 *   - the server neither crashes nor blocks: serve_poll (never asked to sleep) returns 0;
 *   - every complete request with a good header gets exactly one answer, in order, with
 *     its op, seq and domid, rc 0 or a negative errno, the op's payload size (none on an
 *     error), descriptors only with MONITOR_ENABLE (3) and FOREIGN_MAP (1); the rules the
 *     ABI states hold exactly: -ESRCH for another domid, -ENOSYS for an unknown op,
 *     -EINVAL for a payload of the wrong size; GETINFO and MAX_GPFN describe the domain;
 *     a FOREIGN_MAP offset is a page of the memfd that holds that gfn's bytes, or -errno;
 *   - a header with a bad magic, version or length gets one -EPROTO answer, then the
 *     connection is closed, with the reason in the server's log; a connection is never
 *     closed otherwise unless the client closed (or half-closed) it;
 *   - other connections keep working: after the input a fresh connection's GETINFO
 *     succeeds;
 *   - no descriptor leaks: the process has as many open descriptors after the server and
 *     every client are closed as before the input;
 *   - guest memory changes only where the guest writes (its page, its stack, the page-table
 *     accessed/dirty bits, a frame an altp2m change_gfn showed it), unless a client set a
 *     vCPU's registers (then the guest may write anything).
 *
 * Input format: byte 0 bit 0: the guest starts at once (--start now) instead of at the
 * first notify after MONITOR_ENABLE.  Then actions, a byte op % 12 and its arguments
 * (missing bytes read as 0):
 *   0 CONNECT                 a new connection (at most 6 open)
 *   1 CALL c8 op8 m8 n8 p...  a request on connection c: op % 18 (0 and 17 are unknown),
 *                             domid 1 (m bit 0: 2 + (m >> 4)), the op's payload size (m bit 1:
 *                             that + 1 + (n & 7), bit 5: 0), payload bytes from the input
 *                             (FOREIGN_MAP: nr = (n & 127) % 9, then nr 16-bit gfns, m bit 6: + 2^32,
 *                             n bit 7: PROT_WRITE);
 *                             m bit 2: with two descriptors attached; m bit 3: only the first
 *                             n % (size) bytes now (the rest with the next bytes on c)
 *   2 RAW c8 n8 bytes...      n bytes as they are
 *   3 POLL n8                 serve_poll 1 + n % 4 times, then read every answer
 *   4 CLOSE c8                the client closes its end (mid-message, possibly)
 *   5 SHUTDOWN c8             the client half-closes (shutdown SHUT_WR)
 *   6 NOTIFY                  the ring's client rings the doorbell
 *   7 ANSWER                  the ring's client takes every request, answers, notifies
 *   8 RUN n8                  serve_poll n % 16 times (the guest runs), reading answers
 *   9 FDS c8                  one byte of the stream with a descriptor attached
 *  10 HEADER c8 op8 len16     a header whose length is len (no payload follows yet)
 *  11 CALL                    as 1
 * tests/fuzz/corpus/make_serve.py writes the corpus.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "scenario_internal.h"
#include "serve_internal.h"
#include "sim_internal.h"
#include "xenctl_abi.h"

#define DOMID 1u
#define RAM (256u << 10)
#define DATA_GFN 0x20u
#define STACK_GFN 0x21u
#define MAX_CONNS 6
#define MAX_EXPECT 256
#define STREAM_MAX (sizeof(struct xenctl_hdr) + XENCTL_MAX_PAYLOAD)
#define MAX_POLLS 48 /* per input: each may run a 200,000-instruction slice of the guest */
#define UNPOLLED_MAX (32u << 10)

/*
 * The guest, on both vCPUs: mov esi, 5000; loop: mov ebx, 0x600000; mov [rbx], rax; inc rax;
 * cpuid; dec esi; jnz loop; hlt (a short run: serve runs 200,000 instructions per poll); an
 * IDT handler at +0x40 that halts (an injected trap lands there, its frame on the stack page).
 */
static const char scenario_text[] =
    "name: fuzz-serve\n"
    "guest:\n"
    "  memory: 256K\n"
    "  vcpus: 2\n"
    "  entry: 0x400000\n"
    "  idt_handler: 0x400040\n"
    "  registers: {rsp: 0x701000}\n"
    "  mappings:\n"
    "    - {gla: 0x400000, gpa: 0x10000, size: 4K, rights: rx}\n"
    "    - {gla: 0x600000, gpa: 0x20000, size: 4K, rights: rw}\n"
    "    - {gla: 0x700000, gpa: 0x21000, size: 4K, rights: rw}\n"
    "  code_bytes: \"be 88 13 00 00 bb 00 00 60 00 48 89 03 48 ff c0 0f a2 ff ce 75 ef f4 eb fd 90 90 90 90"
    " 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90"
    " 90 90 f4 eb fd\"\n"
    "altp2m:\n"
    "  mode: external\n";

/* ---- The harness's model of one connection ------------------------------------------ */

enum expect_kind { EXP_ANSWER, EXP_EPROTO };

struct expect {
    enum expect_kind kind;
    uint16_t op;
    uint32_t seq, domid, len; /* the request's header */
    int32_t rc;               /* the rc the ABI decides, or 1: any 0 or -errno */
    uint64_t gfns[8];         /* FOREIGN_MAP: the first gfns asked for */
};

struct hconn {
    int fd;                   /* the client's end; -1: closed by the client */
    unsigned server_id;       /* the server's "client N" */
    bool malformed;           /* a bad header went out: the server must answer -EPROTO and close */
    bool half_closed;         /* the client shut its side: the server closes when it sees EOF */
    bool server_closed;       /* EOF seen */
    /* What went out, parsed as the server will parse it. */
    uint8_t out[STREAM_MAX];
    size_t out_have;
    /* Bytes of a request held back (CALL with bit 3): sent before anything else on c. */
    uint8_t held[STREAM_MAX];
    size_t held_len;
    struct expect q[MAX_EXPECT];
    unsigned qh, qt;
    /* What came back. */
    uint8_t in[STREAM_MAX];
    size_t in_have;
    int fds[16];
    unsigned nfds;
    unsigned answers;
};

static struct {
    struct scenario *scenario;
    bool verbose; /* FUZZ_SERVE_VERBOSE set: what each input did, and the server's log, on stderr */
    int devnull;
} G;

static struct state {
    struct serve *sv;
    struct hconn conns[MAX_CONNS];
    unsigned next_server_id;
    uint32_t seq;
    /* The monitor ring's client, once a MONITOR_ENABLE answer brought its descriptors. */
    struct ring_back *back;
    struct evtchn *evtchn;
    int ring_fds[3];
    unsigned ring_version;
    int ring_conn;            /* the connection that owns it */
    bool regs_set;            /* a VCPU_SETCONTEXT succeeded: the guest may write anything */
    bool changed_gfn[RAM / 4096];
    uint8_t *ram0;
    uint64_t tables[16];      /* the page-table frames (their A/D bits change) */
    unsigned ntables;
    char *log;
    size_t log_len;
    FILE *log_stream;
    unsigned polls;
    size_t unpolled;          /* bytes the clients sent since the server's last turn */
    unsigned answers;         /* every answer read, all connections */
} S;

/* ---- Setup --------------------------------------------------------------------------- */

static void setup(void)
{
    char err[512];
    int rc = scenario_parse(scenario_text, sizeof(scenario_text) - 1, "fuzz-serve.yaml", &G.scenario, err,
                            sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "FUZZ SET-UP failed (not a finding): the scenario: %s\n", err);
        abort();
    }
    G.verbose = getenv("FUZZ_SERVE_VERBOSE") != NULL;
    G.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    FUZZ_CHECK(G.devnull >= 0, "FUZZ SET-UP: cannot open /dev/null");
    S.ram0 = malloc(RAM);
    FUZZ_CHECK(S.ram0 != NULL, "FUZZ SET-UP: out of memory");
}

static unsigned count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    FUZZ_CHECK(dir != NULL, "FUZZ SET-UP: cannot list /proc/self/fd");
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        n += e->d_name[0] != '.';
    closedir(dir);
    return n - 1; /* the directory's own descriptor */
}

/*
 * ---- The server's log --------------------------------------------------------------------
 * serve writes its lines with stdio (stderr; the guest's end on stdout): while it runs,
 * both streams point at this input's log.  Sanitizer reports write to descriptor 2 itself
 * and are never caught here; the harness's own checks run outside these windows.
 */
static FILE *real_stderr, *real_stdout;

static void log_begin(void)
{
    real_stderr = stderr;
    real_stdout = stdout;
    stderr = S.log_stream;
    stdout = S.log_stream;
}

static void log_end(void)
{
    fflush(S.log_stream);
    stderr = real_stderr;
    stdout = real_stdout;
}

static bool log_has(const char *needle)
{
    fflush(S.log_stream);
    return S.log && memmem(S.log, S.log_len, needle, strlen(needle)) != NULL;
}

/* ---- The input --------------------------------------------------------------------------- */

struct input {
    const uint8_t *p;
    size_t n, i;
};

static uint8_t get8(struct input *in)
{
    return in->i < in->n ? in->p[in->i++] : 0;
}
static uint16_t get16(struct input *in)
{
    uint16_t lo = get8(in);
    return (uint16_t)(lo | (uint16_t)get8(in) << 8);
}

/* ---- What the server must answer: the ABI's rules from the harness's side -------------- */

static uint32_t payload_size(uint16_t op)
{
    switch (op) {
    case XENCTL_OP_GETINFO: case XENCTL_OP_MAX_GPFN: case XENCTL_OP_PAUSE: case XENCTL_OP_UNPAUSE:
    case XENCTL_OP_MONITOR_DISABLE:
        return 0;
    case XENCTL_OP_MONITOR_ENABLE: case XENCTL_OP_SET_ACCESS_REQUIRED: case XENCTL_OP_VCPU_GETCONTEXT:
        return sizeof(struct xenctl_u32);
    case XENCTL_OP_MONITOR_CONTROL: return sizeof(struct xenctl_monitor);
    case XENCTL_OP_SET_MEM_ACCESS: case XENCTL_OP_GET_MEM_ACCESS: return sizeof(struct xenctl_mem_access);
    case XENCTL_OP_DEBUG_CONTROL: return sizeof(struct xenctl_debug);
    case XENCTL_OP_INJECT_TRAP: return sizeof(struct xenctl_trap);
    case XENCTL_OP_ALTP2M: return sizeof(struct xenctl_altp2m);
    case XENCTL_OP_VCPU_SETCONTEXT: return sizeof(struct xenctl_vcpu_regs);
    default: return 0; /* FOREIGN_MAP: variable; unknown ops: anything */
    }
}

static bool known_op(uint16_t op)
{
    return op >= XENCTL_OP_GETINFO && op < XENCTL_OP_MAX;
}

/* A complete message with a good header: the rc the ABI decides, or 1 (0 or any -errno). */
static int32_t rule_rc(const struct xenctl_hdr *h, const uint8_t *p)
{
    if (h->domid != DOMID)
        return -ESRCH;
    if (!known_op(h->op))
        return -ENOSYS;
    if (h->op == XENCTL_OP_FOREIGN_MAP) {
        struct xenctl_map m;
        if (h->len < sizeof(m))
            return -EINVAL;
        memcpy(&m, p, sizeof(m));
        if (m.nr == 0 || m.nr > XENCTL_MAX_MAP_PAGES || h->len != sizeof(m) + (uint64_t)m.nr * 8)
            return -EINVAL;
        return 0; /* per-gfn errors are in the answer's offsets */
    }
    if (h->len != payload_size(h->op))
        return -EINVAL;
    if (h->op == XENCTL_OP_GETINFO || h->op == XENCTL_OP_MAX_GPFN)
        return 0;
    return 1;
}

/* Parses what went out on c as the server will; each complete message becomes an expectation. */
static void model_stream(struct hconn *c)
{
    for (;;) {
        if (c->malformed || c->out_have < sizeof(struct xenctl_hdr))
            return;
        struct xenctl_hdr h;
        memcpy(&h, c->out, sizeof(h));
        FUZZ_CHECK(c->qt - c->qh < MAX_EXPECT, "FUZZ SET-UP: too many answers outstanding");
        struct expect *e = &c->q[c->qt % MAX_EXPECT];
        *e = (struct expect){.op = h.op, .seq = h.seq, .domid = h.domid, .len = h.len};
        if (h.magic != XENCTL_MAGIC || h.version != XENCTL_VERSION || h.len > XENCTL_MAX_PAYLOAD) {
            e->kind = EXP_EPROTO;
            e->rc = -EPROTO;
            c->qt++;
            c->malformed = true;
            return;
        }
        size_t total = sizeof(h) + h.len;
        if (c->out_have < total)
            return;
        e->kind = EXP_ANSWER;
        e->rc = rule_rc(&h, c->out + sizeof(h));
        if (h.op == XENCTL_OP_FOREIGN_MAP && e->rc == 0)
            memcpy(e->gfns, c->out + sizeof(h) + sizeof(struct xenctl_map),
                   (h.len - sizeof(struct xenctl_map) < sizeof(e->gfns) ? h.len - sizeof(struct xenctl_map)
                                                                         : sizeof(e->gfns)));
        c->qt++;
        memmove(c->out, c->out + total, c->out_have - total);
        c->out_have -= total;
    }
}

/* ---- Sending -------------------------------------------------------------------------------- */

static struct hconn *conn_at(uint8_t c)
{
    for (unsigned k = 0; k < MAX_CONNS; k++) {
        struct hconn *h = &S.conns[(c + k) % MAX_CONNS];
        if (h->fd >= 0)
            return h;
    }
    return NULL;
}

/* Writes bytes (and maybe descriptors) into the client's end; the socket buffers are large enough. */
static void server_turn(void);

static void send_bytes(struct hconn *c, const uint8_t *b, size_t n, int nfds)
{
    if (!n || c->fd < 0)
        return;
    /*
     * Flow control, as a real client has it (it waits for each answer): never more than
     * UNPOLLED_MAX bytes (or MAX_EXPECT - 32 answers due) before the server's next turn, so
     * neither direction's socket buffer fills, whatever the input's size (an answer is at most
     * ~3 times its request; one send completes at most 11 requests).
     */
    if (S.unpolled + n > UNPOLLED_MAX || c->qt - c->qh > MAX_EXPECT - 32)
        server_turn();
    S.unpolled += n;
    struct iovec iov = {(void *)b, n};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.b;
        msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        int fds[2] = {G.devnull, G.devnull};
        memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t w = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
        return; /* the server closed it: nothing is read any more */
    FUZZ_CHECK(w == (ssize_t)n, "FUZZ SET-UP: a client's write of %zu bytes wrote %zd (%s)", n, w,
               w < 0 ? strerror(errno) : "short");
    /* The model (it holds at most one incomplete message); once the server will close, nothing more. */
    if (!c->malformed) {
        while (n) {
            size_t room = sizeof(c->out) - c->out_have, k = n < room ? n : room;
            memcpy(c->out + c->out_have, b, k);
            c->out_have += k;
            b += k;
            n -= k;
            model_stream(c);
            if (c->malformed)
                break;
        }
    }
}

static void flush_held(struct hconn *c)
{
    if (c->held_len) {
        size_t n = c->held_len;
        c->held_len = 0;
        send_bytes(c, c->held, n, 0);
    }
}

static void act_connect(void)
{
    for (unsigned k = 0; k < MAX_CONNS; k++) {
        struct hconn *c = &S.conns[k];
        if (c->fd >= 0)
            continue;
        int sp[2];
        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "FUZZ SET-UP: socketpair: %s",
                   strerror(errno));
        int big = 1 << 20;
        setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        setsockopt(sp[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        int rc = serve_add_conn(S.sv, sp[0]);
        if (rc == -EMFILE) {
            /* The server frees the slot of a closed client at its next turn (it sees the EOF then). */
            server_turn();
            rc = serve_add_conn(S.sv, sp[0]);
        }
        FUZZ_CHECK(rc == 0, "serve_add_conn of connection %u failed with at most %d clients open: %s", k, MAX_CONNS,
                   strerror(-rc));
        memset(c, 0, offsetof(struct hconn, out));
        c->qh = c->qt = 0;
        c->out_have = c->held_len = c->in_have = 0;
        c->nfds = 0;
        c->answers = 0;
        c->fd = sp[1];
        c->server_id = ++S.next_server_id;
        return;
    }
}

static void act_call(struct input *in)
{
    struct hconn *c = conn_at(get8(in));
    uint8_t op8 = get8(in), m = get8(in), n = get8(in);
    if (!c)
        return;
    static uint8_t msg[sizeof(struct xenctl_hdr) + 512]; /* the largest payload (vcpu_regs) and extra bytes */
    struct xenctl_hdr h = {.magic = XENCTL_MAGIC, .version = XENCTL_VERSION, .op = (uint16_t)(op8 % 18),
                           .domid = m & 1 ? 2u + (m >> 4) : DOMID, .seq = ++S.seq};
    uint8_t *p = msg + sizeof(h);
    uint32_t len;
    if (h.op == XENCTL_OP_FOREIGN_MAP) {
        struct xenctl_map mp = {.nr = (n & 0x7fu) % 9u, .prot = (n & 0x80) ? 3 : 1};
        memcpy(p, &mp, sizeof(mp));
        for (unsigned i = 0; i < mp.nr; i++) {
            uint64_t gfn = get16(in) | (m & 0x40 ? 1ull << 32 : 0);
            memcpy(p + sizeof(mp) + 8 * i, &gfn, 8);
        }
        len = sizeof(mp) + 8 * mp.nr;
    } else {
        len = payload_size(h.op);
        if (!known_op(h.op))
            len = n & 15;
        for (uint32_t i = 0; i < len; i++)
            p[i] = get8(in);
    }
    if (m & 2) {
        uint32_t extra = 1 + (n & 7);
        for (uint32_t i = 0; i < extra; i++)
            p[len + i] = get8(in);
        len += extra;
    }
    if (m & 0x20)
        len = 0;
    h.len = len;
    memcpy(msg, &h, sizeof(h));
    size_t total = sizeof(h) + len;
    flush_held(c);
    if (m & 8) {
        size_t now = n % total;
        send_bytes(c, msg, now, m & 4 ? 2 : 0);
        memcpy(c->held, msg + now, total - now);
        c->held_len = total - now;
    } else {
        send_bytes(c, msg, total, m & 4 ? 2 : 0);
    }
}

static void act_raw(struct input *in)
{
    struct hconn *c = conn_at(get8(in));
    uint8_t n = get8(in);
    uint8_t b[256];
    for (unsigned i = 0; i < n; i++)
        b[i] = get8(in);
    if (!c)
        return;
    flush_held(c);
    send_bytes(c, b, n, 0);
}

static void act_header(struct input *in)
{
    struct hconn *c = conn_at(get8(in));
    uint8_t op = get8(in);
    uint16_t len = get16(in);
    if (!c)
        return;
    struct xenctl_hdr h = {.magic = XENCTL_MAGIC, .version = XENCTL_VERSION, .op = op, .domid = DOMID,
                           .seq = ++S.seq, .len = len};
    flush_held(c);
    send_bytes(c, (const uint8_t *)&h, sizeof(h), 0);
}

static void act_fds(struct input *in)
{
    struct hconn *c = conn_at(get8(in));
    if (!c)
        return;
    flush_held(c);
    uint8_t b = XENCTL_MAGIC & 0xff; /* the first byte of a header, as a library would send it */
    send_bytes(c, &b, 1, 1);
}

/* ---- Reading answers ----------------------------------------------------------------------- */

static void ring_detach(void)
{
    if (!S.back && !S.evtchn && S.ring_conn < 0)
        return;
    if (S.back)
        ring_back_detach(S.back);
    if (S.evtchn)
        evtchn_close(S.evtchn);
    for (unsigned i = 0; i < 3; i++)
        if (S.ring_fds[i] >= 0)
            close(S.ring_fds[i]);
    S.back = NULL;
    S.evtchn = NULL;
    S.ring_fds[0] = S.ring_fds[1] = S.ring_fds[2] = -1;
    S.ring_conn = -1;
}

static void ring_attach(struct hconn *c, const int fds[3], unsigned version)
{
    ring_detach(); /* a second enable on another connection cannot succeed; be safe */
    struct ring_fds rf = {.shm = fds[0], .to_client = fds[1], .to_simulator = fds[2]};
    S.ring_fds[0] = fds[0], S.ring_fds[1] = fds[1], S.ring_fds[2] = fds[2];
    S.ring_conn = (int)(c - S.conns);
    S.ring_version = version;
    FUZZ_CHECK(ring_back_attach(&S.back, &rf, vme_slot_size(version), 0) == 0,
               "the ring descriptors MONITOR_ENABLE sent cannot be attached");
    FUZZ_CHECK(evtchn_open(&S.evtchn, &rf, RING_ABI_PORT_CLIENT) == 0,
               "the doorbell descriptors MONITOR_ENABLE sent cannot be opened");
}

/* Each offset is where the memfd holds that gfn's frame (RAM at 0, the pool after it), or -errno. */
static void check_map_answer(const struct expect *e, const uint8_t *p, uint32_t len, int memfd)
{
    struct sim_domain *d = serve_domain(S.sv);
    for (uint32_t i = 0; i < len / 8; i++) {
        int64_t off;
        memcpy(&off, p + 8 * i, 8);
        uint64_t gfn = i < 8 ? e->gfns[i] : UINT64_MAX;
        if (off < 0) {
            FUZZ_CHECK(off >= -133, "FOREIGN_MAP offset %u is %lld: neither an offset nor -errno", i, (long long)off);
            if (gfn != UINT64_MAX)
                FUZZ_CHECK(gfn >= RAM / 4096 || off != -EINVAL, "FOREIGN_MAP of gfn %#llx, in RAM, is -EINVAL",
                           (unsigned long long)gfn);
            continue;
        }
        FUZZ_CHECK(off % 4096 == 0 && (uint64_t)off < 2ull * RAM,
                   "FOREIGN_MAP offset %u is %lld: not a page of the RAM memfd", i, (long long)off);
        if (gfn == UINT64_MAX)
            continue;
        FUZZ_CHECK(gfn < RAM / 4096, "FOREIGN_MAP of gfn %#llx, beyond RAM, gave offset %lld",
                   (unsigned long long)gfn, (long long)off);
        const uint8_t *frame = sim_frame(d, gfn);
        FUZZ_CHECK(frame != NULL, "gfn %#llx has no frame but FOREIGN_MAP gave offset %lld", (unsigned long long)gfn,
                   (long long)off);
        int64_t want = frame >= d->ram && frame < d->ram + RAM ? frame - d->ram : RAM + (frame - d->pool);
        FUZZ_CHECK(off == want, "FOREIGN_MAP of gfn %#llx gave offset %#llx; its frame is at %#llx",
                   (unsigned long long)gfn, (unsigned long long)off, (unsigned long long)want);
        /* What the client maps there is what the guest sees at the gfn. */
        void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, memfd, off);
        FUZZ_CHECK(map != MAP_FAILED, "the RAM memfd cannot be mapped at offset %lld: %s", (long long)off,
                   strerror(errno));
        FUZZ_CHECK(memcmp(map, frame, 4096) == 0, "the client's mapping of gfn %#llx shows other bytes than the "
                   "guest's", (unsigned long long)gfn);
        munmap(map, 4096);
    }
}

/* One complete answer in c->in: check it against the oldest expectation. */
static void take_answer(struct hconn *c)
{
    struct xenctl_hdr r;
    memcpy(&r, c->in, sizeof(r));
    const uint8_t *p = c->in + sizeof(r);
    FUZZ_CHECK(c->qh != c->qt, "connection %u (client %u): an answer (op %u, seq %u, rc %d) to no request",
               (unsigned)(c - S.conns), c->server_id, r.op, r.seq, r.rc);
    const struct expect *e = &c->q[c->qh % MAX_EXPECT];
    c->qh++;
    c->answers++;
    S.answers++;
    FUZZ_CHECK(r.magic == XENCTL_MAGIC && r.version == XENCTL_VERSION, "an answer with magic %#x version %u",
               r.magic, r.version);
    FUZZ_CHECK(r.op == e->op && r.seq == e->seq && r.domid == e->domid,
               "client %u: the answer (op %u seq %u domid %u) is not for the oldest request (op %u seq %u domid %u): "
               "lost, duplicated or reordered", c->server_id, r.op, r.seq, r.domid, e->op, e->seq, e->domid);
    FUZZ_CHECK(r.rc <= 0 && r.rc >= -133, "client %u: op %u answered rc %d: neither 0 nor -errno", c->server_id,
               r.op, r.rc);
    if (e->rc != 1)
        FUZZ_CHECK(r.rc == e->rc, "client %u: op %u (payload %u bytes, domid %u) answered %d, the ABI says %d",
                   c->server_id, e->op, e->len, e->domid, r.rc, e->rc);
    unsigned want_fds = 0;
    uint32_t want_len = 0;
    if (r.rc == 0) {
        switch (r.op) {
        case XENCTL_OP_GETINFO: want_len = sizeof(struct xenctl_info); break;
        case XENCTL_OP_MAX_GPFN: case XENCTL_OP_GET_MEM_ACCESS: want_len = 8; break;
        case XENCTL_OP_MONITOR_ENABLE: want_len = sizeof(struct xenctl_port); want_fds = 3; break;
        case XENCTL_OP_ALTP2M: want_len = sizeof(struct xenctl_altp2m); break;
        case XENCTL_OP_VCPU_GETCONTEXT: want_len = sizeof(struct xenctl_vcpu_regs); break;
        case XENCTL_OP_FOREIGN_MAP: want_len = (e->len - 8); want_fds = 1; break;
        default: break;
        }
    }
    FUZZ_CHECK(r.len == want_len, "client %u: op %u rc %d answered with %u payload bytes, expected %u",
               c->server_id, r.op, r.rc, r.len, want_len);
    FUZZ_CHECK(c->nfds >= want_fds, "client %u: op %u rc %d came with %u descriptor(s), expected %u",
               c->server_id, r.op, r.rc, c->nfds, want_fds);
    int fds[3] = {-1, -1, -1};
    for (unsigned i = 0; i < want_fds; i++)
        fds[i] = c->fds[i];
    memmove(c->fds, c->fds + want_fds, (c->nfds - want_fds) * sizeof(int));
    c->nfds -= want_fds;
    if (r.rc == 0 && r.op == XENCTL_OP_GETINFO) {
        struct xenctl_info info;
        memcpy(&info, p, sizeof(info));
        FUZZ_CHECK(info.domid == DOMID && info.nr_vcpus == 2 && info.nr_online_vcpus <= 2 && info.max_pages,
                   "GETINFO describes another domain: domid %u, %u vCPUs", info.domid, info.nr_vcpus);
    }
    if (r.rc == 0 && r.op == XENCTL_OP_MAX_GPFN) {
        uint64_t v;
        memcpy(&v, p, 8);
        FUZZ_CHECK(v == RAM / 4096 - 1, "MAX_GPFN says %llu, the RAM ends at gfn %u", (unsigned long long)v,
                   RAM / 4096 - 1);
    }
    if (r.rc == 0 && r.op == XENCTL_OP_FOREIGN_MAP)
        check_map_answer(e, p, r.len, fds[0]);
    if (r.rc == 0 && r.op == XENCTL_OP_MONITOR_ENABLE) {
        struct xenctl_port port;
        memcpy(&port, p, sizeof(port));
        ring_attach(c, fds, port.version);
    } else {
        for (unsigned i = 0; i < want_fds; i++)
            close(fds[i]);
    }
    if (r.rc == 0 && r.op == XENCTL_OP_VCPU_SETCONTEXT)
        S.regs_set = true;
    if (r.rc == 0 && r.op == XENCTL_OP_ALTP2M) {
        struct xenctl_altp2m a;
        memcpy(&a, p, sizeof(a));
        if (a.op == XENCTL_ALTP2M_CHANGE_GFN && a.gfn2 < RAM / 4096)
            S.changed_gfn[a.gfn2] = true;
    }
    if (e->kind == EXP_EPROTO)
        FUZZ_CHECK(r.rc == -EPROTO && r.len == 0, "a malformed header got rc %d", r.rc);
}

static void drain(struct hconn *c)
{
    while (c->fd >= 0 && !c->server_closed) {
        char ctl[CMSG_SPACE(8 * sizeof(int))];
        struct iovec iov = {c->in + c->in_have, sizeof(c->in) - c->in_have};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); n >= 0 && cm; cm = CMSG_NXTHDR(&msg, cm)) {
            FUZZ_CHECK(cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS, "an answer with ancillary data "
                       "of type %d", cm->cmsg_type);
            for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
                FUZZ_CHECK(c->nfds < 16, "client %u got more than 16 descriptors unanswered", c->server_id);
                memcpy(&c->fds[c->nfds++], CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
            }
        }
        FUZZ_CHECK(!(msg.msg_flags & MSG_CTRUNC), "client %u: descriptors were cut off", c->server_id);
        if (n < 0) {
            FUZZ_CHECK(errno == EAGAIN || errno == ECONNRESET, "client %u: recvmsg: %s", c->server_id,
                       strerror(errno));
            if (errno == EAGAIN)
                return;
            n = 0;
        }
        if (n == 0) {
            /* The server closed: only after an answered malformed header or the client's own shutdown. */
            c->server_closed = true;
            FUZZ_CHECK(c->in_have == 0, "client %u: the server closed in the middle of an answer", c->server_id);
            FUZZ_CHECK(c->malformed || c->half_closed,
                       "client %u: the server closed a connection that sent nothing malformed (%u answer(s) read, "
                       "%u due)", c->server_id, c->answers, c->qt - c->qh);
            /* Everything complete before the bad header (or the client's EOF) was read, so answered. */
            FUZZ_CHECK(c->qh == c->qt, "client %u: closed with %u answer(s) still due", c->server_id, c->qt - c->qh);
            if (c->malformed) {
                char line[96];
                snprintf(line, sizeof(line), "client %u: connection closed (sent a malformed message", c->server_id);
                FUZZ_CHECK(log_has(line), "client %u: closed for its malformed header without a logged reason",
                           c->server_id);
            }
            return;
        }
        c->in_have += (size_t)n;
        for (;;) {
            struct xenctl_hdr r;
            if (c->in_have < sizeof(r))
                break;
            memcpy(&r, c->in, sizeof(r));
            FUZZ_CHECK(r.len <= XENCTL_MAX_PAYLOAD, "an answer claims %u payload bytes", r.len);
            size_t total = sizeof(r) + r.len;
            if (c->in_have < total)
                break;
            take_answer(c);
            memmove(c->in, c->in + total, c->in_have - total);
            c->in_have -= total;
        }
    }
}

static void drain_all(void)
{
    for (unsigned k = 0; k < MAX_CONNS; k++)
        drain(&S.conns[k]);
}

/* One turn of the server, then every answer read (so the server never finds a full socket). */
static void server_turn(void)
{
    log_begin();
    int rc = serve_poll(S.sv, 0);
    log_end();
    FUZZ_CHECK(rc == 0, "serve_poll returned %d (%s)", rc, strerror(-rc));
    S.unpolled = 0;
    drain_all();
}

static void poll_once(void)
{
    if (S.polls >= MAX_POLLS)
        return;
    S.polls++;
    server_turn();
}

static void act_close(struct input *in, bool half)
{
    struct hconn *c = conn_at(get8(in));
    if (!c)
        return;
    if (half) {
        shutdown(c->fd, SHUT_WR);
        c->half_closed = true;
        return;
    }
    close(c->fd);
    c->fd = -1;
    for (unsigned i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
    if (S.ring_conn == (int)(c - S.conns))
        ring_detach(); /* the client process "died": its ring mapping goes with it */
}

static void act_answer(void)
{
    if (!S.back)
        return;
    uint8_t slot[400];
    bool any = false;
    while (ring_back_take_request(S.back, slot) == 0) {
        struct vme_msg req;
        if (vme_decode(S.ring_version, slot, &req) < 0)
            continue;
        struct vme_msg rsp = req;
        rsp.flags = req.flags & VME_FLAG_VCPU_PAUSED;
        if (vme_encode(S.ring_version, &rsp, slot) == 0 && ring_back_put_response(S.back, slot) == 0)
            any = true;
    }
    if (any && ring_back_push_responses(S.back))
        evtchn_notify(S.evtchn);
}

/* ---- Guest memory ------------------------------------------------------------------------ */

/* The page-table frames of vCPU 0's tables (long mode, 4 levels, 4K pages), from CR3. */
static void find_tables(struct sim_domain *d)
{
    struct cpu_regs r;
    FUZZ_SETUP(sim_vcpu_get_regs(d, 0, &r));
    S.ntables = 0;
    uint64_t level[16], next[16];
    unsigned nl = 1, nn;
    level[0] = r.cr3 & ~0xfffull;
    for (unsigned depth = 0; depth < 4 && nl; depth++) {
        nn = 0;
        for (unsigned i = 0; i < nl; i++) {
            FUZZ_CHECK(S.ntables < 16 && level[i] < RAM, "FUZZ SET-UP: page tables outside RAM");
            S.tables[S.ntables++] = level[i] / 4096;
            if (depth == 3)
                continue;
            for (unsigned e = 0; e < 512; e++) {
                uint64_t pte;
                memcpy(&pte, d->ram + level[i] + 8 * e, 8);
                if ((pte & 1) && nn < 16)
                    next[nn++] = pte & 0x000ffffffffff000ull;
            }
        }
        memcpy(level, next, nn * sizeof(uint64_t));
        nl = nn;
    }
}

static bool is_table(uint64_t gfn)
{
    for (unsigned i = 0; i < S.ntables; i++)
        if (S.tables[i] == gfn)
            return true;
    return false;
}

static void check_memory(struct sim_domain *d)
{
    if (S.regs_set)
        return;
    for (uint64_t g = 0; g < RAM / 4096; g++) {
        const uint8_t *now = d->ram + g * 4096, *was = S.ram0 + g * 4096;
        if (g == DATA_GFN || g == STACK_GFN || S.changed_gfn[g] || !memcmp(now, was, 4096))
            continue;
        for (unsigned off = 0; off < 4096; off += 8) {
            uint64_t a, b;
            memcpy(&a, now + off, 8);
            memcpy(&b, was + off, 8);
            uint64_t mask = is_table(g) ? ~0x60ull : ~0ull;
            FUZZ_CHECK((a & mask) == (b & mask), "guest memory no call changes changed: gpa %#llx was %#llx, is %#llx",
                       (unsigned long long)(g * 4096 + off), (unsigned long long)b, (unsigned long long)a);
        }
    }
}

/* ---- One input ------------------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!G.scenario)
        setup();
    unsigned fds_before = count_fds();
    uint8_t *ram0 = S.ram0;
    memset(&S, 0, sizeof(S));
    S.ram0 = ram0;
    S.ring_fds[0] = S.ring_fds[1] = S.ring_fds[2] = -1;
    S.ring_conn = -1;
    for (unsigned k = 0; k < MAX_CONNS; k++)
        S.conns[k].fd = -1;
    S.log_stream = open_memstream(&S.log, &S.log_len);
    FUZZ_CHECK(S.log_stream != NULL, "FUZZ SET-UP: open_memstream");

    struct input in = {data, size, 0};
    uint8_t flags = get8(&in);
    struct serve_opts o = {.domid = DOMID, .start_now = flags & 1, .verbose = true};
    char err[512];
    log_begin();
    int rc = serve_open(G.scenario, &o, &S.sv, err, sizeof(err));
    log_end();
    if (rc < 0) {
        fprintf(stderr, "FUZZ SET-UP failed (not a finding): serve_open: %s\n", err);
        abort();
    }
    struct sim_domain *d = serve_domain(S.sv);
    memcpy(S.ram0, d->ram, RAM);
    find_tables(d);

    while (in.i < in.n) {
        switch (get8(&in) % 12) {
        case 0: act_connect(); break;
        case 1: case 11: act_call(&in); break;
        case 2: act_raw(&in); break;
        case 3: {
            unsigned n = 1 + get8(&in) % 4;
            for (unsigned i = 0; i < n; i++)
                poll_once();
            break;
        }
        case 4: act_close(&in, false); break;
        case 5: act_close(&in, true); break;
        case 6:
            if (S.evtchn)
                evtchn_notify(S.evtchn);
            break;
        case 7: act_answer(); break;
        case 8: {
            unsigned n = get8(&in) % 16;
            for (unsigned i = 0; i < n; i++)
                poll_once();
            break;
        }
        case 9: act_fds(&in); break;
        case 10: act_header(&in); break;
        }
    }

    /* Everything complete is answered: let the server read it all. */
    S.polls = 0;
    poll_once();
    poll_once();
    for (unsigned k = 0; k < MAX_CONNS; k++) {
        struct hconn *c = &S.conns[k];
        if (c->fd < 0 || c->server_closed)
            continue;
        FUZZ_CHECK(c->qh == c->qt, "client %u: %u complete request(s) without an answer (%u answered)",
                   c->server_id, c->qt - c->qh, c->answers);
        FUZZ_CHECK(!c->malformed, "client %u: sent a malformed header but the server did not close it",
                   c->server_id);
    }
    /* Other connections keep working: a fresh one's GETINFO. */
    for (unsigned k = 0; k < MAX_CONNS; k++)
        if (S.conns[k].fd >= 0 && (S.conns[k].server_closed || S.conns[k].malformed || S.conns[k].half_closed)) {
            close(S.conns[k].fd);
            S.conns[k].fd = -1;
        }
    bool room = false;
    for (unsigned k = 0; k < MAX_CONNS; k++)
        room |= S.conns[k].fd < 0;
    if (!room) {
        close(S.conns[0].fd);
        S.conns[0].fd = -1;
        if (S.ring_conn == 0)
            ring_detach();
    }
    act_connect();
    struct hconn *fresh = NULL;
    for (unsigned k = 0; k < MAX_CONNS; k++)
        if (S.conns[k].fd >= 0 && S.conns[k].server_id == S.next_server_id)
            fresh = &S.conns[k];
    if (fresh) {
        struct xenctl_hdr h = {.magic = XENCTL_MAGIC, .version = XENCTL_VERSION, .op = XENCTL_OP_GETINFO,
                               .domid = DOMID, .seq = ++S.seq};
        send_bytes(fresh, (const uint8_t *)&h, sizeof(h), 0);
        poll_once();
        FUZZ_CHECK(fresh->answers == 1, "a fresh connection's GETINFO got %u answers after the input", fresh->answers);
    }
    check_memory(d);
    if (G.verbose) {
        unsigned answers = S.answers, conns = S.next_server_id;
        fflush(S.log_stream);
        fprintf(stderr, "fuzz_serve: %u connection(s), %u answer(s) read, guest %s, %llu instructions, %s\n%.*s",
                conns, answers, serve_started(S.sv) ? "started" : "not started",
                (unsigned long long)sim_now(d), S.regs_set ? "memory unchecked (registers set)" : "memory checked",
                (int)S.log_len, S.log ? S.log : "");
    }

    ring_detach();
    log_begin();
    serve_close(S.sv);
    log_end();
    S.sv = NULL;
    for (unsigned k = 0; k < MAX_CONNS; k++) {
        struct hconn *c = &S.conns[k];
        for (unsigned i = 0; i < c->nfds; i++)
            close(c->fds[i]);
        c->nfds = 0;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
    }
    fclose(S.log_stream);
    S.log_stream = NULL;
    free(S.log);
    S.log = NULL;
    unsigned fds_after = count_fds();
    FUZZ_CHECK(fds_after == fds_before, "descriptors leaked: %u open before the input, %u after", fds_before,
               fds_after);
    return 0;
}
