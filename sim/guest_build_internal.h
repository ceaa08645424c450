/*
 * sim/guest_build_internal.h — builds a guest's paging structures in guest
 * RAM from a mapping list, so neither scenario authors nor tests write page
 * tables by hand: 4-level long-mode or 32-bit PAE tables, a flat GDT, and the
 * control registers that boot a vCPU with paging on.
 *
 * Table frames come from [lo, hi) of guest RAM, highest first, skipping every
 * frame in the `avoid` ranges (what the author's mappings, data and code
 * use).  The builder only ever touches RAM through its own bounds-checked
 * accessor.  Used by the scenario runner (sim/runner.c) and by the cpu/
 * tests' guest runtime (tests/guest/guest.c).
 */
#ifndef VMISIM_GUEST_BUILD_INTERNAL_H
#define VMISIM_GUEST_BUILD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"

/* Rights of a mapping (r is implied). */
#define GUEST_BUILD_W 1u
#define GUEST_BUILD_X 2u
#define GUEST_BUILD_U 4u

struct guest_build_range {
    uint64_t gpa, size;
};

struct guest_build {
    uint8_t *ram;
    uint64_t ram_size;
    enum cpu_mode mode;
    uint64_t root;       /* CR3: the PML4 (long mode) or the PDPT (PAE) */
    uint64_t lo;         /* lowest frame tables may use */
    uint64_t next_frame; /* next candidate, counting down; < lo: none left */
    const struct guest_build_range *avoid;
    size_t nr_avoid;
    unsigned tables;     /* frames handed out */
    char error[200];
};

/*
 * Starts a builder over `ram` that takes table frames from [lo, hi).  `avoid`
 * (may be NULL) must outlive it.  0, or a negative errno with b->error set.
 */
int guest_build_init(struct guest_build *b, uint8_t *ram, uint64_t ram_size, enum cpu_mode mode,
                     uint64_t lo, uint64_t hi, const struct guest_build_range *avoid, size_t nr_avoid);
/* A zeroed frame from the table area (for a GDT, an IDT ...); 0 when none is left. */
uint64_t guest_build_alloc(struct guest_build *b);
/* Maps [gla, gla + size) to [gpa, ...) in pages of `page` bytes (4K, 2M, 1G); GUEST_BUILD_* rights. */
int guest_build_map(struct guest_build *b, uint64_t gla, uint64_t gpa, uint64_t size, uint64_t page,
                    unsigned rights);
/*
 * Guest-physical address of the paging entry for `gla` at `level` (0: the
 * PTE, 1: the PDE, 2: the PDPTE, 3: the PML4E), or 0 when the walk does not
 * reach that level.  Its frame is the page-table page a FAULT_IN_GPT names.
 */
uint64_t guest_build_entry_gpa(const struct guest_build *b, uint64_t gla, unsigned level);
/* Writes a flat GDT (null, code, data: selectors 0x08 and 0x10) at gdt_gpa; returns its limit. */
uint16_t guest_build_gdt(struct guest_build *b, uint64_t gdt_gpa);
/*
 * The same GDT followed by DPL-3 segments for ring 3 (what the scenario
 * runner writes): user code 0x18 (32-bit), user data 0x20, and in long mode
 * user code 0x28 (64-bit); with RPL 3 the selectors are 0x1b, 0x23, 0x2b.
 * Returns its limit (0x2f in long mode, 0x27 in PAE mode).
 */
uint16_t guest_build_gdt_user(struct guest_build *b, uint64_t gdt_gpa);
/*
 * Sets the registers that run the built tables: CR0 (PE, PG, WP, NE, ET), CR3,
 * CR4 (PAE, OSFXSR, OSXMMEXCPT, OSXSAVE), EFER.NXE, GDTR, flat selectors,
 * RFLAGS = 2, RIP = entry.  The rest of *r is left as it is.
 */
void guest_build_boot_regs(const struct guest_build *b, struct cpu_regs *r, uint64_t entry,
                           uint64_t gdt_gla, uint16_t gdt_limit);

#endif
