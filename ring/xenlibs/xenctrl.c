/*
 * ring/xenlibs/xenctrl.c — the drop-in libxenctrl.so.4.17.
 *
 * Each libxc call becomes one control message to `vmisim serve`
 * (ring/xenctl_abi.h), which answers with the sim.h call modelling Xen's
 * hypercall.  Return conventions are libxc's (tools/libs/ctrl): 0 or -1 with
 * errno set to Xen's error; NULL with errno for pointers;
 * xc_domain_getinfo returns the number of domains filled.  Prototypes come
 * from Debian's <xenctrl.h>, so the compiler checks every signature.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XC_WANT_COMPAT_DEVICEMODEL_API 1
#define XC_WANT_COMPAT_MAP_FOREIGN_API 1
#include <xenctrl.h>

#include "xenlibs.h"
#include "xl_conn.h"

struct xc_interface_core {
    struct xl_conn conn;
};

static int call(xc_interface *xch, uint32_t domid, uint16_t op, const void *req, uint32_t len, void *rsp,
                uint32_t rsp_len)
{
    if (!xch) {
        errno = EINVAL;
        return -1;
    }
    return xl_ret(xl_call(&xch->conn, domid, op, req, len, rsp, rsp_len, NULL, NULL, NULL));
}

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger, unsigned open_flags)
{
    (void)logger, (void)dombuild_logger, (void)open_flags;
    xc_interface *xch = calloc(1, sizeof(*xch));
    if (!xch)
        return NULL;
    int rc = xl_connect(&xch->conn, "xc_interface_open");
    if (rc < 0) {
        free(xch);
        errno = -rc;
        return NULL;
    }
    return xch;
}

int xc_interface_close(xc_interface *xch)
{
    if (!xch)
        return 0;
    xl_close(&xch->conn);
    free(xch);
    return 0;
}

/* ---- Domains ------------------------------------------------------------------- */

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms, xc_dominfo_t *info)
{
    struct xenctl_info i;
    if (max_doms == 0)
        return 0;
    /*
     * XEN_DOMCTL_getdomaininfo gives the first domain with an id >= first_domid.  The
     * socket serves one domain; ask for it by the id it answers to (ESRCH: none).
     */
    uint32_t domid = first_domid;
    int rc = xl_call(&xch->conn, domid, XENCTL_OP_GETINFO, NULL, 0, &i, sizeof(i), NULL, NULL, NULL);
    if (rc == -ESRCH && first_domid == 0) {
        /* first_domid 0 (dom0) is not served: callers listing domains still find ours. */
        for (domid = 1; domid < 64 && rc == -ESRCH; domid++)
            rc = xl_call(&xch->conn, domid, XENCTL_OP_GETINFO, NULL, 0, &i, sizeof(i), NULL, NULL, NULL);
    }
    if (rc < 0)
        return xl_ret(rc);
    memset(info, 0, sizeof(*info));
    info->domid = i.domid;
    info->crashed = !!(i.flags & XENCTL_INFO_CRASHED);
    info->shutdown = !!(i.flags & (XENCTL_INFO_SHUTDOWN | XENCTL_INFO_CRASHED));
    info->shutdown_reason = info->crashed ? SHUTDOWN_crash : i.shutdown_reason;
    info->paused = !!(i.flags & XENCTL_INFO_PAUSED);
    info->blocked = !!(i.flags & XENCTL_INFO_BLOCKED);
    info->running = !!(i.flags & XENCTL_INFO_RUNNING);
    info->hvm = !!(i.flags & XENCTL_INFO_HVM);
    info->hap = !!(i.flags & XENCTL_INFO_HAP);
    info->nr_pages = i.tot_pages;
    info->max_memkb = i.max_pages * 4;
    info->nr_online_vcpus = i.nr_online_vcpus;
    info->max_vcpu_id = i.nr_vcpus ? i.nr_vcpus - 1 : 0;
    info->cpu_time = i.cpu_insns; /* simulated time: instructions, not nanoseconds */
    info->gpaddr_bits = 52;
    return 1;
}

