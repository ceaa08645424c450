/* tests/cpu/test_regs.c — the register block (cpu_get_regs / cpu_set_regs). */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

/* Proves: segment attributes behave as the hardware's hidden descriptor cache: rewriting the
 * GDT entry of the loaded DS selector in memory does not change what cpu_get_regs reports; a
 * new selector, or a new GDTR, makes the descriptor be read again. */
Test(regs, descriptor_cache, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    struct cpu_regs r;
    cr_assert_eq(cpu_get_regs(H.c, &r), 0);
    cr_assert_eq(r.ds.selector, 0x10, "setup: ds %x", r.ds.selector);
    cr_assert_eq(r.ds.attr, 0x92, "setup: ds attr %x", r.ds.attr);
    uint64_t gdt = r.gdtr_base;
    /* The entry in memory now says: accessed, DPL 3, base 0x12345678. */
    uint8_t *e = H.g.ram + gdt + 0x10;
    e[5] = 0xf3;
    e[2] = 0x78;
    e[3] = 0x56;
    e[4] = 0x34;
    e[7] = 0x12;
    cr_assert_eq(cpu_get_regs(H.c, &r), 0);
    cr_assert_eq(r.ds.attr, 0x92, "the loaded descriptor is kept, attr %x", r.ds.attr);
    cr_assert_eq(r.ds.base, 0);
    cr_assert_eq(r.es.attr, 0x92);
    /* Reload DS (null, then 0x10 again): the entry is read again. */
    r.ds.selector = 0;
    cr_assert_eq(cpu_set_regs(H.c, &r), 0);
    cr_assert_eq(cpu_get_regs(H.c, &r), 0);
    cr_assert_eq(r.ds.attr, 0);
    r.ds.selector = 0x10;
    cr_assert_eq(cpu_set_regs(H.c, &r), 0);
    cr_assert_eq(cpu_get_regs(H.c, &r), 0);
    cr_assert_eq(r.ds.attr, 0xf3, "attr %x", r.ds.attr);
    cr_assert_eq(r.ds.base, 0x12345678);
    cr_assert_eq(r.es.attr, 0x92, "ES not reloaded");
    /* A new GDTR (a copy of the table elsewhere) is a new descriptor for every segment. */
    memcpy(H.g.ram + 0x2800, H.g.ram + gdt, 0x18);
    H.g.ram[0x2800 + 0x10 + 5] = 0x93;
    r.gdtr_base = 0x2800;
    cr_assert_eq(cpu_set_regs(H.c, &r), 0);
    cr_assert_eq(cpu_get_regs(H.c, &r), 0);
    cr_assert_eq(r.ss.attr, 0x93, "attr %x", r.ss.attr);
    cr_assert_eq(r.es.attr, 0x93);
    cr_assert_eq(r.cs.attr, 0x209a);
}

static void roundtrip(enum cpu_mode mode, const char *prog)
{
    SETUP(&H, mode, prog, 0);
    bool lm = mode == CPU_MODE_LONG;
    uint64_t m = lm ? ~0ull : 0xffffffffull;
    struct cpu_regs r;
    cr_assert_eq(cpu_get_regs(H.c, &r), 0);
    uint64_t *g = &r.rax;
    for (unsigned i = 0; i < 16; i++)
        g[i] = (0x1111111111111111ull * (i + 1)) & m;
    if (!lm)
        memset(&r.r8, 0, 8 * 8);
    r.rsp = 0x810000;
    r.rflags = 0x2 | 0x1 | 0x40 | 0x200;
    r.star = 0x0023001000000000ull;
    r.lstar = lm ? 0xffffffff81000000ull : 0x81000000ull;
    r.cstar = 0x1234;
    r.sfmask = 0x4700;
    r.shadow_gs = lm ? 0xffff888000001000ull : 0;
    r.sysenter_cs = 0x10;
    r.sysenter_esp = 0x5000;
    r.sysenter_eip = 0x6000;
    if (lm) /* Unicorn's 32-bit mode cannot write FS_BASE (nor has GS_BASE) */
        r.fs_base = 0x7000;
    r.gs_base = lm ? 0x8000 : 0;
    r.cr2 = 0xdead000;
    r.dr7 = 0x400;
    r.idtr_limit = 0x1ff;
    struct cpu_regs want = r;
    cr_assert_eq(cpu_set_regs(H.c, &r), 0);
    struct cpu_regs got;
    cr_assert_eq(cpu_get_regs(H.c, &got), 0);
    for (unsigned i = 0; i < 16; i++)
        cr_assert_eq((&got.rax)[i], (&want.rax)[i], "gpr %u: %llx", i,
                     (unsigned long long)(&got.rax)[i]);
    cr_assert_eq(got.rip, want.rip);
    cr_assert_eq(got.rflags, want.rflags, "rflags %llx", (unsigned long long)got.rflags);
    cr_assert_eq(got.cr0, want.cr0);
    cr_assert_eq(got.cr2, want.cr2);
    cr_assert_eq(got.cr3, want.cr3);
    cr_assert_eq(got.cr4, want.cr4);
    cr_assert_eq(got.dr7, want.dr7);
    cr_assert_eq(got.efer, want.efer);
    cr_assert_eq(got.star, want.star);
    cr_assert_eq(got.lstar, want.lstar);
    cr_assert_eq(got.cstar, want.cstar);
    cr_assert_eq(got.sfmask, want.sfmask);
    cr_assert_eq(got.shadow_gs, want.shadow_gs);
    cr_assert_eq(got.sysenter_cs, want.sysenter_cs);
    cr_assert_eq(got.sysenter_esp, want.sysenter_esp);
    cr_assert_eq(got.sysenter_eip, want.sysenter_eip);
    cr_assert_eq(got.fs_base, want.fs_base);
    cr_assert_eq(got.gs_base, want.gs_base);
    cr_assert_eq(got.gdtr_base, want.gdtr_base);
    cr_assert_eq(got.gdtr_limit, want.gdtr_limit);
    cr_assert_eq(got.idtr_base, want.idtr_base);
    cr_assert_eq(got.idtr_limit, want.idtr_limit);
    cr_assert_eq(got.cs.selector, want.cs.selector);
    cr_assert_eq(got.cs.attr, want.cs.attr);
    cr_assert_eq(got.ss.selector, want.ss.selector);
    cr_assert_eq(got.ds.attr, want.ds.attr);
}

/* Proves: what cpu_set_regs writes, cpu_get_regs reads back (GPRs, flags, control registers,
 * MSRs, bases, descriptor tables, selectors and attributes), in long mode. */
Test(regs, roundtrip_long, .fini = fini)
{
    roundtrip(CPU_MODE_LONG, "access64");
}

/* Proves: the same in 32-bit PAE mode (32-bit registers; R8-R15 and GS_BASE read as 0, FS_BASE
 * is not writable there). */
Test(regs, roundtrip_pae32, .fini = fini)
{
    roundtrip(CPU_MODE_PAE32, "pae32");
}
