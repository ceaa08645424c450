/*
 * tests/sim/test_snapshot.c — whole-machine snapshots (sim/snapshot.c).  Proves that a
 * restore undoes guest and host writes by copying only the frames written since (the
 * counter), that a vCPU restored mid-event (paused, its request on the ring) gets its
 * response and ends exactly as a straight run, that one snapshot restores again and again and
 * several snapshots stay correct, that page-table A/D writes are tracked, that p2m, views and
 * monitor settings come back, that a file restores as the snapshot it was written from and
 * damaged files are refused with a sentence, and that rewritten code runs as restored.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "sim_fixture.h"

/* mov [rbx], rax ; add rax, 1 ; mov [rbx+8], rax ; hlt */
static const uint8_t two_stores[] = {0x48, 0x89, 0x03, 0x48, 0x83, 0xc0, 0x01, 0x48, 0x89, 0x43, 0x08, 0xf4};

static uint64_t data64(struct sim_domain *d, unsigned off)
{
    uint64_t v = 0;
    SETUP(sim_mem_peek(d, (FIX_DATA_GFN << 12) + off, &v, 8));
    return v;
}

static uint64_t reg_rax(struct sim_domain *d)
{
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 0, &r));
    return r.rax;
}

/* Proves: guest writes after a take are undone, and the restore copies only what was
 * written (the data page and the page tables whose A/D bits were set), not all of RAM. */