int xc_domain_pause(xc_interface *xch, uint32_t domid)
{
    return call(xch, domid, XENCTL_OP_PAUSE, NULL, 0, NULL, 0);
}

int xc_domain_unpause(xc_interface *xch, uint32_t domid)
{
    return call(xch, domid, XENCTL_OP_UNPAUSE, NULL, 0, NULL, 0);
}

int xc_domain_maximum_gpfn(xc_interface *xch, uint32_t domid, xen_pfn_t *gpfns)
{
    struct xenctl_u64 v = {0};
    int rc = call(xch, domid, XENCTL_OP_MAX_GPFN, NULL, 0, &v, sizeof(v));
    if (rc == 0)
        *gpfns = v.value;
    return rc;
}

int xc_domain_set_access_required(xc_interface *xch, uint32_t domid, unsigned int required)
{
    struct xenctl_u32 v = {.value = required};
    return call(xch, domid, XENCTL_OP_SET_ACCESS_REQUIRED, &v, sizeof(v), NULL, 0);
}

int xc_domain_debug_control(xc_interface *xch, uint32_t domid, uint32_t sop, uint32_t vcpu)
{
    struct xenctl_debug v = {.op = sop, .vcpu = vcpu};
    return call(xch, domid, XENCTL_OP_DEBUG_CONTROL, &v, sizeof(v), NULL, 0);
}

int xc_vcpu_getcontext(xc_interface *xch, uint32_t domid, uint32_t vcpu, vcpu_guest_context_any_t *ctxt)
{
    struct xenctl_u32 v = {.value = vcpu};
    struct xenctl_vcpu_regs r;
    int rc = call(xch, domid, XENCTL_OP_VCPU_GETCONTEXT, &v, sizeof(v), &r, sizeof(r));
    if (rc < 0)
        return rc;
    vcpu_guest_context_x86_64_t *c = &ctxt->x64;
    memset(c, 0, sizeof(*c));
    c->flags = VGCF_online;
    c->user_regs.rax = r.rax, c->user_regs.rbx = r.rbx, c->user_regs.rcx = r.rcx, c->user_regs.rdx = r.rdx;
    c->user_regs.rsi = r.rsi, c->user_regs.rdi = r.rdi, c->user_regs.rbp = r.rbp, c->user_regs.rsp = r.rsp;
    c->user_regs.r8 = r.r8, c->user_regs.r9 = r.r9, c->user_regs.r10 = r.r10, c->user_regs.r11 = r.r11;
    c->user_regs.r12 = r.r12, c->user_regs.r13 = r.r13, c->user_regs.r14 = r.r14, c->user_regs.r15 = r.r15;
    c->user_regs.rip = r.rip, c->user_regs.rflags = r.rflags;
    c->user_regs.cs = r.cs, c->user_regs.ss = r.ss, c->user_regs.ds = r.ds;
    c->user_regs.es = r.es, c->user_regs.fs = r.fs, c->user_regs.gs = r.gs;
    c->ctrlreg[0] = r.cr0, c->ctrlreg[2] = r.cr2, c->ctrlreg[3] = r.cr3, c->ctrlreg[4] = r.cr4;
    c->debugreg[7] = r.dr7;
    c->fs_base = r.fs_base, c->gs_base_kernel = r.gs_base, c->gs_base_user = r.shadow_gs;
    return 0;
}

