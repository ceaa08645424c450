/*
 * tests/xen_clients/xc_test.c — a libxenctrl client, compiled against Debian's
 * <xenctrl.h>/<xenevtchn.h>/<xenforeignmemory.h> and linked with vmisim's
 * drop-ins, against `vmisim serve` of write3.yaml (a guest writing to gfns
 * 0x20, 0x21 and 0x22, then halting).
 *
 *   xc_test VMISIM SCENARIO DIR events     a whole monitor session on the real ring
 *   xc_test VMISIM SCENARIO DIR killed     a client SIGKILLed while a vCPU waits, then a second one
 *   xc_test VMISIM SCENARIO DIR malformed  bad control messages on a raw socket
 *   xc_test VMISIM SCENARIO DIR badpath    no server at VMISIM_SOCKET: a clear error
 *
 * Each prints what failed and exits 1; 0 when everything held.
 */
#define __XEN_TOOLS__ 1
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/vm_event.h>

#include "xenctl_abi.h"

#define DOMID 1
static int failures;
#define CHECK(cond, ...)                                                                             \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            fprintf(stderr, __VA_ARGS__);                                                            \
            fprintf(stderr, "\n");                                                                   \
            failures++;                                                                              \
        }                                                                                            \
    } while (0)

static char sock_path[256], out_path[300];
static pid_t server;

static void start_server(const char *vmisim, const char *scenario, const char *dir, const char *tag)
{
    snprintf(sock_path, sizeof(sock_path), "%s/xc-%s-%d.sock", dir, tag, (int)getpid());
    snprintf(out_path, sizeof(out_path), "%s/xc-%s-%d.out", dir, tag, (int)getpid());
    unlink(sock_path);
    server = fork();
    if (server == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            dup2(fd, 1);
        execl(vmisim, vmisim, "serve", scenario, "--socket", sock_path, "--domid", "1", "--exit-when-halted",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if (stat(sock_path, &st) == 0)
            break;
        usleep(10000);
    }
    setenv("VMISIM_SOCKET", sock_path, 1);
}

/* Waits for the server to exit on its own (the guest ended, every client gone). */
static void stop_server(bool expect_halted)
{
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(server, &status, WNOHANG) == server)
            goto done;
        usleep(10000);
    }
    fprintf(stderr, "FAIL: vmisim serve did not exit after the guest ended; killing it\n");
    failures++;
    kill(server, SIGTERM);
    waitpid(server, &status, 0);
done:
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vmisim serve exit status %#x", status);
    char buf[4096] = "";
    FILE *f = fopen(out_path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    if (expect_halted)
        CHECK(strstr(buf, "summary") && strstr(buf, "the guest halted"), "serve's summary: %s", buf);
    unlink(out_path);
}

/* ---- A xen-access-style client -------------------------------------------------------- */

struct client {
    xc_interface *xch;
    xenevtchn_handle *xce;
    void *ring_page;
    vm_event_back_ring_t back;
    evtchn_port_t port;
    xen_pfn_t max_gpfn;
};

static int client_open(struct client *c)
{
    uint32_t remote = 0;
    memset(c, 0, sizeof(*c));
    if (!(c->xch = xc_interface_open(NULL, NULL, 0)))
        return -1;
    for (int i = 0; i < 200; i++) {
        c->ring_page = xc_monitor_enable(c->xch, DOMID, &remote);
        /* The previous client's death may not have been noticed yet: Xen's EBUSY. */
        if (c->ring_page || errno != EBUSY)
            break;
        usleep(10000);
    }
    CHECK(c->ring_page, "xc_monitor_enable: %s", strerror(errno));
    if (!c->ring_page)
        return -1;
    c->xce = xenevtchn_open(NULL, 0);
    CHECK(c->xce, "xenevtchn_open");
    int port = xenevtchn_bind_interdomain(c->xce, DOMID, remote);
    CHECK(port >= 0, "xenevtchn_bind_interdomain: %s", strerror(errno));
    c->port = (evtchn_port_t)port;
    SHARED_RING_INIT((vm_event_sring_t *)c->ring_page);
    BACK_RING_INIT(&c->back, (vm_event_sring_t *)c->ring_page, XC_PAGE_SIZE);
    CHECK(xc_domain_maximum_gpfn(c->xch, DOMID, &c->max_gpfn) == 0, "max_gpfn");
    CHECK(c->max_gpfn == 0xff, "max_gpfn %#lx, expected 0xff (1 MiB)", (unsigned long)c->max_gpfn);
    /* As xen-access `write`: everything rx, the default first. */
    CHECK(xc_set_mem_access(c->xch, DOMID, XENMEM_access_rx, ~0ull, 0) == 0, "set default access");
    CHECK(xc_set_mem_access(c->xch, DOMID, XENMEM_access_rx, 0, c->max_gpfn) == 0, "set access");
    return 0;
}

