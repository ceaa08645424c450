/*
 * tests/guest/guest.h — builds a guest for cpu/ tests and scenarios: guest RAM,
 * page tables from a mapping list (4-level long mode or 32-bit PAE), GDT and
 * IDT, a program assembled from tests/guest/ (nasm), and the registers to boot it.
 *
 * Standard layout (guest_standard):
 *   GPA 0x000000-0x0fffff  identity-mapped at GLA 0 (GDT 0x2000, IDT 0x3000; tables from 0x10000)
 *   GPA 0x100000 (64 KiB)  the program, at GLA GUEST_CODE_GLA
 *   GPA 0x200000 (64 KiB)  the stack, at GLA GUEST_STACK_GLA (top = GUEST_STACK_TOP)
 *   GPA 0x400000 (8 MiB)   data, at GLA GUEST_DATA_GLA, 4 KiB pages, writable, NX
 */
#ifndef VMISIM_TESTS_GUEST_H
#define VMISIM_TESTS_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "guest_build_internal.h"

#define GUEST_RAM_SIZE (16ull << 20)
#define GUEST_CODE_GLA 0x400000ull
#define GUEST_CODE_GPA 0x100000ull
#define GUEST_STACK_GLA 0x800000ull
#define GUEST_STACK_GPA 0x200000ull
#define GUEST_STACK_TOP (GUEST_STACK_GLA + 0x10000)
#define GUEST_DATA_GLA 0x10000000ull
#define GUEST_DATA_GPA 0x400000ull
#define GUEST_DATA_SIZE (8ull << 20)
#define GUEST_GDT_GPA 0x2000ull
#define GUEST_IDT_GPA 0x3000ull
/* Runtime records (rt64.inc / rt32.inc), as GPAs. */
#define GUEST_RT_VECTOR (GUEST_CODE_GPA + 0x800)
#define GUEST_RT_ERROR (GUEST_CODE_GPA + 0x808)
#define GUEST_RT_CR2 (GUEST_CODE_GPA + 0x810)
#define GUEST_RT_RIP (GUEST_CODE_GPA + 0x818)

/* Mapping flags. */
#define GUEST_W 1u
#define GUEST_U 2u
#define GUEST_NX 4u

struct guest {
    enum cpu_mode mode;
    uint8_t *ram;
    uint64_t size;
    uint64_t cr3;
    struct guest_build build; /* page tables: sim/guest_build.c */
};

/* Allocates zeroed RAM and the root table.  0 or -errno. */
int guest_init(struct guest *g, enum cpu_mode mode, uint64_t ram_size);
void guest_fini(struct guest *g);
/* Maps [gla, gla+len) to [gpa, ...) with pages of page_size (4K, 2M, 1G). */
int guest_map(struct guest *g, uint64_t gla, uint64_t gpa, uint64_t len, uint64_t page_size,
              unsigned flags);
/* GPA of the entry mapping `gla` at `level` (0 = PTE, 1 = PDE, ...), 0 if none. */
uint64_t guest_pte_gpa(const struct guest *g, uint64_t gla, int level);
/* The standard layout above; loads the program file at GUEST_CODE_GPA. */
int guest_standard(struct guest *g, const char *program_path);
/* Boots the vCPU: paging, GDT/IDT (32 gates at the runtime's stubs), RSP, RIP = code start. */
int guest_boot(struct guest *g, struct cpu *c);
/* A cpu_memory over the guest's RAM (no restrictions). */
struct cpu_memory guest_memory(struct guest *g);
/* Little helpers over the RAM (abort-free: out-of-range reads give 0). */
uint64_t guest_read64(const struct guest *g, uint64_t gpa);
void guest_write64(struct guest *g, uint64_t gpa, uint64_t v);

#endif
