/* tests/guest/guest.c — guest RAM, page tables, GDT/IDT and boot registers for cpu/ tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

#define PTE_P 1ull
#define PTE_RW 2ull
#define PTE_US 4ull
#define PTE_PS 0x80ull
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
#define TABLES_START 0x10000ull
#define TABLES_END 0x100000ull

static uint64_t alloc_table(struct guest *g)
{
    if (g->next_table + 4096 > TABLES_END || g->next_table + 4096 > g->size)
        return 0;
    uint64_t a = g->next_table;
    g->next_table += 4096;
    memset(g->ram + a, 0, 4096);
    return a;
}

uint64_t guest_read64(const struct guest *g, uint64_t gpa)
{
    uint64_t v = 0;
    if (gpa <= g->size - 8)
        memcpy(&v, g->ram + gpa, 8);
    return v;
}

void guest_write64(struct guest *g, uint64_t gpa, uint64_t v)
{
    if (gpa <= g->size - 8)
        memcpy(g->ram + gpa, &v, 8);
}

int guest_init(struct guest *g, enum cpu_mode mode, uint64_t ram_size)
{
    memset(g, 0, sizeof(*g));
    g->mode = mode;
    g->size = ram_size;
    g->ram = aligned_alloc(4096, ram_size);
    if (!g->ram)
        return -ENOMEM;
    memset(g->ram, 0, ram_size);
    g->next_table = TABLES_START;
    g->cr3 = alloc_table(g);
    return g->cr3 ? 0 : -ENOMEM;
}

void guest_fini(struct guest *g)
{
    free(g->ram);
    g->ram = NULL;
}

/* Top level and index shift of the walk for this mode. */
static int top_level(const struct guest *g)
{
    return g->mode == CPU_MODE_LONG ? 3 : 1;
}

static uint64_t table_of_level(struct guest *g, uint64_t gla, int want, bool create)
{
    uint64_t table;
    if (g->mode == CPU_MODE_LONG) {
        table = g->cr3;
    } else {
        uint64_t e = guest_read64(g, g->cr3 + ((gla >> 30) & 3) * 8);
        if (!(e & PTE_P)) {
            if (!create)
                return 0;
            uint64_t t = alloc_table(g);
            if (!t)
                return 0;
            e = t | PTE_P;
            guest_write64(g, g->cr3 + ((gla >> 30) & 3) * 8, e);
        }
        table = e & PTE_ADDR;
    }
    for (int l = top_level(g); l > want; l--) {
        uint64_t egpa = table + ((gla >> (12 + 9 * l)) & 511) * 8;
        uint64_t e = guest_read64(g, egpa);
        if (!(e & PTE_P)) {
            if (!create)
                return 0;
            uint64_t t = alloc_table(g);
            if (!t)
                return 0;
            e = t | PTE_P | PTE_RW | PTE_US;
            guest_write64(g, egpa, e);
        } else if (e & PTE_PS) {
            return 0;
        }
        table = e & PTE_ADDR;
    }
    return table;
}

int guest_map(struct guest *g, uint64_t gla, uint64_t gpa, uint64_t len, uint64_t page_size,
              unsigned flags)
{
    int level = page_size == 4096 ? 0 : page_size == (2ull << 20) ? 1 : page_size == (1ull << 30) ? 2 : -1;
    if (level < 0 || level > top_level(g) || (gla | gpa | len) & (page_size - 1))
        return -EINVAL;
    for (uint64_t off = 0; off < len; off += page_size) {
        uint64_t t = table_of_level(g, gla + off, level, true);
        if (!t)
            return -ENOMEM;
        uint64_t e = (gpa + off) | PTE_P | (flags & GUEST_W ? PTE_RW : 0)
                     | (flags & GUEST_U ? PTE_US : 0) | (flags & GUEST_NX ? PTE_NX : 0)
                     | (level ? PTE_PS : 0);
        guest_write64(g, t + (((gla + off) >> (12 + 9 * level)) & 511) * 8, e);
    }
    return 0;
}

uint64_t guest_pte_gpa(const struct guest *g, uint64_t gla, int level)
{
    uint64_t t = table_of_level((struct guest *)g, gla, level, false);
    return t ? t + ((gla >> (12 + 9 * level)) & 511) * 8 : 0;
}

int guest_standard(struct guest *g, const char *program_path)
{
    int rc;
    if ((rc = guest_map(g, 0, 0, 0x100000, 4096, GUEST_W)) < 0
        || (rc = guest_map(g, GUEST_CODE_GLA, GUEST_CODE_GPA, 0x10000, 4096, GUEST_W)) < 0
        || (rc = guest_map(g, GUEST_STACK_GLA, GUEST_STACK_GPA, 0x10000, 4096, GUEST_W | GUEST_NX)) < 0
        || (rc = guest_map(g, GUEST_DATA_GLA, GUEST_DATA_GPA, GUEST_DATA_SIZE, 4096, GUEST_W | GUEST_NX)) < 0)
        return rc;
    FILE *f = fopen(program_path, "rb");
    if (!f)
        return -errno;
    size_t n = fread(g->ram + GUEST_CODE_GPA, 1, 0x10000, f);
    fclose(f);
    return n ? 0 : -EIO;
}

struct cpu_memory guest_memory(struct guest *g)
{
    return (struct cpu_memory){.ram = g->ram, .size = g->size};
}

int guest_boot(struct guest *g, struct cpu *c)
{
    bool lm = g->mode == CPU_MODE_LONG;
    uint64_t gdt[3] = {0, lm ? 0x00209a0000000000ull : 0x00cf9a000000ffffull,
                       lm ? 0x0000920000000000ull : 0x00cf92000000ffffull};
    memcpy(g->ram + GUEST_GDT_GPA, gdt, sizeof(gdt));
    for (unsigned v = 0; v < 32; v++) {
        uint64_t h = GUEST_CODE_GLA + 0x100 + 16 * v;
        uint8_t gate[16] = {0};
        gate[0] = (uint8_t)h;
        gate[1] = (uint8_t)(h >> 8);
        gate[2] = 0x08;
        gate[5] = 0x8e;
        gate[6] = (uint8_t)(h >> 16);
        gate[7] = (uint8_t)(h >> 24);
        if (lm) {
            uint32_t hi = (uint32_t)(h >> 32);
            memcpy(gate + 8, &hi, 4);
            memcpy(g->ram + GUEST_IDT_GPA + 16 * v, gate, 16);
        } else {
            memcpy(g->ram + GUEST_IDT_GPA + 8 * v, gate, 8);
        }
    }
    struct cpu_regs r;
    int rc = cpu_get_regs(c, &r);
    if (rc < 0)
        return rc;
    r.cr3 = g->cr3;
    r.cr4 = 0x20 | 0x200 | 0x40000; /* PAE, OSFXSR, OSXSAVE */
    r.efer |= 0x800;                /* NXE */
    r.cr0 = 0x80010011;             /* PG, WP, ET, PE */
    r.rsp = GUEST_STACK_TOP;
    r.rip = GUEST_CODE_GLA;
    r.rflags = 2;
    r.gdtr_base = GUEST_GDT_GPA;
    r.gdtr_limit = sizeof(gdt) - 1;
    r.idtr_base = GUEST_IDT_GPA;
    r.idtr_limit = lm ? 32 * 16 - 1 : 32 * 8 - 1;
    if (lm) {
        r.cs.selector = 0x08;
        r.ss.selector = r.ds.selector = r.es.selector = 0x10;
    }
    return cpu_set_regs(c, &r);
}