/* Waits for requests, at most timeout_ms; returns how many are waiting. */
static int client_wait(struct client *c, int timeout_ms)
{
    struct pollfd p = {.fd = xenevtchn_fd(c->xce), .events = POLLIN};
    if (poll(&p, 1, timeout_ms) == 1) {
        int port = xenevtchn_pending(c->xce);
        CHECK(port == (int)c->port, "xenevtchn_pending gave %d, bound %u", port, c->port);
        CHECK(xenevtchn_unmask(c->xce, c->port) == 0, "unmask");
    }
    return RING_HAS_UNCONSUMED_REQUESTS(&c->back);
}

static void client_take(struct client *c, vm_event_request_t *req)
{
    RING_COPY_REQUEST(&c->back, c->back.req_cons, req);
    c->back.req_cons++;
    c->back.sring->req_event = c->back.req_cons + 1;
}

static void client_answer(struct client *c, const vm_event_request_t *req)
{
    vm_event_response_t rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = VM_EVENT_INTERFACE_VERSION;
    rsp.vcpu_id = req->vcpu_id;
    rsp.flags = req->flags & VM_EVENT_FLAG_VCPU_PAUSED;
    rsp.reason = req->reason;
    rsp.u.mem_access = req->u.mem_access;
    memcpy(RING_GET_RESPONSE(&c->back, c->back.rsp_prod_pvt), &rsp, sizeof(rsp));
    c->back.rsp_prod_pvt++;
    RING_PUSH_RESPONSES(&c->back);
}

static void client_close(struct client *c)
{
    if (c->ring_page)
        munmap(c->ring_page, XC_PAGE_SIZE);
    if (c->xch && c->ring_page)
        CHECK(xc_monitor_disable(c->xch, DOMID) == 0, "xc_monitor_disable: %s", strerror(errno));
    if (c->xce) {
        CHECK(xenevtchn_unbind(c->xce, c->port) == 0, "unbind");
        xenevtchn_close(c->xce);
    }
    xc_interface_close(c->xch);
}

/*
 * Serves MEM_ACCESS requests until the three data pages have been written
 * (seen[] by gfn - 0x20), lifting each page's restriction as xen-access does.
 */
static void serve_events(struct client *c, bool seen[3], unsigned *events)
{
    long deadline = time(NULL) + 20;
    while (!(seen[0] && seen[1] && seen[2]) && time(NULL) < deadline) {
        client_wait(c, 100);
        while (RING_HAS_UNCONSUMED_REQUESTS(&c->back)) {
            vm_event_request_t req;
            client_take(c, &req);
            (*events)++;
            CHECK(req.version == VM_EVENT_INTERFACE_VERSION, "request version %u", req.version);
            CHECK(req.reason == VM_EVENT_REASON_MEM_ACCESS, "reason %u", req.reason);
            CHECK(req.flags & VM_EVENT_FLAG_VCPU_PAUSED, "flags %#x", req.flags);
            uint64_t gfn = req.u.mem_access.gfn;
            xenmem_access_t a;
            CHECK(xc_get_mem_access(c->xch, DOMID, gfn, &a) == 0 && a == XENMEM_access_rx,
                  "get_mem_access gfn %#lx", (unsigned long)gfn);
            if (gfn >= 0x20 && gfn <= 0x22 && (req.u.mem_access.flags & MEM_ACCESS_FAULT_WITH_GLA)) {
                CHECK(req.u.mem_access.flags & MEM_ACCESS_W, "gfn %#lx: not a write", (unsigned long)gfn);
                CHECK(req.u.mem_access.offset == 0x10, "offset %#lx", (unsigned long)req.u.mem_access.offset);
                CHECK(req.u.mem_access.gla == 0x600010 + (gfn - 0x20) * 0x1000, "gla %#lx",
                      (unsigned long)req.u.mem_access.gla);
                seen[gfn - 0x20] = true;
            }
            CHECK(xc_set_mem_access(c->xch, DOMID, XENMEM_access_rwx, gfn, 1) == 0, "relax gfn");
            client_answer(c, &req);
        }
        CHECK(xenevtchn_notify(c->xce, c->port) == 0, "notify");
    }
}