int xc_vcpu_setcontext(xc_interface *xch, uint32_t domid, uint32_t vcpu, vcpu_guest_context_any_t *ctxt)
{
    const vcpu_guest_context_x86_64_t *c = &ctxt->x64;
    struct xenctl_vcpu_regs r = {.vcpu = vcpu};
    r.rax = c->user_regs.rax, r.rbx = c->user_regs.rbx, r.rcx = c->user_regs.rcx, r.rdx = c->user_regs.rdx;
    r.rsi = c->user_regs.rsi, r.rdi = c->user_regs.rdi, r.rbp = c->user_regs.rbp, r.rsp = c->user_regs.rsp;
    r.r8 = c->user_regs.r8, r.r9 = c->user_regs.r9, r.r10 = c->user_regs.r10, r.r11 = c->user_regs.r11;
    r.r12 = c->user_regs.r12, r.r13 = c->user_regs.r13, r.r14 = c->user_regs.r14, r.r15 = c->user_regs.r15;
    r.rip = c->user_regs.rip, r.rflags = c->user_regs.rflags;
    r.cr0 = c->ctrlreg[0], r.cr2 = c->ctrlreg[2], r.cr3 = c->ctrlreg[3], r.cr4 = c->ctrlreg[4];
    r.dr7 = c->debugreg[7];
    r.fs_base = c->fs_base, r.gs_base = c->gs_base_kernel, r.shadow_gs = c->gs_base_user;
    return call(xch, domid, XENCTL_OP_VCPU_SETCONTEXT, &r, sizeof(r), NULL, 0);
}

/* ---- mem_access ---------------------------------------------------------------- */

int xc_set_mem_access(xc_interface *xch, uint32_t domain_id, xenmem_access_t access, uint64_t first_pfn,
                      uint32_t nr)
{
    struct xenctl_mem_access v = {.first_gfn = first_pfn, .nr = nr, .access = (uint32_t)access};
    return call(xch, domain_id, XENCTL_OP_SET_MEM_ACCESS, &v, sizeof(v), NULL, 0);
}

int xc_get_mem_access(xc_interface *xch, uint32_t domain_id, uint64_t pfn, xenmem_access_t *access)
{
    struct xenctl_mem_access v = {.first_gfn = pfn, .nr = 1};
    struct xenctl_u32 a = {0};
    int rc = call(xch, domain_id, XENCTL_OP_GET_MEM_ACCESS, &v, sizeof(v), &a, sizeof(a));
    if (rc == 0)
        *access = (xenmem_access_t)a.value;
    return rc;
}

int xc_hvm_inject_trap(xc_interface *xch, uint32_t domid, int vcpu, uint8_t vector, uint8_t type,
                       uint32_t error_code, uint8_t insn_len, uint64_t cr2)
{
    if (vcpu < 0) {
        errno = EINVAL;
        return -1;
    }
    struct xenctl_trap t = {.vcpu = (uint32_t)vcpu, .vector = vector, .type = type, .insn_len = insn_len,
                            .error_code = error_code, .cr2 = cr2};
    return call(xch, domid, XENCTL_OP_INJECT_TRAP, &t, sizeof(t), NULL, 0);
}

/* ---- The monitor ring ------------------------------------------------------------ */

/*
 * tools/libs/ctrl/xc_vm_event.c xc_vm_event_enable returns the ring page mapped
 * from the guest; here it is page 0 of the ring's memfd, mapped by this call
 * alone (4096 bytes, MAP_SHARED), since xen-access frees it with munmap.
 */
