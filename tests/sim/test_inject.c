/*
 * tests/sim/test_inject.c — the hypervisor's own script (sim/inject.c): when a step fires,
 * waits or is skipped, and that a snapshot puts the script's position back.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim_fixture.h"
#include "vm_event_v7.h"
#include "vmisim.h"

/* inc rcx; jmp $-3: every vCPU spins for ever. */
static const uint8_t spin[] = {0x48, 0xff, 0xc1, 0xeb, 0xfb};
/* cmp eax, 0x1000; je +5; (inc rcx; jmp $-3); hlt: vCPU 0 (rax 0x1000) halts, the others spin. */
static const uint8_t halt0[] = {0x3d, 0x00, 0x10, 0x00, 0x00, 0x74, 0x05, 0x48, 0xff, 0xc1, 0xeb, 0xfb, 0xf4};

/* The notes the domain made, one string. */
static char notes[8192];

static void on_note(void *opaque, const struct sim_note *n)
{
    (void)opaque;
    if (n->kind != SIM_NOTE_ACTION)
        return;
    size_t len = strlen(notes);
    snprintf(notes + len, sizeof(notes) - len, "%s\n", n->text);
}

static struct inject_step event_step(uint64_t after, unsigned reason, unsigned vcpu, bool sync)
{
    return (struct inject_step){.kind = INJECT_EVENT, .after = after, .reason = reason, .vcpu = vcpu,
                                .sync = sync};
}

/* A domain of `vcpus` vCPUs running `code`, a v`version` monitor ring and the test's client on it. */
static struct sim_domain *domain(unsigned vcpus, const uint8_t *code, size_t len, unsigned version,
                                 struct fixture_client *c)
{
    struct sim_domain *d = fixture_domain(vcpus, code, len, FIX_DATA_GLA);
    struct ring_fds fds;
    notes[0] = 0;
    sim_set_observer(d, on_note, NULL);
    SETUP(sim_monitor_enable(d, version, &fds));
    SETUP(ring_back_attach(&c->back, &fds, vme_slot_size(version), 0));
    SETUP(evtchn_open(&c->evtchn, &fds, RING_ABI_PORT_CLIENT));
    return d;
}

/* The next request on the ring (version 7). */
static struct vme_msg take(struct fixture_client *c)
{
    unsigned char slot[400];
    struct vme_msg m;
    cr_assert_eq(ring_back_take_request(c->back, slot), 0, "a request must be on the ring");
    vme_decode(7, slot, &m);
    return m;
}

static void answer(struct fixture_client *c, const struct vme_msg *req)
{
    struct vme_msg rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = 7;
    rsp.vcpu_id = req->vcpu_id;
    rsp.reason = req->reason;
    rsp.flags = VME_FLAG_VCPU_PAUSED;
    fixture_respond(c, &rsp);
}

/* Proves: a step fires exactly `after` guest instructions after the previous one (the quantum is cut
 * for it), carries its payload, and the next step counts from there. */
Test(inject, after_counts_instructions)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(1, spin, sizeof(spin), 7, &c);
    struct inject_step st[2] = {event_step(1000, VME_REASON_CPUID, 0, true),
                                event_step(2500, VME_REASON_GUEST_REQUEST, 0, true)};
    st[0].field[INJECT_F_LEAF] = 0x40000000;
    st[0].field[INJECT_F_INSN_LENGTH] = 2;
    cr_assert_eq(inject_set(d, st, 2), 0, "%s", sim_error(d));
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 1000000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT, "%s", stop.why);
    cr_expect_eq(stop.insns, 1000, "the step fires on its instruction, not at a quantum's end");
    uint64_t at = 0;
    cr_expect_eq(inject_outcome(d, 0, &at), INJECT_FIRED);
    cr_expect_eq(at, 1000);
    cr_expect_eq(inject_next(d), 1);
    cr_expect_eq(inject_outcome(d, 1, NULL), INJECT_PENDING);
    struct vme_msg m = take(&c);
    cr_expect_eq(m.reason, VME_REASON_CPUID);
    cr_expect_eq(m.vcpu_id, 0);
    cr_expect_eq(m.flags & VME_FLAG_VCPU_PAUSED, VME_FLAG_VCPU_PAUSED);
    cr_expect_eq(m.u.cpuid.leaf, 0x40000000);
    cr_expect_eq(m.u.cpuid.insn_length, 2);
    cr_expect_eq(sim_vcpu_pause_count(d, 0), 1);
    cr_expect(strstr(notes, "hypervisor step 0: the hypervisor raises CPUID for vCPU 0 (sync) at guest "
                            "instruction 1000"), "%s", notes);
    answer(&c, &m);
    cr_assert_eq(sim_run(d, 1000000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT, "%s", stop.why);
    cr_expect_eq(inject_outcome(d, 1, &at), INJECT_FIRED);
    cr_expect_eq(at, 3500, "2500 after the first");
    cr_expect(inject_done(d));
    cr_expect_eq(take(&c).reason, VME_REASON_GUEST_REQUEST);
    fixture_destroy(d, &c);
}

