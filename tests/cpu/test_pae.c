/* tests/cpu/test_pae.c — 32-bit protected mode with PAE paging. */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

/* Proves: a 32-bit PAE guest writes through its tables, and its VMCALL is intercepted with the
 * 32-bit hypercall ABI registers (ebx, ecx). */
Test(pae, write_and_vmcall, .fini = fini)
{
    SETUP(&H, CPU_MODE_PAE32, "pae32", 1u << CPU_INSN_VMCALL);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_INSN);
    cr_assert_eq(ex.insn.kind, CPU_INSN_VMCALL);
    cr_assert_eq(cpu_gpr(H.c, 3), 24);
    cr_assert_eq(cpu_gpr(H.c, 1), 0);
    cr_assert_eq(cpu_gpr(H.c, 0) & 0xffffffff, 0xabcd);
    cr_assert_eq(guest_read64(&H.g, GUEST_DATA_GPA) & 0xffffffff, 0xabcd);
    cpu_insn_skip(H.c);
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
}

/* Proves: a 32-bit PAE write to a restricted frame is reported exactly, and a #PF is delivered
 * through the 8-byte-gate IDT with error code and CR2. */
Test(pae, access_and_pf, .fini = fini)
{
    SETUP(&H, CPU_MODE_PAE32, "pae32", 0);
    harness_restrict(&H, GUEST_DATA_GPA >> 12, CPU_R);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.gla, GUEST_DATA_GLA);
    cr_assert_eq(ex.access.size, 4);
    cr_assert_eq(ex.access.kind, CPU_W);
    harness_restrict(&H, GUEST_DATA_GPA >> 12, CPU_RWX);
    cpu_set_gpr(H.c, 3, 0x30000000);
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR) & 0xffffffff, 14);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_ERROR) & 0xffffffff, 2);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_CR2) & 0xffffffff, 0x30000000);
}