void *xc_monitor_enable(xc_interface *xch, uint32_t domain_id, uint32_t *port)
{
    if (!xch || !port) {
        errno = EINVAL;
        return NULL;
    }
    struct xenctl_u32 v = {.value = 7}; /* Xen 4.17: VM_EVENT_INTERFACE_VERSION 7 */
    struct xenctl_port p = {0};
    int fds[3] = {-1, -1, -1};
    unsigned nfds = 3;
    int rc = xl_call(&xch->conn, domain_id, XENCTL_OP_MONITOR_ENABLE, &v, sizeof(v), &p, sizeof(p), NULL, fds,
                     &nfds);
    if (rc == 0 && nfds != 3)
        rc = -EIO;
    void *ring = NULL;
    if (rc == 0) {
        ring = mmap(NULL, XC_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
        if (ring == MAP_FAILED) {
            ring = NULL;
            rc = -errno;
        }
    }
    if (rc == 0) {
        struct ring_fds rf = {.shm = fds[0], .to_client = fds[1], .to_simulator = fds[2]};
        if ((rc = vmisim_evtchn_register(domain_id, p.port, &rf)) == 0)
            nfds = 0; /* the registry owns them now */
    }
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    if (rc < 0) {
        if (ring) {
            munmap(ring, XC_PAGE_SIZE);
            /* The server made a ring we cannot use: take it down again. */
            xl_call(&xch->conn, domain_id, XENCTL_OP_MONITOR_DISABLE, NULL, 0, NULL, 0, NULL, NULL, NULL);
        }
        errno = -rc;
        return NULL;
    }
    *port = p.port;
    return ring;
}

int xc_monitor_disable(xc_interface *xch, uint32_t domain_id)
{
    int rc = call(xch, domain_id, XENCTL_OP_MONITOR_DISABLE, NULL, 0, NULL, 0);
    if (rc == 0)
        for (uint32_t port = 0; port < 64; port++)
            vmisim_evtchn_forget(domain_id, port);
    return rc;
}

int xc_monitor_resume(xc_interface *xch, uint32_t domain_id)
{
    (void)xch, (void)domain_id;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xc_monitor_get_capabilities(xc_interface *xch, uint32_t domain_id, uint32_t *capabilities)
{
    (void)domain_id;
    if (!xch || !capabilities) {
        errno = EINVAL;
        return -1;
    }
    /* What `vmisim serve` models: Xen's arch_monitor_get_capabilities on Intel with HAP, less VMEXIT. */
    *capabilities = (1u << XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG) | (1u << XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_CPUID)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_INGUEST_PAGEFAULT)
                    | (1u << XEN_DOMCTL_MONITOR_EVENT_EMUL_UNIMPLEMENTED);
    return 0;
}

static int monitor(xc_interface *xch, uint32_t domid, uint32_t event, uint32_t index, bool enable, bool sync,
                   uint64_t bitmask, bool onchangeonly, bool allow_userspace)
{
    struct xenctl_monitor m = {.event = event, .index = index, .enable = enable, .sync = sync,
                               .onchangeonly = onchangeonly, .allow_userspace = allow_userspace,
                               .bitmask = bitmask};
    return call(xch, domid, XENCTL_OP_MONITOR_CONTROL, &m, sizeof(m), NULL, 0);
}

int xc_monitor_write_ctrlreg(xc_interface *xch, uint32_t domain_id, uint16_t index, bool enable, bool sync,
                             uint64_t bitmask, bool onchangeonly)
{
    return monitor(xch, domain_id, XENCTL_MON_WRITE_CTRLREG, index, enable, sync, bitmask, onchangeonly, false);
}

int xc_monitor_mov_to_msr(xc_interface *xch, uint32_t domain_id, uint32_t msr, bool enable, bool onchangeonly)
{
    return monitor(xch, domain_id, XENCTL_MON_MOV_TO_MSR, msr, enable, true, 0, onchangeonly, false);
}

int xc_monitor_singlestep(xc_interface *xch, uint32_t domain_id, bool enable)
{
    return monitor(xch, domain_id, XENCTL_MON_SINGLESTEP, 0, enable, true, 0, false, false);
}

int xc_monitor_software_breakpoint(xc_interface *xch, uint32_t domain_id, bool enable)
{
    return monitor(xch, domain_id, XENCTL_MON_SOFTWARE_BREAKPOINT, 0, enable, true, 0, false, false);
}

int xc_monitor_descriptor_access(xc_interface *xch, uint32_t domain_id, bool enable)
{
    return monitor(xch, domain_id, XENCTL_MON_DESC_ACCESS, 0, enable, true, 0, false, false);
}

int xc_monitor_guest_request(xc_interface *xch, uint32_t domain_id, bool enable, bool sync, bool allow_userspace)
{
    return monitor(xch, domain_id, XENCTL_MON_GUEST_REQUEST, 0, enable, sync, 0, false, allow_userspace);
}

int xc_monitor_inguest_pagefault(xc_interface *xch, uint32_t domain_id, bool disable)
{
    /* The inverted name is Xen's: disable = 1 enables INGUEST_PAGEFAULT (the emulation). */
    return monitor(xch, domain_id, XENCTL_MON_INGUEST_PAGEFAULT, 0, disable, true, 0, false, false);
}

int xc_monitor_debug_exceptions(xc_interface *xch, uint32_t domain_id, bool enable, bool sync)
{
    return monitor(xch, domain_id, XENCTL_MON_DEBUG_EXCEPTIONS, 0, enable, sync, 0, false, false);
}

int xc_monitor_cpuid(xc_interface *xch, uint32_t domain_id, bool enable)
{
    return monitor(xch, domain_id, XENCTL_MON_CPUID, 0, enable, true, 0, false, false);
}

int xc_monitor_emul_unimplemented(xc_interface *xch, uint32_t domain_id, bool enable)
{
    return monitor(xch, domain_id, XENCTL_MON_EMUL_UNIMPLEMENTED, 0, enable, true, 0, false, false);
}

int xc_monitor_privileged_call(xc_interface *xch, uint32_t domain_id, bool enable)
{
    (void)xch, (void)domain_id, (void)enable;
    XL_NOT_IMPLEMENTED();
    return -1;
}

/* ---- altp2m ------------------------------------------------------------------------ */

static int altp2m(xc_interface *xch, uint32_t domid, struct xenctl_altp2m *a)
{
    return call(xch, domid, XENCTL_OP_ALTP2M, a, sizeof(*a), a, sizeof(*a));
}

int xc_altp2m_get_domain_state(xc_interface *handle, uint32_t dom, bool *state)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_GET_DOMAIN_STATE};
    int rc = altp2m(handle, dom, &a);
    if (rc == 0)
        *state = a.access != 0;
    return rc;
}