/* Proves: a step for a paused vCPU waits (the other vCPUs run on) and fires once the response
 * unpauses it, with the instructions the others ran in between. */
Test(inject, waits_for_a_paused_vcpu)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(2, spin, sizeof(spin), 7, &c);
    struct inject_step st[2] = {event_step(10, VME_REASON_PRIVILEGED_CALL, 0, true),
                                event_step(0, VME_REASON_PRIVILEGED_CALL, 0, true)};
    cr_assert_eq(inject_set(d, st, 2), 0, "%s", sim_error(d));
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 1000000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT);
    cr_expect_eq(inject_next(d), 1, "step 1 is due but its vCPU is paused");
    cr_assert_eq(sim_run(d, 50000, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_LIMIT, "vCPU 1 runs on while step 1 waits");
    cr_expect_eq(inject_next(d), 1);
    cr_expect_eq(sim_vcpu_insns(d, 1), 50000);
    struct vme_msg m = take(&c);
    cr_expect_eq(m.vcpu_id, 0);
    answer(&c, &m);
    cr_assert_eq(sim_run(d, 50000, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_EVENT);
    uint64_t at = 0;
    cr_expect_eq(inject_outcome(d, 1, &at), INJECT_FIRED);
    cr_expect_eq(at, 50010);
    cr_expect_eq(sim_vcpu_pause_count(d, 0), 1);
    fixture_destroy(d, &c);
}

/* Proves: a step waits while the toolstack pauses the domain, and for an injected trap that its
 * vCPU has not yet taken (Xen raises events from a vmexit, after the entry that delivers it). */
Test(inject, waits_for_pending_entry_work)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(1, spin, sizeof(spin), 7, &c);
    struct inject_step st = event_step(0, VME_REASON_GUEST_REQUEST, 0, false);
    cr_assert_eq(inject_set(d, &st, 1), 0);
    SETUP(sim_domain_pause(d));
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_expect_eq(inject_next(d), 0, "a paused domain raises nothing");
    SETUP(sim_domain_unpause(d));
    d->vcpus[0].trap.pending = true; /* as sim_inject_trap leaves it */
    d->vcpus[0].trap.vector = 6;
    inject_poll(d);
    cr_expect_eq(inject_next(d), 0, "the trap goes in first");
    d->vcpus[0].trap.pending = false;
    inject_poll(d);
    cr_expect_eq(inject_next(d), 1);
    fixture_destroy(d, &c);
}

/* Proves: a step for a halted vCPU is skipped with a note, and the script goes on. */
Test(inject, skips_a_halted_vcpu)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(2, halt0, sizeof(halt0), 7, &c);
    struct inject_step st[2] = {event_step(100, VME_REASON_GUEST_REQUEST, 0, true),
                                event_step(0, VME_REASON_GUEST_REQUEST, 1, true)};
    cr_assert_eq(inject_set(d, st, 2), 0);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 1000000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT);
    cr_expect_eq(sim_vcpu_state(d, 0), SIM_VCPU_HALTED);
    cr_expect_eq(inject_outcome(d, 0, NULL), INJECT_SKIPPED);
    cr_expect_eq(inject_outcome(d, 1, NULL), INJECT_FIRED);
    cr_expect(strstr(notes, "hypervisor step 0 skipped: vCPU 0 has halted, so it raises no GUEST_REQUEST event"),
              "%s", notes);
    struct vme_msg m = take(&c);
    cr_expect_eq(m.vcpu_id, 1);
    cr_expect_eq(ring_back_take_request(c.back, (unsigned char[400]){0}), -EAGAIN,
                 "one request only: the halted vCPU's is not sent");
    fixture_destroy(d, &c);
}

/* Proves: a burst (after: 0) fires in one poll, for every vCPU, in order, and a full ring queues the
 * rest; no ring drops a step with a note; a version 1 ring skips a reason it cannot carry. */