/*
 * The guest halted: the writes landed; read them through a foreign mapping.
 * The handles are opened before the monitor client goes, since the server
 * (--exit-when-halted) stops once the guest has ended and no client is left.
 */
static void check_guest_end(xc_interface *xch, xenforeignmemory_handle *fm)
{
    CHECK(xch && fm, "xc_interface_open / xenforeignmemory_open");
    if (!xch || !fm)
        return;
    xc_dominfo_t info;
    bool done = false;
    for (int i = 0; i < 500 && !done; i++) {
        CHECK(xc_domain_getinfo(xch, DOMID, 1, &info) == 1, "getinfo");
        done = !info.running && !info.paused;
        if (!done)
            usleep(10000);
    }
    CHECK(done && info.domid == DOMID, "the guest did not end (running %u paused %u)", info.running, info.paused);
    vcpu_guest_context_any_t ctx;
    CHECK(xc_vcpu_getcontext(xch, DOMID, 0, &ctx) == 0, "getcontext");
    CHECK(ctx.x64.user_regs.rcx == 0, "rcx %#lx: the guest's loop did not finish", (unsigned long)ctx.x64.user_regs.rcx);
    xen_pfn_t gfns[3] = {0x20, 0x21, 0x22};
    int err[3];
    uint8_t *p = fm ? xenforeignmemory_map(fm, DOMID, PROT_READ, 3, gfns, err) : NULL;
    CHECK(p, "xenforeignmemory_map: %s", strerror(errno));
    for (int i = 0; p && i < 3; i++) {
        uint64_t v;
        memcpy(&v, p + i * 4096 + 0x10, sizeof(v));
        CHECK(err[i] == 0 && v == (uint64_t)i + 1, "gfn %#x+0x10 holds %#lx, expected %d", 0x20 + i,
              (unsigned long)v, i + 1);
    }
    xen_pfn_t bad = 0x100000;
    CHECK(fm && !xenforeignmemory_map(fm, DOMID, PROT_READ, 1, &bad, NULL) && errno == EINVAL,
          "a gfn beyond RAM must fail with EINVAL (errno %d)", errno);
    if (p)
        xenforeignmemory_unmap(fm, p, 3);
    xenforeignmemory_close(fm);
    /* Return conventions: a bad vCPU is -1/EINVAL, a second unpause -1/EINVAL. */
    CHECK(xc_domain_debug_control(xch, DOMID, 0, 31) == -1 && errno == EINVAL, "debug_control vcpu 31");
    CHECK(xc_domain_unpause(xch, DOMID) == -1 && errno == EINVAL, "unpause without pause");
    CHECK(xc_monitor_disable(xch, DOMID) == -1 && errno == EINVAL, "disable without ring");
    CHECK(xc_domain_getinfo(xch, 7, 1, &info) == -1 && errno == ESRCH, "getinfo of another domain");
    xc_interface_close(xch);
}

static int test_events(const char *vmisim, const char *scenario, const char *dir)
{
    start_server(vmisim, scenario, dir, "events");
    struct client c;
    bool seen[3] = {false};
    unsigned events = 0;
    if (client_open(&c) == 0)
        serve_events(&c, seen, &events);
    CHECK(seen[0] && seen[1] && seen[2], "write events seen: %d %d %d (%u events)", seen[0], seen[1], seen[2],
          events);
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
    client_close(&c);
    check_guest_end(xch, fm);
    stop_server(true);
    return failures;
}

