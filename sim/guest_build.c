/* sim/guest_build.c — page tables, GDT and boot registers (see guest_build_internal.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "guest_build_internal.h"

#define PTE_P 1ull
#define PTE_RW 2ull
#define PTE_US 4ull
#define PTE_PS 0x80ull
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

static int fail(struct guest_build *b, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct guest_build *b, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->error, sizeof(b->error), fmt, ap);
    va_end(ap);
    return err;
}

/* The one way in to guest RAM: NULL unless [gpa, gpa + len) lies inside it. */
static uint8_t *gb_ptr(const struct guest_build *b, uint64_t gpa, uint64_t len)
{
    if (gpa > b->ram_size || len > b->ram_size - gpa)
        return NULL;
    return b->ram + gpa;
}

static uint64_t rd64(const struct guest_build *b, uint64_t gpa)
{
    uint64_t v = 0;
    const uint8_t *p = gb_ptr(b, gpa, 8);
    if (p)
        memcpy(&v, p, 8);
    return v;
}

static void wr64(struct guest_build *b, uint64_t gpa, uint64_t v)
{
    uint8_t *p = gb_ptr(b, gpa, 8);
    if (p)
        memcpy(p, &v, 8);
}

static bool avoided(const struct guest_build *b, uint64_t frame)
{
    for (size_t i = 0; i < b->nr_avoid; i++)
        if (frame < b->avoid[i].gpa + b->avoid[i].size && b->avoid[i].gpa < frame + CPU_PAGE_SIZE)
            return true;
    return false;
}

uint64_t guest_build_alloc(struct guest_build *b)
{
    while (b->next_frame >= b->lo && b->next_frame != UINT64_MAX) {
        uint64_t f = b->next_frame;
        b->next_frame = f >= CPU_PAGE_SIZE ? f - CPU_PAGE_SIZE : UINT64_MAX;
        uint8_t *p = gb_ptr(b, f, CPU_PAGE_SIZE);
        if (!p || avoided(b, f))
            continue;
        memset(p, 0, CPU_PAGE_SIZE);
        b->tables++;
        return f;
    }
    return 0;
}

int guest_build_init(struct guest_build *b, uint8_t *ram, uint64_t ram_size, enum cpu_mode mode,
                     uint64_t lo, uint64_t hi, const struct guest_build_range *avoid, size_t nr_avoid)
{
    memset(b, 0, sizeof(*b));
    b->ram = ram;
    b->ram_size = ram_size;
    b->mode = mode;
    b->avoid = avoid;
    b->nr_avoid = nr_avoid;
    if (hi > ram_size)
        hi = ram_size;
    b->lo = (lo + CPU_PAGE_SIZE - 1) & ~(uint64_t)(CPU_PAGE_SIZE - 1);
    b->next_frame = hi >= CPU_PAGE_SIZE ? (hi & ~(uint64_t)(CPU_PAGE_SIZE - 1)) - CPU_PAGE_SIZE : UINT64_MAX;
    b->root = guest_build_alloc(b);
    if (!b->root)
        return fail(b, -ENOMEM, "no free guest-physical frame for the page tables: leave some "
                                "RAM outside the mappings and data");
    return 0;
}

/* Levels: 0 = PT, 1 = PD, 2 = PDPT, 3 = PML4 (long mode); PAE starts at its 4-entry PDPT. */
static unsigned top_level(const struct guest_build *b)
{
    return b->mode == CPU_MODE_LONG ? 3 : 2;
}

static uint64_t entry_in(const struct guest_build *b, uint64_t table, uint64_t gla, unsigned level)
{
    if (b->mode == CPU_MODE_PAE32 && level == 2)
        return table + ((gla >> 30) & 3) * 8;
    return table + ((gla >> (12 + 9 * level)) & 511) * 8;
}

/* The table of `level` for gla, created on the way when `create`; 0 when absent. */
static uint64_t table_for(struct guest_build *b, uint64_t gla, unsigned level, bool create)
{
    uint64_t table = b->root;
    for (unsigned l = top_level(b); l > level; l--) {
        uint64_t egpa = entry_in(b, table, gla, l);
        uint64_t e = rd64(b, egpa);
        if (!(e & PTE_P)) {
            if (!create)
                return 0;
            uint64_t t = guest_build_alloc(b);
            if (!t)
                return 0;
            /* PAE PDPTEs have no R/W or U/S bits (they are reserved there). */
            e = t | PTE_P | (b->mode == CPU_MODE_PAE32 && l == 2 ? 0 : PTE_RW | PTE_US);
            wr64(b, egpa, e);
        } else if (e & PTE_PS) {
            return 0;
        }
        table = e & PTE_ADDR;
    }
    return table;
}