Test(inject, burst_queue_drop_and_version)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(10, spin, sizeof(spin), 7, &c);
    struct inject_step st[10];
    for (unsigned i = 0; i < 10; i++)
        st[i] = event_step(i ? 0 : 50, VME_REASON_SINGLESTEP, i, true);
    cr_assert_eq(inject_set(d, st, 10), 0);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 1000000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT);
    cr_expect(inject_done(d));
    for (unsigned i = 0; i < 10; i++) {
        uint64_t at = 0;
        cr_expect_eq(inject_outcome(d, i, &at), INJECT_FIRED, "step %u", i);
        cr_expect_eq(at, 50, "step %u", i);
    }
    for (unsigned i = 0; i < 8; i++)
        cr_expect_eq(take(&c).vcpu_id, i, "the ring holds vCPUs 0-7 in order");
    cr_expect(d->vcpus[8].waiting_slot && d->vcpus[9].waiting_slot, "vCPUs 8, 9 wait for a slot");
    fixture_destroy(d, &c);

    d = fixture_domain(1, spin, sizeof(spin), FIX_DATA_GLA);
    notes[0] = 0;
    sim_set_observer(d, on_note, NULL);
    struct inject_step one = event_step(5, VME_REASON_CPUID, 0, true);
    cr_assert_eq(inject_set(d, &one, 1), 0);
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_LIMIT, "nothing was sent");
    cr_expect_eq(inject_outcome(d, 0, NULL), INJECT_DROPPED);
    cr_expect(strstr(notes, "hypervisor step 0: no monitor ring, so the CPUID request for vCPU 0 is dropped"),
              "%s", notes);
    sim_domain_destroy(d);

    c = (struct fixture_client){0};
    d = domain(1, spin, sizeof(spin), 1, &c);
    struct inject_step two[2] = {event_step(5, VME_REASON_CPUID, 0, true),
                                 event_step(0, VME_REASON_GUEST_REQUEST, 0, true)};
    cr_assert_eq(inject_set(d, two, 2), 0);
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_EVENT);
    cr_expect_eq(inject_outcome(d, 0, NULL), INJECT_SKIPPED);
    cr_expect_eq(inject_outcome(d, 1, NULL), INJECT_FIRED, "GUEST_REQUEST is a version 1 reason");
    cr_expect(strstr(notes, "hypervisor step 0 skipped: a version 1 ring cannot carry CPUID (reason 10)"),
              "%s", notes);
    cr_expect_eq(sim_vcpu_pause_count(d, 0), 1, "only the request sent paused the vCPU");
    fixture_destroy(d, &c);
}

/* Proves: a write step writes (bytes or fill) at its instruction, as a host write; inject_set
 * copies the bytes; and refuses a step the domain cannot run. */
Test(inject, write_steps_and_refusals)
{
    struct sim_domain *d = fixture_domain(1, spin, sizeof(spin), FIX_DATA_GLA);
    uint8_t bytes[3] = {0x90, 0x90, 0xcc};
    struct inject_step st[2] = {
        {.kind = INJECT_WRITE, .after = 20, .gpa = 0x20010, .size = 3, .bytes = bytes},
        {.kind = INJECT_WRITE, .after = 0, .gpa = 0x21ffe, .size = 4, .fill = 0xab},
    };
    cr_assert_eq(inject_set(d, st, 2), 0);
    bytes[0] = 0; /* the script holds its own copy */
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 19, &stop), 0);
    uint8_t got[8];
    SETUP(sim_mem_peek(d, 0x20010, got, 3));
    cr_expect_eq(got[0], 0, "not yet: 19 instructions");
    cr_assert_eq(sim_run(d, 1, &stop), 0);
    inject_poll(d); /* the next run's first poll */
    SETUP(sim_mem_peek(d, 0x20010, got, 3));
    cr_expect(got[0] == 0x90 && got[1] == 0x90 && got[2] == 0xcc);
    SETUP(sim_mem_peek(d, 0x21ffc, got, 8));
    cr_expect(got[1] == 0 && got[2] == 0xab && got[5] == 0xab && got[6] == 0, "fill across a page boundary");
    cr_expect(inject_done(d));

    struct inject_step bad = event_step(0, VME_REASON_GUEST_REQUEST, 1, true);
    cr_expect_eq(inject_set(d, &bad, 1), -EINVAL);
    cr_expect(strstr(sim_error(d), "hypervisor step 0: vCPU 1 does not exist"), "%s", sim_error(d));
    cr_expect(inject_done(d) && inject_nr(d) == 2, "the old script stays");
    bad = event_step(0, VME_REASON_MEM_PAGING, 0, true);
    cr_expect_eq(inject_set(d, &bad, 1), -EINVAL);
    bad = (struct inject_step){.kind = INJECT_WRITE, .gpa = FIX_RAM - 1, .size = 2, .fill = 1};
    cr_expect_eq(inject_set(d, &bad, 1), -EINVAL);
    cr_expect(strstr(sim_error(d), "reaches beyond guest RAM"), "%s", sim_error(d));
    cr_expect_eq(inject_set(d, NULL, 0), 0, "no script");
    cr_expect(inject_done(d) && inject_nr(d) == 0);
    sim_domain_destroy(d);
}