Test(snapshot, guest_writes_undone_only_dirty_copied)
{
    struct sim_domain *d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct sim_snapshot *s;
    cr_assert_eq(sim_snapshot_take(d, &s), 0, "%s", sim_error(d));
    cr_assert_eq(sim_snapshot_dirty_pages(d), 0, "a fresh take leaves nothing dirty");
    struct sim_stop stop = fixture_run_until_idle(d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_assert_eq(data64(d, 0), 0x1000);
    uint64_t dirty = sim_snapshot_dirty_pages(d);
    /* The data page, and the page tables whose A (and D) bits this first run set. */
    cr_assert(dirty >= 2 && dirty <= 8, "%llu pages dirty after two stores to one page",
              (unsigned long long)dirty);
    cr_assert_eq(sim_snapshot_restore(d, s), 0, "%s", sim_error(d));
    cr_assert_eq(sim_snapshot_restored_pages(d), dirty, "restored %llu pages, %llu were dirty",
                 (unsigned long long)sim_snapshot_restored_pages(d), (unsigned long long)dirty);
    cr_assert_eq(data64(d, 0), 0, "the guest's write survived the restore");
    cr_assert_eq(data64(d, 8), 0);
    cr_assert_eq(sim_vcpu_state(d, 0), SIM_VCPU_RUNNABLE, "the vCPU is no longer halted");
    cr_assert_eq(reg_rax(d), 0x1000);
    sim_snapshot_free(s);
    sim_domain_destroy(d);
}

/* Proves: one snapshot restores again and again (each time only what changed since), and a
 * second snapshot of the same domain keeps its own view of memory. */
Test(snapshot, restore_twice_and_two_snapshots)
{
    struct sim_domain *d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct sim_snapshot *a, *b;
    SETUP(sim_snapshot_take(d, &a));
    for (int i = 0; i < 3; i++) {
        struct sim_stop stop = fixture_run_until_idle(d);
        cr_assert_eq(stop.reason, SIM_STOP_HALTED, "round %d: %s", i, stop.why);
        cr_assert_eq(data64(d, 8), 0x1001, "round %d ran differently", i);
        cr_assert_eq(sim_snapshot_restore(d, a), 0, "%s", sim_error(d));
        cr_assert_eq(data64(d, 8), 0, "round %d: not undone", i);
    }
    /* Nothing written since the last restore: nothing to copy. */
    SETUP(sim_snapshot_restore(d, a));
    cr_assert_eq(sim_snapshot_restored_pages(d), 0, "an idle restore copied %llu pages",
                 (unsigned long long)sim_snapshot_restored_pages(d));
    /* b: after a host write; running, then restoring a, then b, gives each its bytes. */
    uint64_t mark = 0x4242;
    SETUP(sim_mem_write(d, (FIX_DATA_GFN << 12) + 16, &mark, 8));
    SETUP(sim_snapshot_take(d, &b));
    fixture_run_until_idle(d);
    SETUP(sim_snapshot_restore(d, a));
    cr_assert_eq(data64(d, 16), 0, "a's restore kept b's host write");
    cr_assert_eq(data64(d, 8), 0);
    SETUP(sim_snapshot_restore(d, b));
    cr_assert_eq(data64(d, 16), 0x4242, "b's restore lost its host write");
    cr_assert_eq(data64(d, 8), 0);
    SETUP(sim_snapshot_restore(d, a));
    cr_assert_eq(data64(d, 16), 0, "switching back to a kept b's bytes");
    sim_snapshot_free(b);
    sim_snapshot_free(a);
    sim_domain_destroy(d);
}

/* Proves: host writes (sim_mem_write) after a take are tracked and undone. */
Test(snapshot, host_writes_tracked)
{
    struct sim_domain *d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct sim_snapshot *s;
    SETUP(sim_snapshot_take(d, &s));
    uint64_t v = 0x77;
    SETUP(sim_mem_write(d, 0x30000, &v, 8));
    cr_assert_eq(sim_snapshot_dirty_pages(d), 1, "one host-written page, %llu dirty",
                 (unsigned long long)sim_snapshot_dirty_pages(d));
    SETUP(sim_snapshot_restore(d, s));
    SETUP(sim_mem_peek(d, 0x30000, &v, 8));
    cr_assert_eq(v, 0, "the host write survived");
    sim_snapshot_free(s);
    sim_domain_destroy(d);
}

/* Proves: the walker's A/D-bit writes are tracked: a restore puts the page-table entry back
 * as it was (D clear), so the next write sets D again. */
Test(snapshot, page_walker_ad_bits_tracked)
{
    struct sim_domain *d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct cpu_walk w;
    SETUP(cpu_translate(d->vcpus[0].cpu, FIX_DATA_GLA, CPU_R, &w));
    uint64_t pte_gpa = w.pte_gpa[w.levels - 1], pte0 = 0, pte1 = 0, pte2 = 0;
    SETUP(sim_mem_peek(d, pte_gpa, &pte0, 8));
    struct sim_snapshot *s;
    SETUP(sim_snapshot_take(d, &s));
    fixture_run_until_idle(d);
    SETUP(sim_mem_peek(d, pte_gpa, &pte1, 8));
    cr_assert(pte1 & 0x40, "the store did not set D (pte %#llx)", (unsigned long long)pte1);
    SETUP(sim_snapshot_restore(d, s));
    SETUP(sim_mem_peek(d, pte_gpa, &pte2, 8));
    cr_assert_eq(pte2, pte0, "the PTE is %#llx after restore, %#llx before", (unsigned long long)pte2,
                 (unsigned long long)pte0);
    sim_snapshot_free(s);
    sim_domain_destroy(d);
}

struct mid {
    struct sim_domain *d;
    struct fixture_client client;
};

static void mid_make(struct mid *m)
{
    m->d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct ring_fds fds;
    SETUP(sim_monitor_enable(m->d, 7, &fds));
    fixture_attach(&m->client, &fds);
    SETUP(sim_set_mem_access(m->d, 1 /* r */, FIX_DATA_GFN, 1));
}

/* The client's answer: lift the restriction, release the vCPU. */
static void mid_answer(struct mid *m)
{
    unsigned char slot[400];
    cr_assert_eq(ring_back_take_request(m->client.back, slot), 0, "no request on the ring");
    struct vme_msg req, rsp;
    vme_decode(7, slot, &req);
    cr_assert_eq(req.reason, VME_REASON_MEM_ACCESS);
    cr_assert_eq(req.u.mem_access.gfn, FIX_DATA_GFN);
    SETUP(sim_set_mem_access(m->d, 7, FIX_DATA_GFN, 1));
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = 7;
    rsp.vcpu_id = req.vcpu_id;
    rsp.reason = req.reason;
    rsp.flags = VME_FLAG_VCPU_PAUSED;
    rsp.u.mem_access = req.u.mem_access;
    fixture_respond(&m->client, &rsp);
}

/* Proves: a snapshot taken mid-event (vCPU paused, request on the ring) restores exactly: the
 * request is there again, the p2m restriction is back, and after the same answer the guest
 * ends with the registers and memory of the straight run. */
Test(snapshot, restore_mid_event_matches_straight_run)
{
    struct mid m;
    mid_make(&m);
    struct sim_stop stop;
    SETUP(sim_run(m.d, 100000, &stop));
    cr_assert_eq(stop.reason, SIM_STOP_EVENT, "%s", stop.why);
    cr_assert_eq(sim_vcpu_state(m.d, 0), SIM_VCPU_PAUSED);
    struct sim_snapshot *s;
    cr_assert_eq(sim_snapshot_take(m.d, &s), 0, "%s", sim_error(m.d));
    struct ring_back_state cs;
    ring_back_save(m.client.back, &cs);

    mid_answer(&m);
    stop = fixture_run_until_idle(m.d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    struct cpu_regs straight, again;
    SETUP(sim_vcpu_get_regs(m.d, 0, &straight));
    uint64_t s0 = data64(m.d, 0), s8 = data64(m.d, 8);
    cr_assert_eq(s8, 0x1001);

    cr_assert_eq(sim_snapshot_restore(m.d, s), 0, "%s", sim_error(m.d));
    SETUP(ring_back_restore(m.client.back, &cs));
    cr_assert_eq(sim_vcpu_state(m.d, 0), SIM_VCPU_PAUSED, "the restored vCPU is not paused");
    cr_assert_eq(sim_vcpu_pause_count(m.d, 0), 1);
    unsigned a = 0;
    SETUP(sim_get_mem_access(m.d, FIX_DATA_GFN, &a));
    cr_assert_eq(a, 1, "the p2m restriction was not restored (access %u)", a);
    cr_assert_eq(data64(m.d, 0), 0, "the write that raised the event happened before it");
    mid_answer(&m);
    stop = fixture_run_until_idle(m.d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    SETUP(sim_vcpu_get_regs(m.d, 0, &again));
    cr_assert_eq(again.rip, straight.rip);
    cr_assert_eq(again.rax, straight.rax);
    cr_assert_eq(again.rflags, straight.rflags);
    cr_assert_eq(data64(m.d, 0), s0);
    cr_assert_eq(data64(m.d, 8), s8);
    cr_assert_eq(sim_vcpu_insns(m.d, 0), 4, "instruction count %llu", (unsigned long long)sim_vcpu_insns(m.d, 0));
    sim_snapshot_free(s);
    fixture_destroy(m.d, &m.client);
}

/* Proves: p2m access, altp2m views (with change_gfn) and monitor controls come back. */
Test(snapshot, p2m_views_monitor_restored)
{
    struct mid m;
    mid_make(&m);
    struct sim_domain *d = m.d;
    SETUP(sim_altp2m_set_mode(d, SIM_ALTP2M_EXTERNAL));
    SETUP(sim_altp2m_set_domain_state(d, true));
    uint16_t v1;
    SETUP(sim_altp2m_create_view(d, 7, &v1));
    SETUP(sim_altp2m_set_mem_access(d, v1, 0x30, 4 /* x */));
    SETUP(sim_monitor_software_breakpoint(d, true));
    struct sim_snapshot *s;
    SETUP(sim_snapshot_take(d, &s));

    SETUP(sim_set_mem_access(d, 0 /* n */, 0x40, 2));
    SETUP(sim_altp2m_change_gfn(d, v1, 0x31, 0x32));
    uint16_t v2;
    SETUP(sim_altp2m_create_view(d, 0, &v2));
    SETUP(sim_altp2m_switch_to_view(d, v1));
    SETUP(sim_monitor_software_breakpoint(d, false));
    SETUP(sim_monitor_singlestep(d, true));

    cr_assert_eq(sim_snapshot_restore(d, s), 0, "%s", sim_error(d));
    unsigned a;
    SETUP(sim_get_mem_access(d, 0x40, &a));
    cr_assert_eq(a, 7, "host access of gfn 0x40 is %u", a);
    SETUP(sim_get_mem_access(d, FIX_DATA_GFN, &a));
    cr_assert_eq(a, 1, "host access of the data gfn is %u", a);
    SETUP(sim_altp2m_get_mem_access(d, v1, 0x30, &a));
    cr_assert_eq(a, 4, "view access is %u", a);
    cr_assert_eq(sim_altp2m_views(d), 1u | (1u << v1), "views %#x", sim_altp2m_views(d));
    cr_assert(!(d->views[v1].changed[0x31 / 64] >> (0x31 % 64) & 1), "change_gfn survived");
    uint16_t cur;
    SETUP(sim_altp2m_get_vcpu_view(d, 0, &cur));
    cr_assert_eq(cur, 0, "the vCPU's view is %u", cur);
    cr_assert(d->mon.software_breakpoint && !d->mon.singlestep, "monitor controls not restored");
    sim_snapshot_free(s);
    fixture_destroy(d, &m.client);
}

/* Proves: a snapshot written to a file and read back restores what the snapshot restores, and
 * a ring enabled after the take is refused with a sentence. */
Test(snapshot, file_round_trip)
{
    struct sim_domain *d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    SETUP(sim_p2m_set_access(d, 5, 0x50, 1));
    struct sim_snapshot *s, *r;
    SETUP(sim_snapshot_take(d, &s));
    char path[] = "/tmp/vmisim-snap-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(sim_snapshot_write(d, s, path), 0, "%s", sim_error(d));
    fixture_run_until_idle(d);
    SETUP(sim_p2m_set_access(d, 7, 0x50, 1));
    cr_assert_eq(sim_snapshot_read(d, path, &r), 0, "%s", sim_error(d));
    cr_assert_eq(sim_snapshot_restore(d, r), 0, "%s", sim_error(d));
    cr_assert_eq(data64(d, 0), 0, "the file's RAM differs from the snapshot's");
    unsigned a;
    SETUP(sim_get_mem_access(d, 0x50, &a));
    cr_assert_eq(a, 5);
    cr_assert_eq(reg_rax(d), 0x1000);
    struct sim_stop stop = fixture_run_until_idle(d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_assert_eq(data64(d, 8), 0x1001, "the restored vCPU ran differently");
    /* A second restore of the file's snapshot copies only what changed. */
    SETUP(sim_snapshot_restore(d, r));
    cr_assert(sim_snapshot_restored_pages(d) < 8, "%llu pages", (unsigned long long)sim_snapshot_restored_pages(d));
    struct ring_fds fds;
    SETUP(sim_monitor_enable(d, 7, &fds));
    cr_assert_eq(sim_snapshot_restore(d, s), -EBUSY);
    cr_assert(strstr(sim_error(d), "ring") != NULL, "message: %s", sim_error(d));
    unlink(path);
    sim_snapshot_free(r);
    sim_snapshot_free(s);
    sim_domain_destroy(d);
}

static void write_bytes(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Proves: bad magic, a wrong version, a truncated file, a flipped byte and another
 * configuration are refused with -EINVAL and a sentence, never a crash. */
Test(snapshot, bad_files_refused)
{
    struct sim_domain *d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct sim_snapshot *s, *r = NULL;
    SETUP(sim_snapshot_take(d, &s));
    char path[] = "/tmp/vmisim-snap-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    SETUP(sim_snapshot_write(d, s, path));
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *good = malloc((size_t)n), *bad = malloc((size_t)n);
    cr_assert_eq(fread(good, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    struct { const char *what, *says; long at; int delta; long len; } cases[] = {
        {"bad magic", "magic", 0, 1, n},
        {"wrong version", "version", 8, 1, n},
        {"truncated header", "shorter", -1, 0, 20},
        {"truncated body", "truncated", -1, 0, n / 2},
        {"flipped RAM byte", "damaged", n / 2, 0x55, n},
        {"other RAM size", "RAM", 32, 0x10, n},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, good, (size_t)n);
        if (cases[i].at >= 0)
            bad[cases[i].at] ^= (uint8_t)cases[i].delta;
        write_bytes(path, bad, (size_t)cases[i].len);
        int rc = sim_snapshot_read(d, path, &r);
        cr_assert_eq(rc, -EINVAL, "%s: rc %d", cases[i].what, rc);
        cr_assert_null(r);
        cr_assert(strstr(sim_error(d), cases[i].says) != NULL, "%s: message \"%s\"", cases[i].what,
                  sim_error(d));
    }
    cr_assert_eq(sim_snapshot_read(d, "/nonexistent/x", &r), -ENOENT);
    /* A snapshot of another configuration, in memory. */
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM * 2, .nr_vcpus = 1};
    struct sim_domain *other = fixture_domain_cfg(&cfg, two_stores, sizeof(two_stores), FIX_DATA_GLA, 1);
    cr_assert_eq(sim_snapshot_restore(other, s), -EINVAL);
    cr_assert(strstr(sim_error(other), "another domain") || strstr(sim_error(other), "RAM"),
              "message: %s", sim_error(other));
    sim_domain_destroy(other);
    unlink(path);
    free(good);
    free(bad);
    sim_snapshot_free(s);
    sim_domain_destroy(d);
}

/* movabs rax, imm64 ; mov [rbx], rax ; hlt — the guest then rewrites the immediate. */
static const uint8_t smc[] = {0x48, 0xb8, 1, 0, 0, 0, 0, 0, 0, 0, 0x48, 0x89, 0x03, 0xf4};

/* Proves: after restore, code whose bytes changed since the take (and had been translated)
 * runs as restored, not as the stale translation. */
Test(snapshot, restored_code_runs_not_stale_translation)
{
    struct sim_domain *d = fixture_domain(1, smc, sizeof(smc), FIX_DATA_GLA);
    struct sim_snapshot *s;
    SETUP(sim_snapshot_take(d, &s));
    fixture_run_until_idle(d);
    cr_assert_eq(data64(d, 0), 1);
    /* The code changes (as a guest or an injector would) and runs, so its new translation exists. */
    SETUP(sim_snapshot_restore(d, s));
    uint8_t two = 2;
    SETUP(sim_mem_write(d, FIX_CODE_GPA + 2, &two, 1));
    fixture_run_until_idle(d);
    cr_assert_eq(data64(d, 0), 2, "the rewritten code did not run");
    SETUP(sim_snapshot_restore(d, s));
    struct sim_stop stop = fixture_run_until_idle(d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_assert_eq(data64(d, 0), 1, "the stale translation (immediate 2) ran after the restore");
    sim_snapshot_free(s);
    sim_domain_destroy(d);
}

/* Proves: take and restore refuse inside sim_run's in-process client and across domains. */
Test(snapshot, refusals)
{
    struct sim_domain *d = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct sim_domain *e = fixture_domain(1, two_stores, sizeof(two_stores), FIX_DATA_GLA);
    struct sim_snapshot *s;
    SETUP(sim_snapshot_take(d, &s));
    cr_assert_eq(sim_snapshot_restore(e, s), -EINVAL);
    cr_assert(strstr(sim_error(e), "another domain"), "message: %s", sim_error(e));
    d->in_run = true;
    struct sim_snapshot *t;
    cr_assert_eq(sim_snapshot_take(d, &t), -EBUSY);
    cr_assert_eq(sim_snapshot_restore(d, s), -EBUSY);
    d->in_run = false;
    /* The domain goes first: the snapshot stays valid to free. */
    sim_domain_destroy(d);
    sim_snapshot_free(s);
    sim_domain_destroy(e);
}
