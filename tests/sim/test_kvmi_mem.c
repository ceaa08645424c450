/*
 * tests/sim/test_kvmi_mem.c — KVM_HC_MEM_MAP / KVM_HC_MEM_UNMAP (sim/kvmi_mem.c): an
 * introspector domain maps a page of the introspected domain with a token from
 * KVMI_GET_MAP_TOKEN; both guests then see each other's writes through the one page; unmap
 * gives the introspector a fresh page; bad tokens, addresses and pointers get -KVM_EFAULT; a
 * mapped page is pinned (no paging, no sharing); destroying either domain undoes the maps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "hypercall_internal.h"
#include "sim_fixture.h"

#define T_GFN (FIX_DATA_GFN + 5)          /* the introspected page */
#define T_GLA (FIX_DATA_GLA + 0x5000)
#define TOKEN_GLA FIX_DATA_GLA            /* the token, in the introspector's first data page */
#define MAP_GFN (FIX_DATA_GFN + 8)        /* the introspector's gfn that becomes the alias */
#define MAP_GLA 0x608000

/* The introspected guest (rbx = T_GLA): writes 0xbeef at +0x10, waits for 0x77 at +8, reads it. */
static const uint8_t target_code[] = {
    0x48, 0xc7, 0x43, 0x10, 0xef, 0xbe, 0x00, 0x00, /* mov qword [rbx+0x10], 0xbeef */
    0x48, 0x83, 0x7b, 0x08, 0x77,                   /* 1: cmp qword [rbx+8], 0x77 */
    0x75, 0xf9,                                     /* jne 1b */
    0x48, 0x8b, 0x43, 0x08,                         /* mov rax, [rbx+8] */
    0xf4,                                           /* hlt */
};

/* The introspector: KVM_HC_MEM_MAP (rax 32, rbx token, rcx gpa, rdx map gpa), then through
 * the alias: rsi = [+0], rdi = [+0x10], [+8] = 0x77.  At +0x40: KVM_HC_MEM_UNMAP (rax 33,
 * rbx map gpa), r9 = result, rsi = [+0]. */
static const uint8_t intro_code[0x80] = {
    0x0f, 0x01, 0xc1,                                           /* vmcall */
    0x49, 0x89, 0xc0,                                           /* mov r8, rax */
    0x48, 0x8b, 0x34, 0x25, 0x00, 0x80, 0x60, 0x00,             /* mov rsi, [0x608000] */
    0x48, 0x8b, 0x3c, 0x25, 0x10, 0x80, 0x60, 0x00,             /* mov rdi, [0x608010] */
    0x48, 0xc7, 0x04, 0x25, 0x08, 0x80, 0x60, 0x00, 0x77, 0x00, 0x00, 0x00, /* mov qword [0x608008], 0x77 */
    0xf4,                                                       /* hlt */
    [0x40] = 0x0f, 0x01, 0xc1,                                  /* vmcall */
    0x49, 0x89, 0xc1,                                           /* mov r9, rax */
    0x48, 0x8b, 0x34, 0x25, 0x00, 0x80, 0x60, 0x00,             /* mov rsi, [0x608000] */
    0xf4,                                                       /* hlt */
};

struct pair {
    struct sim_domain *t, *in;
    struct sim_map_token token;
};

static void make(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    struct sim_config tc = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = 1};
    p->t = fixture_domain_cfg(&tc, target_code, sizeof(target_code), T_GLA, 8);
    struct sim_config ic = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = 1,
                            .hypercalls = SIM_HYPERCALL_KVM};
    p->in = fixture_domain_cfg(&ic, intro_code, sizeof(intro_code), TOKEN_GLA, 16);
    uint64_t pattern = 0x1122334455667788ull;
    SETUP(sim_mem_write(p->t, T_GFN << 12, &pattern, 8));
    uint64_t own = 0xaaaaaaaaaaaaaaaaull;
    SETUP(sim_mem_write(p->in, MAP_GFN << 12, &own, 8));
    cr_assert_eq(sim_kvmi_get_map_token(p->t, p->in, &p->token), 0, "%s", sim_error(p->t));
    SETUP(sim_mem_write(p->in, FIX_DATA_GFN << 12, &p->token, sizeof(p->token)));
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(p->in, 0, &r));
    r.rax = 32;
    r.rbx = TOKEN_GLA;
    r.rcx = T_GFN << 12;
    r.rdx = MAP_GFN << 12;
    SETUP(sim_vcpu_set_regs(p->in, 0, &r));
}