/* Proves: inject_set_kept adds a dropped step's `after` to the next kept one. */
Test(inject, kept_subset_keeps_instruction_counts)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(1, spin, sizeof(spin), 7, &c);
    struct inject_step st[3] = {event_step(100, VME_REASON_GUEST_REQUEST, 0, false),
                                event_step(200, VME_REASON_CPUID, 0, false),
                                event_step(300, VME_REASON_PRIVILEGED_CALL, 0, false)};
    bool keep[3] = {false, false, true};
    cr_assert_eq(inject_set_kept(d, st, 3, keep), 0);
    cr_assert_eq(inject_nr(d), 1);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 100000, &stop), 0);
    uint64_t at = 0;
    cr_expect_eq(inject_outcome(d, 0, &at), INJECT_FIRED);
    cr_expect_eq(at, 600, "100 + 200 + 300, as in the full script");
    cr_expect_eq(take(&c).reason, VME_REASON_PRIVILEGED_CALL);
    fixture_destroy(d, &c);
}

/* Proves: a snapshot restore puts the script's position and instruction counts back, so the same
 * steps fire again at the same instructions with the same requests. */
Test(inject, snapshot_restore_puts_the_position_back)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(1, spin, sizeof(spin), 7, &c);
    struct inject_step st[3] = {event_step(100, VME_REASON_GUEST_REQUEST, 0, false),
                                event_step(100, VME_REASON_CPUID, 0, false),
                                event_step(100, VME_REASON_PRIVILEGED_CALL, 0, false)};
    cr_assert_eq(inject_set(d, st, 3), 0);
    struct sim_snapshot *start = NULL, *mid = NULL;
    SETUP(sim_snapshot_take(d, &start));
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 100000, &stop), 0);
    cr_assert_eq(inject_next(d), 1);
    SETUP(sim_snapshot_take(d, &mid));
    struct ring_back_state back;
    ring_back_save(c.back, &back);
    cr_assert_eq(sim_run(d, 100000, &stop), 0);
    cr_assert_eq(sim_run(d, 100000, &stop), 0);
    cr_assert(inject_done(d));
    cr_expect_eq(inject_insns(d), 300);

    cr_assert_eq(sim_snapshot_restore(d, mid), 0, "%s", sim_error(d));
    ring_back_restore(c.back, &back);
    cr_expect_eq(inject_next(d), 1);
    cr_expect_eq(inject_insns(d), 100);
    cr_expect_eq(inject_outcome(d, 1, NULL), INJECT_PENDING, "steps from the position on are pending again");
    cr_assert_eq(sim_run(d, 100000, &stop), 0);
    uint64_t at = 0;
    cr_expect_eq(inject_outcome(d, 1, &at), INJECT_FIRED);
    cr_expect_eq(at, 200, "the same instruction as before the restore");
    cr_expect_eq(take(&c).reason, VME_REASON_GUEST_REQUEST);
    cr_expect_eq(take(&c).reason, VME_REASON_CPUID);

    cr_assert_eq(sim_snapshot_restore(d, start), 0, "%s", sim_error(d));
    cr_expect_eq(inject_next(d), 0);
    cr_expect_eq(inject_insns(d), 0);
    sim_snapshot_free(start);
    sim_snapshot_free(mid);
    fixture_destroy(d, &c);
}

/* Proves: extreme payloads reach the ring slot byte for byte, as Xen's vm_event_request_t (v7)
 * reads them: every field at its largest, every mem_access flag bit, and padding left zero. */