static int test_killed(const char *vmisim, const char *scenario, const char *dir)
{
    start_server(vmisim, scenario, dir, "killed");
    pid_t child = fork();
    if (child == 0) {
        /* The first client: takes one request and dies without answering, its vCPU paused. */
        struct client c;
        if (client_open(&c) < 0)
            _exit(2);
        for (int i = 0; i < 200; i++) {
            CHECK(xenevtchn_notify(c.xce, c.port) == 0, "notify"); /* the "go" */
            if (client_wait(&c, 50))
                kill(getpid(), SIGKILL);
        }
        _exit(3);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "first client: status %#x", status);
    /* The second client gets the unanswered request again, then the rest; the guest ends. */
    struct client c;
    bool seen[3] = {false};
    unsigned events = 0;
    if (client_open(&c) == 0) {
        CHECK(xenevtchn_notify(c.xce, c.port) == 0, "notify");
        serve_events(&c, seen, &events);
    }
    CHECK(seen[0] && seen[1] && seen[2], "second client saw %d %d %d", seen[0], seen[1], seen[2]);
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
    client_close(&c);
    check_guest_end(xch, fm);
    stop_server(true);
    return failures;
}

/* ---- Raw control messages ------------------------------------------------------------------- */

static int raw_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Sends a header (+ payload) and reads the answer's header: its rc, or 1 on EOF. */
static int raw_call(int fd, struct xenctl_hdr h, const void *payload, size_t len)
{
    if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) || (len && write(fd, payload, len) != (ssize_t)len))
        return 2;
    struct xenctl_hdr r;
    ssize_t n = recv(fd, &r, sizeof(r), MSG_WAITALL);
    if (n == 0)
        return 1;
    if (n != (ssize_t)sizeof(r))
        return 3;
    char skip[256];
    for (uint32_t left = r.len; left;) {
        ssize_t k = read(fd, skip, left < sizeof(skip) ? left : sizeof(skip));
        if (k <= 0)
            break;
        left -= (uint32_t)k;
    }
    return r.rc;
}

static bool at_eof(int fd)
{
    char b;
    return recv(fd, &b, 1, 0) == 0;
}

static int test_malformed(const char *vmisim, const char *scenario, const char *dir)
{
    start_server(vmisim, scenario, dir, "malformed");
    struct xenctl_hdr ok = {.magic = XENCTL_MAGIC, .version = XENCTL_VERSION, .op = XENCTL_OP_GETINFO,
                            .domid = DOMID, .seq = 1};
    int fd = raw_connect();
    CHECK(fd >= 0, "connect");
    CHECK(raw_call(fd, ok, NULL, 0) == 0, "a good GETINFO");
    struct xenctl_hdr h = ok;
    h.op = 999;
    CHECK(raw_call(fd, h, NULL, 0) == -ENOSYS, "unknown op -> -ENOSYS");
    h = ok;
    h.op = XENCTL_OP_SET_MEM_ACCESS;
    h.len = 3;
    CHECK(raw_call(fd, h, "abc", 3) == -EINVAL, "short payload -> -EINVAL");
    h = ok;
    h.domid = 42;
    CHECK(raw_call(fd, h, NULL, 0) == -ESRCH, "another domid -> -ESRCH");
    h = ok;
    h.op = XENCTL_OP_FOREIGN_MAP;
    struct xenctl_map m = {.nr = 1000000, .prot = 1};
    h.len = sizeof(m);
    CHECK(raw_call(fd, h, &m, sizeof(m)) == -EINVAL, "map count beyond the payload -> -EINVAL");
    h = ok;
    h.op = XENCTL_OP_MONITOR_ENABLE;
    struct xenctl_u32 v = {.value = 3};
    h.len = sizeof(v);
    CHECK(raw_call(fd, h, &v, sizeof(v)) == -EINVAL, "ring version 3 -> -EINVAL");
    h = ok;
    h.magic = 0xdeadbeef;
    CHECK(raw_call(fd, h, NULL, 0) == -EPROTO, "bad magic -> -EPROTO");
    CHECK(at_eof(fd), "bad magic: the connection is closed");
    close(fd);
    fd = raw_connect();
    h = ok;
    h.len = XENCTL_MAX_PAYLOAD + 1;
    CHECK(raw_call(fd, h, NULL, 0) == -EPROTO, "oversized length -> -EPROTO");
    CHECK(at_eof(fd), "oversized: the connection is closed");
    close(fd);
    /* Half a header, then gone; descriptors sent to the server; random bytes. */
    fd = raw_connect();
    CHECK(write(fd, &ok, 10) == 10, "partial write");
    close(fd);
    fd = raw_connect();
    {
        int pass = open("/dev/null", O_RDONLY);
        char ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {&ok, sizeof(ok)};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS, cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass, sizeof(int));
        CHECK(sendmsg(fd, &msg, 0) == (ssize_t)sizeof(ok), "sendmsg with a descriptor");
        struct xenctl_hdr r;
        CHECK(recv(fd, &r, sizeof(r), MSG_WAITALL) == (ssize_t)sizeof(r) && r.rc == 0, "GETINFO with a descriptor");
        close(pass);
    }
    close(fd);
    fd = raw_connect();
    srand(9);
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)rand();
    CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk), "junk");
    close(fd);
    /* The server is still there and answers; a real client still works. */
    fd = raw_connect();
    CHECK(fd >= 0 && raw_call(fd, ok, NULL, 0) == 0, "the server survived");
    close(fd);
    struct client c;
    bool seen[3] = {false};
    unsigned events = 0;
    if (client_open(&c) == 0)
        serve_events(&c, seen, &events);
    CHECK(seen[0] && seen[1] && seen[2], "events after the bad messages");
    client_close(&c);
    stop_server(true);
    return failures;
}

