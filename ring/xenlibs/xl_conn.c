/* ring/xenlibs/xl_conn.c — the client side of the control protocol (xl_conn.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "xl_conn.h"

const char *xl_socket_path(void)
{
    const char *p = getenv("VMISIM_SOCKET");
    return p && *p ? p : XENCTL_DEFAULT_SOCKET;
}

int xl_connect(struct xl_conn *c, const char *who)
{
    const char *path = xl_socket_path();
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "vmisim: %s: the socket path %s (VMISIM_SOCKET) is too long\n", who, path);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    memcpy(c->path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        fprintf(stderr, "vmisim: %s: cannot connect to vmisim serve at %s: %s (start `vmisim serve SCENARIO "
                "--socket PATH` and set VMISIM_SOCKET=PATH)\n", who, path, strerror(err));
        close(fd);
        return -err;
    }
    c->fd = fd;
    return 0;
}

void xl_close(struct xl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    pthread_mutex_destroy(&c->lock);
}

static int lost(struct xl_conn *c)
{
    if (!c->lost_said) {
        c->lost_said = 1;
        fprintf(stderr, "vmisim: the connection to vmisim serve at %s was lost (the server stopped?)\n", c->path);
    }
    return -EIO;
}

static int read_full(int fd, void *buf, size_t len, int *fds, unsigned *nfds, unsigned max_fds)
{
    size_t got = 0;
    while (got < len) {
        char ctl[CMSG_SPACE(4 * sizeof(int))];
        struct iovec iov = {(char *)buf + got, len - got};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
                    int f;
                    memcpy(&f, CMSG_DATA(cm) + k * sizeof(int), sizeof(f));
                    if (fds && *nfds < max_fds)
                        fds[(*nfds)++] = f;
                    else
                        close(f);
                }
        if (n <= 0)
            return -EIO;
        got += (size_t)n;
    }
    return 0;
}

int xl_call(struct xl_conn *c, uint32_t domid, uint16_t op, const void *req, uint32_t len, void *rsp,
            uint32_t rsp_len, uint32_t *got, int *fds, unsigned *nfds)
{
    unsigned max_fds = nfds ? *nfds : 0, dummy = 0;
    if (!nfds)
        nfds = &dummy;
    *nfds = 0;
    if (got)
        *got = 0;
    if (c->fd < 0)
        return lost(c);
    pthread_mutex_lock(&c->lock);
    struct xenctl_hdr h = {.magic = XENCTL_MAGIC, .version = XENCTL_VERSION, .op = op, .domid = domid,
                           .seq = ++c->seq, .len = len};
    struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)req, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    size_t total = sizeof(h) + len, sent = 0;
    int rc = 0;
    while (sent < total) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -EIO;
            break;
        }
        sent += (size_t)n;
        xenctl_iov_advance(&msg, (size_t)n);
    }
    struct xenctl_hdr r;
    if (rc == 0 && read_full(c->fd, &r, sizeof(r), fds, nfds, max_fds) < 0)
        rc = -EIO;
    if (rc == 0 && (r.magic != XENCTL_MAGIC || r.seq != h.seq || r.op != op || r.len > XENCTL_MAX_PAYLOAD))
        rc = -EIO;
    if (rc == 0) {
        uint8_t *buf = malloc(r.len ? r.len : 1);
        if (!buf || read_full(c->fd, buf, r.len, fds, nfds, max_fds) < 0)
            rc = -EIO;
        else {
            uint32_t n = r.len < rsp_len ? r.len : rsp_len;
            if (n)
                memcpy(rsp, buf, n);
            if (got)
                *got = n;
            rc = r.rc > 0 ? -EIO : r.rc;
        }
        free(buf);
    }
    if (rc == -EIO && c->fd >= 0) {
        /* The stream is out of step or gone: no later call can be trusted on it. */
        close(c->fd);
        c->fd = -1;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc == -EIO) {
        for (unsigned i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        return lost(c);
    }
    return rc;
}

void *xl_map(struct xl_conn *c, uint32_t dom, int prot, size_t pages, const uint64_t *gfns, int *err)
{
    if (pages == 0 || pages > SIZE_MAX / 4096) {
        errno = EINVAL;
        return NULL;
    }
    uint8_t *base = mmap(NULL, pages * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    size_t req_len = sizeof(struct xenctl_map) + XENCTL_MAX_MAP_PAGES * sizeof(uint64_t);
    uint8_t *req = malloc(req_len);
    int64_t *offs = malloc(XENCTL_MAX_MAP_PAGES * sizeof(int64_t));
    int fail = 0;
    if (!req || !offs)
        fail = ENOMEM;
    for (size_t done = 0; !fail && done < pages;) {
        uint32_t nr = pages - done > XENCTL_MAX_MAP_PAGES ? XENCTL_MAX_MAP_PAGES : (uint32_t)(pages - done);
        struct xenctl_map m = {.nr = nr, .prot = (uint32_t)prot};
        memcpy(req, &m, sizeof(m));
        memcpy(req + sizeof(m), gfns + done, nr * sizeof(uint64_t));
        int fd = -1;
        unsigned nfds = 1;
        uint32_t got = 0;
        int rc = xl_call(c, dom, XENCTL_OP_FOREIGN_MAP, req, (uint32_t)(sizeof(m) + nr * sizeof(uint64_t)), offs,
                         nr * sizeof(int64_t), &got, &fd, &nfds);
        if (rc == 0 && (nfds != 1 || got != nr * sizeof(int64_t)))
            rc = -EIO;
        if (rc < 0) {
            if (nfds)
                close(fd);
            fail = -rc;
            break;
        }
        for (uint32_t i = 0; i < nr; i++) {
            int e = 0;
            if (offs[i] < 0)
                e = (int)-offs[i];
            else if (mmap(base + (done + i) * 4096, 4096, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)offs[i])
                     == MAP_FAILED)
                e = errno;
            if (err)
                err[done + i] = -e;
            else if (e && !fail)
                fail = e;
        }
        close(fd);
        done += nr;
    }
    free(req);
    free(offs);
    if (fail) {
        munmap(base, pages * 4096);
        errno = fail;
        return NULL;
    }
    return base;
}