Test(inject, extreme_fields_reach_the_slot)
{
    struct fixture_client c = {0};
    struct sim_domain *d = domain(1, spin, sizeof(spin), 7, &c);
    const uint64_t M = UINT64_MAX;
    struct inject_step st[8];
    st[0] = event_step(3, VME_REASON_MEM_ACCESS, 0, true);
    st[0].field[INJECT_F_GFN] = M;
    st[0].field[INJECT_F_OFFSET] = M;
    st[0].field[INJECT_F_GLA] = 0x8000000000000000ull;
    st[0].field[INJECT_F_ACCESS_FLAGS] = 0xffffffff;
    st[0].given = 1u << INJECT_F_ACCESS_FLAGS;
    st[1] = event_step(0, VME_REASON_WRITE_CTRLREG, 0, true);
    st[1].field[INJECT_F_INDEX] = 0xffffffff;
    st[1].field[INJECT_F_NEW_VALUE] = M;
    st[1].field[INJECT_F_OLD_VALUE] = M - 1;
    st[2] = event_step(0, VME_REASON_MOV_TO_MSR, 0, true);
    st[2].field[INJECT_F_MSR] = M;
    st[2].field[INJECT_F_NEW_VALUE] = M;
    st[2].field[INJECT_F_OLD_VALUE] = 1;
    st[3] = event_step(0, VME_REASON_DEBUG_EXCEPTION, 0, true);
    st[3].field[INJECT_F_GFN] = M;
    st[3].field[INJECT_F_PENDING_DBG] = M;
    st[3].field[INJECT_F_INSN_LENGTH] = 0xffffffff;
    st[3].field[INJECT_F_TYPE] = 0xff;
    st[4] = event_step(0, VME_REASON_CPUID, 0, true);
    st[4].field[INJECT_F_LEAF] = st[4].field[INJECT_F_SUBLEAF] = st[4].field[INJECT_F_INSN_LENGTH] = 0xffffffff;
    st[5] = event_step(0, VME_REASON_INTERRUPT, 0, true);
    st[5].field[INJECT_F_VECTOR] = st[5].field[INJECT_F_TYPE] = st[5].field[INJECT_F_ERROR_CODE] = 0xffffffff;
    st[5].field[INJECT_F_CR2] = M;
    st[6] = event_step(0, VME_REASON_DESCRIPTOR_ACCESS, 0, true);
    st[6].field[INJECT_F_DESCRIPTOR] = 0xff;
    st[6].field[INJECT_F_IS_WRITE] = 1;
    st[6].field[INJECT_F_INSTR_INFO] = 0xffffffff;
    st[6].field[INJECT_F_EXIT_QUALIFICATION] = M;
    st[7] = event_step(0, VME_REASON_VMEXIT, 0, true);
    st[7].field[INJECT_F_EXIT_REASON] = M;
    st[7].field[INJECT_F_QUALIFICATION] = M - 2;
    cr_assert_eq(inject_set(d, st, 8), 0, "%s", sim_error(d));
    for (unsigned k = 0; k < 8; k++) {
        struct sim_stop stop;
        cr_assert_eq(sim_run(d, 100000, &stop), 0);
        cr_assert_eq(stop.reason, SIM_STOP_EVENT, "step %u", k);
        vm_event_request_t w;
        memset(&w, 0xa5, sizeof(w));
        cr_assert_eq(ring_back_take_request(c.back, &w), 0);
        cr_expect_eq(w.version, 7);
        cr_expect_eq(w.reason, st[k].reason, "step %u", k);
        cr_expect_eq(w.vcpu_id, 0);
        cr_expect_eq(w.flags, VM_EVENT_FLAG_VCPU_PAUSED, "step %u: no flag but VCPU_PAUSED", k);
        switch (k) {
        case 0:
            cr_expect(w.u.mem_access.gfn == M && w.u.mem_access.offset == M
                      && w.u.mem_access.gla == 0x8000000000000000ull && w.u.mem_access.flags == 0xffffffff
                      && w.u.mem_access._pad == 0);
            break;
        case 1:
            cr_expect(w.u.write_ctrlreg.index == 0xffffffff && w.u.write_ctrlreg.new_value == M
                      && w.u.write_ctrlreg.old_value == M - 1 && w.u.write_ctrlreg._pad == 0);
            break;
        case 2:
            cr_expect(w.u.mov_to_msr.msr == M && w.u.mov_to_msr.new_value == M && w.u.mov_to_msr.old_value == 1);
            break;
        case 3:
            cr_expect(w.u.debug_exception.gfn == M && w.u.debug_exception.pending_dbg == M
                      && w.u.debug_exception.insn_length == 0xffffffff && w.u.debug_exception.type == 0xff
                      && !w.u.debug_exception._pad[0] && !w.u.debug_exception._pad[2]);
            break;
        case 4:
            cr_expect(w.u.cpuid.leaf == 0xffffffff && w.u.cpuid.subleaf == 0xffffffff
                      && w.u.cpuid.insn_length == 0xffffffff && w.u.cpuid._pad == 0);
            break;
        case 5:
            cr_expect(w.u.interrupt.x86.vector == 0xffffffff && w.u.interrupt.x86.type == 0xffffffff
                      && w.u.interrupt.x86.error_code == 0xffffffff && w.u.interrupt.x86.cr2 == M
                      && w.u.interrupt.x86._pad == 0);
            break;
        case 6:
            cr_expect(w.u.desc_access.arch.vmx.instr_info == 0xffffffff
                      && w.u.desc_access.arch.vmx.exit_qualification == M && w.u.desc_access.descriptor == 0xff
                      && w.u.desc_access.is_write == 1 && w.u.desc_access.arch.vmx._pad1 == 0);
            break;
        case 7:
            cr_expect(w.u.vmexit.arch.vmx.reason == M && w.u.vmexit.arch.vmx.qualification == M - 2);
            break;
        }
        cr_expect_eq(w.data.regs.x86.rip, 0x400003, "step %u: the vCPU's own registers (after inc, jmp, inc)", k);
        struct vme_msg req;
        vme_decode(7, &w, &req);
        answer(&c, &req);
    }
    cr_expect(inject_done(d));
    fixture_destroy(d, &c);
}