static void unmake(struct pair *p)
{
    sim_domain_destroy(p->in);
    sim_domain_destroy(p->t);
}

static struct cpu_regs regs(struct sim_domain *d)
{
    struct cpu_regs r;
    cr_assert_eq(sim_vcpu_get_regs(d, 0, &r), 0);
    return r;
}

static uint64_t qword(struct sim_domain *d, uint64_t gpa)
{
    uint64_t q = 0;
    cr_assert_eq(sim_mem_read(d, gpa, &q, 8), 0, "%s", sim_error(d));
    return q;
}

/* Proves: "MEM_MAP aliasing both ways": after the map, the introspector's guest reads what the
 * introspected guest wrote, and the introspected guest sees (and was waiting for) what the
 * introspector's guest wrote: one page behind two gpas of two domains.  The introspector's own
 * page at that gpa is left alone. */
Test(sim_kvmi_mem, map_aliases_both_ways)
{
    struct pair p;
    make(&p);
    struct sim_stop stop;
    cr_assert_eq(sim_run(p.t, 1000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_LIMIT, "the target spins, waiting: %s", stop.why);
    stop = fixture_run_until_idle(p.in);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    struct cpu_regs r = regs(p.in);
    cr_expect_eq(r.r8, 0, "KVM_HC_MEM_MAP returned %lld", (long long)r.r8);
    cr_expect_eq(r.rsi, 0x1122334455667788ull, "the introspector reads the target's page");
    cr_expect_eq(r.rdi, 0xbeef, "and what the target's guest wrote");
    cr_expect_eq(qword(p.t, (T_GFN << 12) + 8), 0x77, "its write is in the target's page");
    cr_expect_eq(sim_kvmi_nr_mapped(p.in), 1);
    uint64_t own;
    memcpy(&own, p.in->ram + (MAP_GFN << 12), 8);
    cr_expect_eq(own, 0xaaaaaaaaaaaaaaaaull, "the introspector's own page untouched");
    stop = fixture_run_until_idle(p.t);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(regs(p.t).rax, 0x77, "the target's guest saw the introspector's write");
    unmake(&p);
}

/* Proves: KVM_HC_MEM_UNMAP returns 0 and gives the introspector's gpa a fresh (zeroed) page;
 * the target's page keeps its bytes and is no longer pinned; unmapping again is an error. */
Test(sim_kvmi_mem, unmap_gives_fresh_page)
{
    struct pair p;
    make(&p);
    struct sim_stop stop = fixture_run_until_idle(p.in);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_assert_eq(regs(p.in).r8, 0, "setup: mapped");
    SETUP(sim_paging_enable(p.t, 7, &(struct ring_fds){0}) < 0 ? -1 : 0);
    cr_expect_eq(sim_paging_nominate(p.t, T_GFN), -EBUSY, "a mapped page is pinned");
    struct cpu_regs r = regs(p.in);
    r.rip = 0x400040;
    r.rax = 33;
    r.rbx = MAP_GFN << 12;
    SETUP(sim_vcpu_set_regs(p.in, 0, &r));
    p.in->vcpus[0].state = SIM_VCPU_RUNNABLE; /* past its HLT: the test's second program */
    stop = fixture_run_until_idle(p.in);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    r = regs(p.in);
    cr_expect_eq(r.r9, 0, "KVM_HC_MEM_UNMAP returned %lld", (long long)r.r9);
    cr_expect_eq(r.rsi, 0, "a fresh page");
    cr_expect_eq(sim_kvmi_nr_mapped(p.in), 0);
    cr_expect_eq(qword(p.t, T_GFN << 12), 0x1122334455667788ull, "the target keeps its bytes");
    cr_expect_eq(sim_paging_nominate(p.t, T_GFN), 0, "no longer pinned: %s", sim_error(p.t));
    uint64_t args[HCALL_MAX_ARGS] = {MAP_GFN << 12};
    cr_expect_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 33, args), -EFAULT, "nothing mapped there");
    unmake(&p);
}

/* Proves: the guest gets -KVM_EFAULT (-14) for an unknown token, a token pointer it cannot
 * read, a gpa beyond the target's RAM and a map gpa beyond its own; nothing gets mapped. */