int guest_build_map(struct guest_build *b, uint64_t gla, uint64_t gpa, uint64_t size, uint64_t page,
                    unsigned rights)
{
    unsigned level = page == 4096 ? 0 : page == (2ull << 20) ? 1 : page == (1ull << 30) ? 2 : 9;
    if (level == 9 || (b->mode == CPU_MODE_PAE32 && level > 1))
        return fail(b, -EINVAL, "pages of %#llx bytes do not exist in this mode", (unsigned long long)page);
    if (size == 0 || (gla | gpa | size) & (page - 1))
        return fail(b, -EINVAL, "gla %#llx, gpa %#llx and size %#llx must be non-zero multiples of "
                    "the page size %#llx", (unsigned long long)gla, (unsigned long long)gpa,
                    (unsigned long long)size, (unsigned long long)page);
    if (gla + size - 1 < gla)
        return fail(b, -EINVAL, "gla %#llx + size %#llx wraps around", (unsigned long long)gla,
                    (unsigned long long)size);
    uint64_t last = gla + size - 1;
    if (b->mode == CPU_MODE_LONG) {
        if (!(last < 0x0000800000000000ull || gla >= 0xffff800000000000ull))
            return fail(b, -EINVAL, "gla range %#llx-%#llx is not canonical", (unsigned long long)gla,
                        (unsigned long long)last);
    } else if (last > 0xffffffffull) {
        return fail(b, -EINVAL, "gla %#llx is beyond 4 GiB in 32-bit mode", (unsigned long long)last);
    }
    for (uint64_t off = 0; off < size; off += page) {
        uint64_t t = table_for(b, gla + off, level, true);
        if (!t)
            return fail(b, -ENOMEM, "no room for the page tables of gla %#llx (or it is already "
                                    "mapped by a larger page)", (unsigned long long)(gla + off));
        uint64_t e = (gpa + off) | PTE_P | (rights & GUEST_BUILD_W ? PTE_RW : 0)
                     | (rights & GUEST_BUILD_U ? PTE_US : 0) | (rights & GUEST_BUILD_X ? 0 : PTE_NX)
                     | (level ? PTE_PS : 0);
        wr64(b, entry_in(b, t, gla + off, level), e);
    }
    return 0;
}

uint64_t guest_build_entry_gpa(const struct guest_build *b, uint64_t gla, unsigned level)
{
    if (level > top_level(b))
        return 0;
    uint64_t t = table_for((struct guest_build *)b, gla, level, false);
    return t ? entry_in(b, t, gla, level) : 0;
}

/* Writes the first `n` descriptors of the flat GDT at gdt_gpa; returns the limit. */
static uint16_t write_gdt(struct guest_build *b, uint64_t gdt_gpa, size_t n)
{
    bool lm = b->mode == CPU_MODE_LONG;
    /*
     * The ring-3 descriptors are flat (base 0, 4 GiB) with DPL 3 and their
     * accessed bit already set, so loading them never writes to the GDT page
     * (the runner maps it read-only).  In long mode 0x18/0x20/0x28 are in the
     * order SYSRET expects with STAR[63:48] = 0x18 (compat CS, SS, 64-bit CS);
     * SYSEXIT with SYSENTER_CS = 0x08 lands on 0x1b/0x23.
     */
    const uint64_t gdt[6] = {
        0,
        lm ? 0x00209a0000000000ull : 0x00cf9a000000ffffull, /* 0x08 kernel code */
        lm ? 0x0000920000000000ull : 0x00cf92000000ffffull, /* 0x10 kernel data */
        0x00cffb000000ffffull,                              /* 0x18 user code, 32-bit */
        0x00cff3000000ffffull,                              /* 0x20 user data */
        0x00affb000000ffffull,                              /* 0x28 user code, 64-bit (long mode) */
    };
    uint8_t *p = gb_ptr(b, gdt_gpa, n * sizeof(gdt[0]));
    if (p)
        memcpy(p, gdt, n * sizeof(gdt[0]));
    return (uint16_t)(n * sizeof(gdt[0]) - 1);
}

uint16_t guest_build_gdt(struct guest_build *b, uint64_t gdt_gpa)
{
    return write_gdt(b, gdt_gpa, 3);
}

uint16_t guest_build_gdt_user(struct guest_build *b, uint64_t gdt_gpa)
{
    return write_gdt(b, gdt_gpa, b->mode == CPU_MODE_LONG ? 6 : 5);
}

void guest_build_boot_regs(const struct guest_build *b, struct cpu_regs *r, uint64_t entry,
                           uint64_t gdt_gla, uint16_t gdt_limit)
{
    r->cr3 = b->root;
    r->cr4 = 0x20 | 0x200 | 0x400 | 0x40000; /* PAE, OSFXSR, OSXMMEXCPT, OSXSAVE */
    r->efer |= 0x800;                        /* NXE */
    r->cr0 = 0x80010031;                     /* PG, WP, NE, ET, PE */
    r->rip = entry;
    r->rflags = 2;
    r->gdtr_base = gdt_gla;
    r->gdtr_limit = gdt_limit;
    if (b->mode == CPU_MODE_LONG) {
        /* In 32-bit mode cpu/ keeps the flat segments it was created with. */
        r->cs.selector = 0x08;
        r->ss.selector = r->ds.selector = r->es.selector = 0x10;
    }
}