/* Proves: a run with a hypervisor section records and replays (vmisim run --record, vmisim replay,
 * also --as-client), under round robin and a seed: the injected requests are ordinary requests of
 * the recording, fired at the same instructions again. */
Test(inject, record_and_replay)
{
    /* rewrite-page names its vCPUs' roles as round robin gives them, so it is recorded with seed 0. */
    static const struct { const char *name, *seed; } runs[] = {
        {"hypervisor-event-burst", "0"}, {"hypervisor-event-burst", "3"},
        {"hypervisor-rewrite-page", "0"}, {"hypervisor-late-event", "3"},
    };
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        char path[512], rec[] = "/tmp/vmisim-test-inject-XXXXXX";
        snprintf(path, sizeof(path), "%s/%s.yaml", INJECT_SCENARIOS, runs[i].name);
        int fd = mkstemp(rec);
        if (fd < 0)
            cr_assert_fail("TEST ERROR (set-up): mkstemp");
        close(fd);
        char *run[] = {"run", "--quiet", "--seed", (char *)runs[i].seed, "--record", rec, path, NULL};
        cr_expect_eq(vmisim_run(7, run), 0, "%s seed %s: the recorded run passes", runs[i].name, runs[i].seed);
        char *replay[] = {"replay", "--quiet", rec, NULL};
        cr_expect_eq(vmisim_replay(3, replay), 0, "%s seed %s: the replay must reproduce", runs[i].name,
                     runs[i].seed);
        char *as_client[] = {"replay", "--quiet", "--as-client", rec, NULL};
        cr_expect_eq(vmisim_replay(4, as_client), 0, "%s seed %s: the replay --as-client must reproduce",
                     runs[i].name, runs[i].seed);
        unlink(rec);
    }
}

static int busy_rc = 1;

static void replace_script(void *opaque, const struct sim_note *n)
{
    if (n->kind == SIM_NOTE_ACTION && busy_rc == 1)
        busy_rc = inject_set(opaque, NULL, 0);
}

/* Proves: the script cannot be replaced from an observer's note while its steps run (-EBUSY), so no
 * step is freed under inject_poll; after sim_run it can. */
Test(inject, no_replacement_while_running)
{
    struct sim_domain *d = fixture_domain(1, spin, sizeof(spin), FIX_DATA_GLA);
    struct inject_step st[2] = {{.kind = INJECT_WRITE, .after = 5, .gpa = 0x20000, .size = 1, .fill = 1},
                                {.kind = INJECT_WRITE, .after = 0, .gpa = 0x20001, .size = 1, .fill = 2}};
    SETUP(inject_set(d, st, 2));
    sim_set_observer(d, replace_script, d);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(busy_rc, -EBUSY);
    cr_expect(inject_done(d) && inject_nr(d) == 2, "both steps ran from the script as it was");
    cr_expect_eq(inject_set(d, NULL, 0), 0);
    sim_domain_destroy(d);
}
