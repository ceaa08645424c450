/*
 * tests/sim/test_monitor_ctl.c — the monitor controls' return codes, as Xen's
 * arch_monitor_domctl_event gives them (spec §4): -EEXIST for a redundant
 * enable or disable, -EINVAL for a write_ctrlreg index >= 4 or an MSR outside
 * the three ranges; they work without a ring and go with a monitor disable.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "sim_internal.h"

static struct sim_domain *make(void)
{
    struct sim_domain *d = NULL;
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = 1u << 20, .nr_vcpus = 2};
    if (sim_domain_create(&d, &cfg) < 0)
        cr_assert_fail("TEST ERROR (set-up): sim_domain_create");
    return d;
}

Test(monitor_ctl, write_ctrlreg_codes)
{
    struct sim_domain *d = make();
    /* No ring needed. */
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR0, true, true, 0, false), 0);
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR0, true, false, 0x80, true), -EEXIST);
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR3, false, false, 0, false), -EEXIST);
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_XCR0, true, true, 0, false), 0, "XCR0 is index 3");
    cr_expect_eq(sim_monitor_write_ctrlreg(d, 4, true, true, 0, false), -EINVAL);
    cr_expect_eq(sim_monitor_write_ctrlreg(d, 4, false, true, 0, false), -EINVAL);
    cr_expect_eq(sim_monitor_write_ctrlreg(d, 99, true, true, 0, false), -EINVAL);
    cr_expect_eq(d->intercept, (1u << CPU_INSN_MOV_CR) | (1u << CPU_INSN_XSETBV));
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR0, false, false, 0, false), 0);
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR0, false, false, 0, false), -EEXIST);
    cr_expect_eq(d->intercept, 1u << CPU_INSN_XSETBV, "only what an enabled monitor needs");
    sim_domain_destroy(d);
}

Test(monitor_ctl, mov_to_msr_ranges)
{
    struct sim_domain *d = make();
    static const uint32_t ok[] = {0, 0x1fff, 0x40000000, 0x40001fff, 0xc0000000, 0xc0000082, 0xc0001fff};
    static const uint32_t bad[] = {0x2000, 0x3fffffff, 0x40002000, 0xbfffffff, 0xc0002000, 0xffffffff};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_expect_eq(sim_monitor_mov_to_msr(d, ok[i], true, false), 0, "msr %#x", ok[i]);
        cr_expect_eq(sim_monitor_mov_to_msr(d, ok[i], true, true), -EEXIST, "msr %#x", ok[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(sim_monitor_mov_to_msr(d, bad[i], true, false), -EINVAL, "msr %#x", bad[i]);
        /* Xen compares with the (always false) status first. */
        cr_expect_eq(sim_monitor_mov_to_msr(d, bad[i], false, false), -EEXIST, "msr %#x", bad[i]);
    }
    cr_expect_eq(d->intercept, 1u << CPU_INSN_WRMSR);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_expect_eq(sim_monitor_mov_to_msr(d, ok[i], false, false), 0, "msr %#x", ok[i]);
    cr_expect_eq(sim_monitor_mov_to_msr(d, 0xc0000082, false, false), -EEXIST);
    cr_expect_eq(d->intercept, 0u);
    sim_domain_destroy(d);
}

Test(monitor_ctl, breakpoint_singlestep_codes)
{
    struct sim_domain *d = make();
    cr_expect_eq(sim_monitor_software_breakpoint(d, false), -EEXIST);
    cr_expect_eq(sim_monitor_software_breakpoint(d, true), 0);
    cr_expect_eq(sim_monitor_software_breakpoint(d, true), -EEXIST);
    cr_expect_eq(d->intercept, 1u << CPU_INSN_INT3);
    cr_expect_eq(sim_monitor_singlestep(d, false), -EEXIST);
    cr_expect_eq(sim_monitor_singlestep(d, true), 0);
    cr_expect_eq(sim_monitor_singlestep(d, true), -EEXIST);
    cr_expect_eq(sim_monitor_control_registers(d), 0);
    cr_expect_eq(sim_debug_control_singlestep(d, 1, true), 0);
    cr_expect(sim_vcpu_singlestep(d, 1));
    cr_expect_not(sim_vcpu_singlestep(d, 0));
    cr_expect_eq(sim_debug_control_singlestep(d, 2, true), -EINVAL);
    sim_domain_destroy(d);
}

Test(monitor_ctl, disable_clears_monitors)
{
    struct sim_domain *d = make();
    struct ring_fds fds;
    cr_assert_eq(sim_monitor_enable(d, 7, &fds), 0);
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR4, true, true, 0, false), 0);
    cr_expect_eq(sim_monitor_software_breakpoint(d, true), 0);
    cr_expect_eq(sim_monitor_control_registers(d), 0);
    cr_expect_eq(sim_monitor_disable(d), 0);
    cr_expect_eq(d->intercept, 0u);
    cr_expect_not(d->mon.control_register_values);
    /* Enabling again is no longer redundant. */
    cr_expect_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR4, true, true, 0, false), 0);
    cr_expect_eq(sim_monitor_software_breakpoint(d, true), 0);
    sim_domain_destroy(d);
}

Test(monitor_ctl, inject_trap_codes)
{
    struct sim_domain *d = make();
    cr_expect_eq(sim_inject_trap(d, 0, 3, SIM_ET_SW_EXC, -1, 1, 0), 0);
    cr_expect_eq(sim_inject_trap(d, 0, 3, SIM_ET_SW_EXC, -1, 1, 0), -EBUSY, "one is pending");
    cr_expect_eq(sim_inject_trap(d, 5, 3, SIM_ET_SW_EXC, -1, 1, 0), -EINVAL);
    cr_expect_eq(sim_inject_trap(d, 1, 256, SIM_ET_HW_EXC, -1, 0, 0), -EINVAL);
    sim_domain_destroy(d);
}