int xc_altp2m_set_domain_state(xc_interface *handle, uint32_t dom, bool state)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_SET_DOMAIN_STATE, .access = state};
    return altp2m(handle, dom, &a);
}

int xc_altp2m_create_view(xc_interface *handle, uint32_t domid, xenmem_access_t default_access, uint16_t *view_id)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_CREATE_VIEW, .access = (uint32_t)default_access};
    int rc = altp2m(handle, domid, &a);
    if (rc == 0)
        *view_id = a.view;
    return rc;
}

int xc_altp2m_destroy_view(xc_interface *handle, uint32_t domid, uint16_t view_id)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_DESTROY_VIEW, .view = view_id};
    return altp2m(handle, domid, &a);
}

int xc_altp2m_switch_to_view(xc_interface *handle, uint32_t domid, uint16_t view_id)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_SWITCH_TO_VIEW, .view = view_id};
    return altp2m(handle, domid, &a);
}

int xc_altp2m_set_mem_access(xc_interface *handle, uint32_t domid, uint16_t view_id, xen_pfn_t gfn,
                             xenmem_access_t access)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_SET_MEM_ACCESS, .view = view_id, .gfn = gfn,
                              .access = (uint32_t)access};
    return altp2m(handle, domid, &a);
}

int xc_altp2m_get_mem_access(xc_interface *handle, uint32_t domid, uint16_t view_id, xen_pfn_t gfn,
                             xenmem_access_t *access)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_GET_MEM_ACCESS, .view = view_id, .gfn = gfn};
    int rc = altp2m(handle, domid, &a);
    if (rc == 0)
        *access = (xenmem_access_t)a.access;
    return rc;
}

int xc_altp2m_change_gfn(xc_interface *handle, uint32_t domid, uint16_t view_id, xen_pfn_t old_gfn,
                         xen_pfn_t new_gfn)
{
    struct xenctl_altp2m a = {.op = XENCTL_ALTP2M_CHANGE_GFN, .view = view_id, .gfn = old_gfn, .gfn2 = new_gfn};
    return altp2m(handle, domid, &a);
}

int xc_altp2m_set_vcpu_enable_notify(xc_interface *handle, uint32_t domid, uint32_t vcpuid, xen_pfn_t gfn)
{
    (void)handle, (void)domid, (void)vcpuid, (void)gfn;
    /* #VE needs hardware vmisim does not model: Xen's answer without it. */
    errno = EOPNOTSUPP;
    return -1;
}