Test(sim_kvmi_mem, bad_arguments_efault)
{
    struct pair p;
    make(&p);
    uint64_t ok[HCALL_MAX_ARGS] = {TOKEN_GLA, T_GFN << 12, MAP_GFN << 12};
    uint64_t a[HCALL_MAX_ARGS];
    memcpy(a, ok, sizeof(a));
    a[0] = 0x7fff0000; /* not mapped in the introspector's page tables */
    cr_expect_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, a), -EFAULT, "token pointer");
    memcpy(a, ok, sizeof(a));
    a[1] = FIX_RAM;
    cr_expect_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, a), -EFAULT, "gpa beyond");
    memcpy(a, ok, sizeof(a));
    a[2] = FIX_RAM + 0x1000;
    cr_expect_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, a), -EFAULT, "map gpa beyond");
    struct sim_map_token bad = p.token;
    bad.token[2] ^= 1;
    SETUP(sim_mem_write(p.in, FIX_DATA_GFN << 12, &bad, sizeof(bad)));
    cr_expect_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, ok), -EFAULT, "unknown token");
    cr_expect_eq(sim_kvmi_nr_mapped(p.in), 0, "nothing mapped");
    SETUP(sim_mem_write(p.in, FIX_DATA_GFN << 12, &p.token, sizeof(p.token)));
    cr_expect_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, ok), 0, "the good call maps");
    cr_expect_eq(sim_kvmi_nr_mapped(p.in), 1);
    /* A new token replaces the old one. */
    struct sim_map_token again;
    cr_assert_eq(sim_kvmi_get_map_token(p.t, p.in, &again), 0);
    cr_expect(memcmp(&again, &p.token, sizeof(again)) != 0);
    cr_expect_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, ok), -EFAULT, "the old token is void");
    unmake(&p);
}

/* Proves: KVMI_GET_MAP_TOKEN's refusals: itself, an introspector without the KVM ABI, a second
 * introspector; and tokens are the same in every run (determinism). */
Test(sim_kvmi_mem, token_rules)
{
    struct pair p;
    make(&p);
    struct sim_map_token tk;
    cr_expect_eq(sim_kvmi_get_map_token(p.t, p.t, &tk), -EINVAL);
    struct sim_config xc = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = 1,
                            .hypercalls = SIM_HYPERCALL_XEN};
    struct sim_domain *x = NULL;
    SETUP(sim_domain_create(&x, &xc));
    cr_expect_eq(sim_kvmi_get_map_token(p.t, x, &tk), -EINVAL, "Xen ABI introspector");
    struct sim_config kc = xc;
    kc.hypercalls = SIM_HYPERCALL_KVM;
    struct sim_domain *k = NULL;
    SETUP(sim_domain_create(&k, &kc));
    cr_expect_eq(sim_kvmi_get_map_token(p.t, k, &tk), -EBUSY, "one introspector at a time");
    struct pair q;
    make(&q);
    cr_expect(memcmp(&q.token, &p.token, sizeof(tk)) == 0, "the same token in the same run order");
    unmake(&q);
    sim_domain_destroy(k);
    sim_domain_destroy(x);
    unmake(&p);
}

/* Proves: destroying the target gives the introspector's alias a fresh page (no dangling
 * frame); destroying the introspector unpins the target's page. */
Test(sim_kvmi_mem, destroy_undoes_maps)
{
    struct pair p;
    make(&p);
    uint64_t ok[HCALL_MAX_ARGS] = {TOKEN_GLA, T_GFN << 12, MAP_GFN << 12};
    cr_assert_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, ok), 0);
    sim_domain_destroy(p.t);
    p.t = NULL;
    cr_expect_eq(sim_kvmi_nr_mapped(p.in), 0);
    cr_expect_eq(qword(p.in, MAP_GFN << 12), 0, "a fresh page");
    sim_domain_destroy(p.in);

    make(&p);
    cr_assert_eq(hcall_invoke(p.in, 0, SIM_HYPERCALL_KVM, true, 32, ok), 0);
    SETUP(sim_sharing_control(p.t, true));
    uint64_t h;
    cr_expect_eq(sim_sharing_nominate(p.t, T_GFN, &h), -E2BIG, "pinned");
    sim_domain_destroy(p.in);
    p.in = NULL;
    cr_expect_eq(sim_sharing_nominate(p.t, T_GFN, &h), 0, "unpinned: %s", sim_error(p.t));
    sim_domain_destroy(p.t);
}
