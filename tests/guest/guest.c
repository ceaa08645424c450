/* tests/guest/guest.c — guest RAM, page tables, GDT/IDT and boot registers for cpu/ tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

#define TABLES_START 0x10000ull
#define TABLES_END 0x100000ull

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
    /* The tables live in the identity-mapped first MiB, below the GDT/IDT-free area. */
    int rc = guest_build_init(&g->build, g->ram, ram_size, mode, TABLES_START, TABLES_END, NULL, 0);
    g->cr3 = g->build.root;
    return rc;
}

void guest_fini(struct guest *g)
{
    free(g->ram);
    g->ram = NULL;
}

int guest_map(struct guest *g, uint64_t gla, uint64_t gpa, uint64_t len, uint64_t page_size,
              unsigned flags)
{
    unsigned rights = (flags & GUEST_W ? GUEST_BUILD_W : 0) | (flags & GUEST_U ? GUEST_BUILD_U : 0)
                      | (flags & GUEST_NX ? 0 : GUEST_BUILD_X);
    return guest_build_map(&g->build, gla, gpa, len, page_size, rights);
}

uint64_t guest_pte_gpa(const struct guest *g, uint64_t gla, int level)
{
    return level < 0 ? 0 : guest_build_entry_gpa(&g->build, gla, (unsigned)level);
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
    uint16_t gdt_limit = guest_build_gdt(&g->build, GUEST_GDT_GPA);
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
    guest_build_boot_regs(&g->build, &r, GUEST_CODE_GLA, GUEST_GDT_GPA, gdt_limit);
    r.rsp = GUEST_STACK_TOP;
    r.idtr_base = GUEST_IDT_GPA;
    r.idtr_limit = lm ? 32 * 16 - 1 : 32 * 8 - 1;
    return cpu_set_regs(c, &r);
}