int xc_altp2m_set_vcpu_disable_notify(xc_interface *handle, uint32_t domid, uint32_t vcpuid)
{
    (void)handle, (void)domid, (void)vcpuid;
    errno = EOPNOTSUPP;
    return -1;
}

int xc_altp2m_set_mem_access_multi(xc_interface *handle, uint32_t domid, uint16_t view_id, uint8_t *access,
                                   uint64_t *gfns, uint32_t nr)
{
    for (uint32_t i = 0; i < nr; i++)
        if (xc_altp2m_set_mem_access(handle, domid, view_id, gfns[i], access[i]) < 0)
            return -1;
    return 0;
}

/* ---- Foreign mappings (the compat API; new code uses libxenforeignmemory) ------------- */

void *xc_map_foreign_pages(xc_interface *xch, uint32_t dom, int prot, const xen_pfn_t *arr, int num)
{
    if (!xch || num <= 0) {
        errno = EINVAL;
        return NULL;
    }
    return xl_map(&xch->conn, dom, prot, (size_t)num, arr, NULL);
}

void *xc_map_foreign_range(xc_interface *xch, uint32_t dom, int size, int prot, unsigned long mfn)
{
    if (size <= 0) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = ((size_t)size + XC_PAGE_SIZE - 1) / XC_PAGE_SIZE;
    xen_pfn_t *arr = malloc(n * sizeof(*arr));
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++)
        arr[i] = mfn + i;
    void *p = xc_map_foreign_pages(xch, dom, prot, arr, (int)n);
    int err = errno;
    free(arr);
    errno = err;
    return p;
}

void *xc_map_foreign_bulk(xc_interface *xch, uint32_t dom, int prot, const xen_pfn_t *arr, int *err,
                          unsigned int num)
{
    if (!xch || num == 0) {
        errno = EINVAL;
        return NULL;
    }
    return xl_map(&xch->conn, dom, prot, num, arr, err);
}

/* ---- Named in docs/xen-clients.md as not implemented ------------------------------------ */

int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain, unsigned int max_domains,
                          xc_domaininfo_t *info)
{
    (void)xch, (void)first_domain, (void)max_domains, (void)info;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xc_domain_hvm_getcontext(xc_interface *xch, uint32_t domid, uint8_t *ctxt_buf, uint32_t size)
{
    (void)xch, (void)domid, (void)ctxt_buf, (void)size;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xc_hvm_param_get(xc_interface *handle, uint32_t dom, uint32_t param, uint64_t *value)
{
    (void)handle, (void)dom, (void)param, (void)value;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xc_hvm_param_set(xc_interface *handle, uint32_t dom, uint32_t param, uint64_t value)
{
    (void)handle, (void)dom, (void)param, (void)value;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xc_domain_get_guest_width(xc_interface *xch, uint32_t domid, unsigned int *guest_width)
{
    (void)xch, (void)domid;
    *guest_width = 8; /* an HVM domain: 64-bit, as Xen reports for HVM */
    return 0;
}

/* ---- Errors (xc_private.c): vmisim's calls report through errno; the last error stays "none". */

const char *xc_error_code_to_desc(int code)
{
    switch (code) {
    case XC_ERROR_NONE: return "No error details";
    case XC_INTERNAL_ERROR: return "Internal error";
    case XC_INVALID_KERNEL: return "Invalid kernel";
    case XC_INVALID_PARAM: return "Invalid configuration";
    case XC_OUT_OF_MEMORY: return "Out of memory";
    default: return "Unknown error code";
    }
}

const xc_error *xc_get_last_error(xc_interface *xch)
{
    /* Clients print ->message unconditionally: never NULL. */
    static const xc_error none = {.code = XC_ERROR_NONE, .message = ""};
    (void)xch;
    return &none;
}

void xc_clear_last_error(xc_interface *xch)
{
    (void)xch;
}