static int test_badpath(const char *dir)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/no-such-dir/none.sock", dir);
    setenv("VMISIM_SOCKET", path, 1);
    errno = 0;
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    CHECK(!xch && errno == ENOENT, "xc_interface_open with no server: %p errno %d", (void *)xch, errno);
    xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
    CHECK(!fm && errno == ENOENT, "xenforeignmemory_open with no server");
    /* An event channel without a ring to bind: EINVAL, as Xen for a port not offered to us. */
    xenevtchn_handle *xce = xenevtchn_open(NULL, 0);
    CHECK(xce, "xenevtchn_open needs no server");
    CHECK(xenevtchn_bind_interdomain(xce, DOMID, 3) == -1 && errno == EINVAL, "bind without a ring");
    CHECK(xenevtchn_notify(xce, 5) == -1 && errno == EINVAL, "notify an unbound port");
    xenevtchn_close(xce);
    return failures;
}

/*
 * Every function of Debian's libxenctrl resolves (a client built for it loads), and one
 * vmisim does not serve fails as the library's own failures do: -1 or NULL with errno
 * ENOSYS, and it names itself on stderr.
 */
static int test_stubs(void)
{
    errno = 0;
    CHECK(xc_physinfo(NULL, NULL) == -1 && errno == ENOSYS, "xc_physinfo: -1 with ENOSYS (errno %d)", errno);
    errno = 0;
    CHECK(xc_cpupool_getinfo(NULL, 0) == NULL && errno == ENOSYS, "xc_cpupool_getinfo: NULL with ENOSYS");
    const xc_error *e = xc_get_last_error(NULL);
    CHECK(e && e->code == XC_ERROR_NONE, "xc_get_last_error is served, never NULL");
    CHECK(!strcmp(xc_error_code_to_desc(XC_OUT_OF_MEMORY), "Out of memory"), "xc_error_code_to_desc");
    return failures;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: xc_test VMISIM SCENARIO DIR events|killed|malformed|badpath|stubs\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *what = argv[4];
    int f = !strcmp(what, "events")      ? test_events(argv[1], argv[2], argv[3])
            : !strcmp(what, "killed")    ? test_killed(argv[1], argv[2], argv[3])
            : !strcmp(what, "malformed") ? test_malformed(argv[1], argv[2], argv[3])
            : !strcmp(what, "badpath")   ? test_badpath(argv[3])
            : !strcmp(what, "stubs")     ? test_stubs()
                                         : -1;
    if (f < 0) {
        fprintf(stderr, "unknown test %s\n", what);
        return 2;
    }
    printf("%s: %s\n", what, f ? "FAILED" : "ok");
    return f ? 1 : 0;
}
