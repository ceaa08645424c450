/*
 * ring/xenlibs/xl_conn.h — the client side of the control protocol
 * (ring/xenctl_abi.h), compiled into each drop-in library.  Not exported:
 * the version scripts keep everything but Xen's own names local.
 */
#ifndef VMISIM_XL_CONN_H
#define VMISIM_XL_CONN_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "xenctl_abi.h"

struct xl_conn {
    int fd;
    uint32_t seq;
    char path[108];
    int lost_said;
    pthread_mutex_t lock; /* one call at a time: libxc handles may be shared by threads */
};

/* The socket path: $VMISIM_SOCKET, else XENCTL_DEFAULT_SOCKET. */
const char *xl_socket_path(void);
/* Connects; on failure prints one sentence naming the path (`who` is the caller) and returns -errno. */
int xl_connect(struct xl_conn *c, const char *who);
void xl_close(struct xl_conn *c);
/*
 * One call: sends op with `req` (len bytes) for domid, waits for the answer.
 * Copies at most rsp_len payload bytes into rsp (*got: how many came) and up
 * to *nfds descriptors into fds (*nfds: how many came; the caller owns them).
 * Returns the server's rc (0 or -errno), or -EIO when the connection failed.
 */
int xl_call(struct xl_conn *c, uint32_t domid, uint16_t op, const void *req, uint32_t len, void *rsp,
            uint32_t rsp_len, uint32_t *got, int *fds, unsigned *nfds);

/* -1 with errno = -rc for rc < 0, else rc: libxc's convention. */
static inline int xl_ret(int rc)
{
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return rc;
}

/* Said once per function: `vmisim: <function> is not implemented`, then ENOSYS. */
#define XL_NOT_IMPLEMENTED()                                                                        \
    do {                                                                                            \
        static int said_;                                                                           \
        if (!said_) {                                                                               \
            said_ = 1;                                                                              \
            fprintf(stderr, "vmisim: %s is not implemented\n", __func__);                          \
        }                                                                                           \
        errno = ENOSYS;                                                                             \
    } while (0)

/*
 * Maps `pages` guest frames (one FOREIGN_MAP call per XENCTL_MAX_MAP_PAGES)
 * contiguously, MAP_SHARED from the guest RAM memfd.  err (may be NULL): per
 * page 0 or -errno.  Returns the address, or NULL with errno: with err NULL,
 * any page that cannot be mapped fails the whole call (Xen's
 * xenforeignmemory_map); with err, such pages stay inaccessible.
 */
void *xl_map(struct xl_conn *c, uint32_t dom, int prot, size_t pages, const uint64_t *gfns, int *err);

#endif
