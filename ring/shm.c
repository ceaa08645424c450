/* ring/shm.c — the memfd that holds a ring and its doorbell state. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring_internal.h"

int ring_shm_create(int *fd_out)
{
    int fd = memfd_create("vmisim-vm_event-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, RING_ABI_SHM_SIZE) < 0
        || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

int ring_shm_map(int fd, void **out)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    /* A smaller object would SIGBUS us on access: refuse it here instead. */
    if (st.st_size < (off_t)RING_ABI_SHM_SIZE)
        return -EINVAL;
    void *p = mmap(NULL, RING_ABI_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *out = p;
    return 0;
}

void ring_shm_unmap(void *p)
{
    if (p)
        munmap(p, RING_ABI_SHM_SIZE);
}
