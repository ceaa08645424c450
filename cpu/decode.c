/*
 * cpu/decode.c — Capstone: the lazy interception scheme (BLOCK hook scan,
 * narrow CODE hooks), the decoded instruction handed to the layer above, and
 * the byte-exact memory accesses of an instruction (for access reports, CR2,
 * and read data of one-instruction emulation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

/* ---- Registers by Capstone id --------------------------------------------- */

struct gpr_map {
    x86_reg cs;
    int uc;
    unsigned bytes;
    unsigned shift; /* 8 for AH..BH */
};

#define G64(n) {X86_REG_R##n, UC_X86_REG_R##n, 8, 0}, {X86_REG_E##n, UC_X86_REG_R##n, 4, 0}, \
               {X86_REG_##n, UC_X86_REG_R##n, 2, 0}
#define GNUM(n) {X86_REG_R##n, UC_X86_REG_R##n, 8, 0}, {X86_REG_R##n##D, UC_X86_REG_R##n, 4, 0}, \
                {X86_REG_R##n##W, UC_X86_REG_R##n, 2, 0}, {X86_REG_R##n##B, UC_X86_REG_R##n, 1, 0}

static const struct gpr_map gprs[] = {
    G64(AX), G64(BX), G64(CX), G64(DX), G64(SI), G64(DI), G64(BP), G64(SP),
    GNUM(8), GNUM(9), GNUM(10), GNUM(11), GNUM(12), GNUM(13), GNUM(14), GNUM(15),
    {X86_REG_AL, UC_X86_REG_RAX, 1, 0}, {X86_REG_BL, UC_X86_REG_RBX, 1, 0},
    {X86_REG_CL, UC_X86_REG_RCX, 1, 0}, {X86_REG_DL, UC_X86_REG_RDX, 1, 0},
    {X86_REG_AH, UC_X86_REG_RAX, 1, 8}, {X86_REG_BH, UC_X86_REG_RBX, 1, 8},
    {X86_REG_CH, UC_X86_REG_RCX, 1, 8}, {X86_REG_DH, UC_X86_REG_RDX, 1, 8},
    {X86_REG_SIL, UC_X86_REG_RSI, 1, 0}, {X86_REG_DIL, UC_X86_REG_RDI, 1, 0},
    {X86_REG_BPL, UC_X86_REG_RBP, 1, 0}, {X86_REG_SPL, UC_X86_REG_RSP, 1, 0},
    {X86_REG_RIP, UC_X86_REG_RIP, 8, 0}, {X86_REG_EIP, UC_X86_REG_RIP, 4, 0},
};

static uint64_t reg_value(struct cpu *c, x86_reg r)
{
    for (size_t i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++)
        if (gprs[i].cs == r) {
            uint64_t v = 0;
            uc_reg_read(c->uc, cpu_reg_id(c->mode, gprs[i].uc), &v);
            v >>= gprs[i].shift;
            return gprs[i].bytes == 8 ? v : v & ((1ull << (8 * gprs[i].bytes)) - 1);
        }
    return 0;
}

/* ---- Decoding -------------------------------------------------------------- */

int cpu_decode_at(struct cpu *c, uint64_t rip, cs_insn **out)
{
    uint8_t buf[16];
    /* Read as many bytes as are readable (the instruction may end before an unmapped page):
     * readability is per page, so the bytes in RIP's page, then those in the next one. */
    size_t n = CPU_PAGE_SIZE - (size_t)(rip & (CPU_PAGE_SIZE - 1));
    if (n > sizeof(buf))
        n = sizeof(buf);
    if (cpu_read_gla(c, rip, buf, n) < 0)
        return -EFAULT;
    if (n < sizeof(buf) && cpu_read_gla(c, rip + n, buf + n, sizeof(buf) - n) == 0)
        n = sizeof(buf);
    cs_insn *insn;
    if (cs_disasm(c->cs, buf, n, rip, 1, &insn) != 1)
        return -EILSEQ;
    *out = insn;
    return 0;
}

/* The reusable instruction of scans (cpu_internal.h), or NULL without memory. */
static cs_insn *scan_insn(struct cpu *c)
{
    if (!c->scan)
        c->scan = cs_malloc(c->cs);
    return c->scan;
}

/*
 * Copies up to `len` bytes of guest code at `gla` into buf, page by page as long as the pages
 * are readable; returns how many.
 */
static size_t read_code(struct cpu *c, uint64_t gla, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t chunk = CPU_PAGE_SIZE - (size_t)((gla + done) & (CPU_PAGE_SIZE - 1));
        if (chunk > len - done)
            chunk = len - done;
        if (cpu_read_gla(c, gla + done, buf + done, chunk) < 0)
            break;
        done += chunk;
    }
    return done;
}

static uint64_t mem_address(struct cpu *c, const cs_insn *in, const cs_x86_op *op)
{
    const x86_op_mem *m = &op->mem;
    uint64_t a = (uint64_t)m->disp;
    if (m->base == X86_REG_RIP || m->base == X86_REG_EIP)
        a += in->address + in->size;
    else if (m->base != X86_REG_INVALID)
        a += reg_value(c, m->base);
    if (m->index != X86_REG_INVALID)
        a += reg_value(c, m->index) * (uint64_t)m->scale;
    if (in->detail->x86.addr_size == 4)
        a &= 0xffffffffull;
    if (m->segment == X86_REG_FS || m->segment == X86_REG_GS) {
        uint64_t base = 0;
        uc_reg_read(c->uc, m->segment == X86_REG_FS ? UC_X86_REG_FS_BASE : UC_X86_REG_GS_BASE,
                    &base);
        a += base;
    }
    if (c->mode != CPU_MODE_LONG)
        a &= 0xffffffffull;
    return a;
}

static unsigned add_acc(struct cpu_macc *acc, unsigned n, unsigned max, uint64_t gla,
                        uint32_t size, unsigned kind)
{
    if (n < max)
        acc[n++] = (struct cpu_macc){.gla = gla, .size = size, .kind = kind};
    return n;
}

/* The standard-format XSAVE area for the features XCR0 enables: legacy 512 + header 64 (+ AVX 256). */
static uint32_t xsave_size(const struct cpu *c)
{
    return 512 + 64 + ((c->xcr0 & 4) ? 256 : 0);
}

static unsigned accesses_of(struct cpu *c, const cs_insn *in, struct cpu_macc *acc, unsigned max)
{
    unsigned n = add_acc(acc, 0, max, in->address, in->size, CPU_X);
    const cs_x86 *x = &in->detail->x86;
    unsigned word = c->mode == CPU_MODE_LONG ? 8 : 4;
    uint64_t rsp = reg_value(c, X86_REG_RSP);
    if (c->mode != CPU_MODE_LONG)
        rsp &= 0xffffffffull;
    bool lea = in->id == X86_INS_LEA || in->id == X86_INS_NOP;
    for (unsigned i = 0; i < x->op_count && !lea; i++) {
        const cs_x86_op *op = &x->operands[i];
        if (op->type != X86_OP_MEM)
            continue;
        uint64_t a = mem_address(c, in, op);
        uint32_t size = op->size;
        if (in->id == X86_INS_LGDT || in->id == X86_INS_LIDT || in->id == X86_INS_SGDT
            || in->id == X86_INS_SIDT)
            size = 2 + word;
        unsigned acc_flags = op->access ? op->access : CS_AC_READ;
        if (in->id == X86_INS_SGDT || in->id == X86_INS_SIDT || in->id == X86_INS_SLDT
            || in->id == X86_INS_STR)
            acc_flags = CS_AC_WRITE;
        /* The FPU/SSE image (Capstone gives these operands no useful size). */
        switch (in->id) {
        case X86_INS_FXSAVE:
        case X86_INS_FXSAVE64:
            size = 512;
            acc_flags = CS_AC_WRITE;
            break;
        case X86_INS_FXRSTOR:
        case X86_INS_FXRSTOR64:
            size = 512;
            acc_flags = CS_AC_READ;
            break;
        case X86_INS_XSAVE:
        case X86_INS_XSAVE64:
        case X86_INS_XSAVEOPT:
        case X86_INS_XSAVEOPT64:
            size = xsave_size(c);
            acc_flags = CS_AC_WRITE;
            break;
        case X86_INS_XRSTOR:
        case X86_INS_XRSTOR64:
            size = xsave_size(c);
            acc_flags = CS_AC_READ;
            break;
        default:
            break;
        }
        if (acc_flags & CS_AC_READ)
            n = add_acc(acc, n, max, a, size, CPU_R);
        if (acc_flags & CS_AC_WRITE)
            n = add_acc(acc, n, max, a, size, CPU_W);
    }
    switch (in->id) {
    case X86_INS_PUSH:
    case X86_INS_PUSHFQ:
    case X86_INS_PUSHFD:
    case X86_INS_CALL:
        n = add_acc(acc, n, max, rsp - word, word, CPU_W);
        break;
    case X86_INS_POP:
    case X86_INS_POPFQ:
    case X86_INS_POPFD:
    case X86_INS_RET:
        n = add_acc(acc, n, max, rsp, word, CPU_R);
        break;
    case X86_INS_LEAVE:
        n = add_acc(acc, n, max, reg_value(c, X86_REG_RBP), word, CPU_R);
        break;
    case X86_INS_IRETQ:
        n = add_acc(acc, n, max, rsp, 5 * 8, CPU_R);
        break;
    case X86_INS_IRETD:
        n = add_acc(acc, n, max, rsp, 3 * 4, CPU_R);
        break;
    default:
        break;
    }
    return n;
}

unsigned cpu_insn_accesses(struct cpu *c, uint64_t rip, struct cpu_macc *acc, unsigned max)
{
    cs_insn *in;
    if (cpu_decode_at(c, rip, &in) < 0)
        return 0;
    unsigned n = accesses_of(c, in, acc, max);
    cs_free(in, 1);
    return n;
}

void cpu_access_detail(struct cpu *c, struct cpu_access *a, uint64_t page, unsigned kind)
{
    uint64_t rip = 0;
    uc_reg_read(c->uc, cpu_reg_id(c->mode, UC_X86_REG_RIP), &rip);
    struct cpu_macc acc[CPU_MAX_MACC];
    unsigned n = cpu_insn_accesses(c, rip, acc, CPU_MAX_MACC);
    uint64_t gpa_page = a->gpa & ~(uint64_t)(CPU_PAGE_SIZE - 1);
    uint64_t pend = page + CPU_PAGE_SIZE;
    for (unsigned i = 0; i < n; i++) {
        if (acc[i].kind != kind || acc[i].size == 0)
            continue;
        uint64_t s = acc[i].gla, e = acc[i].gla + acc[i].size;
        if (c->mode != CPU_MODE_LONG && e > 0x100000000ull)
            e = 0x100000000ull; /* wrap-around at 4 GiB is not modelled in the report */
        if (e <= page || s >= pend)
            continue;
        uint64_t lo = s > page ? s : page, hi = e < pend ? e : pend;
        a->exact = true;
        a->gla = lo;
        a->gpa = gpa_page | (lo & (CPU_PAGE_SIZE - 1));
        a->size = (uint32_t)(hi - lo);
        a->access_gla = acc[i].gla;
        a->access_size = acc[i].size;
        return;
    }
    a->exact = false;
    a->gla = page;
    a->gpa = gpa_page;
    a->size = 0;
    a->access_gla = page;
    a->access_size = 0;
}

/* ---- Intercepted instructions ----------------------------------------------- */

static int kind_of(const cs_insn *in, unsigned *cr)
{
    switch (in->id) {
    case X86_INS_VMCALL: return CPU_INSN_VMCALL;
    case X86_INS_VMMCALL: return CPU_INSN_VMMCALL;
    case X86_INS_INT3: return CPU_INSN_INT3;
    case X86_INS_XSETBV: return CPU_INSN_XSETBV;
    case X86_INS_WRMSR: return CPU_INSN_WRMSR;
    case X86_INS_RDMSR: return CPU_INSN_RDMSR;
    case X86_INS_CPUID: return CPU_INSN_CPUID;
    case X86_INS_HLT: return CPU_INSN_HLT;
    case X86_INS_VMFUNC: return CPU_INSN_VMFUNC;
    case X86_INS_LGDT: return CPU_INSN_LGDT;
    case X86_INS_LIDT: return CPU_INSN_LIDT;
    case X86_INS_LLDT: return CPU_INSN_LLDT;
    case X86_INS_LTR: return CPU_INSN_LTR;
    case X86_INS_SGDT: return CPU_INSN_SGDT;
    case X86_INS_SIDT: return CPU_INSN_SIDT;
    case X86_INS_SLDT: return CPU_INSN_SLDT;
    case X86_INS_STR: return CPU_INSN_STR;
    case X86_INS_INT1: return CPU_INSN_INT1;
    case X86_INS_MOV: {
        const cs_x86 *x = &in->detail->x86;
        if (x->op_count == 2 && x->operands[0].type == X86_OP_REG) {
            x86_reg r = x->operands[0].reg;
            if (r == X86_REG_CR0 || r == X86_REG_CR3 || r == X86_REG_CR4) {
                if (cr)
                    *cr = r == X86_REG_CR0 ? 0 : r == X86_REG_CR3 ? 3 : 4;
                return CPU_INSN_MOV_CR;
            }
            if (r >= X86_REG_DR0 && r <= X86_REG_DR15) {
                if (cr)
                    *cr = (unsigned)(r - X86_REG_DR0);
                return CPU_INSN_MOV_DR;
            }
        }
        return -1;
    }
    default:
        return -1;
    }
}

/* What cpu/ always watches, whatever the caller intercepts: XSETBV (XCR0), HLT, INT1 (#DB), MOV DR. */
static uint32_t watched(const struct cpu *c)
{
    return c->intercept | (1u << CPU_INSN_XSETBV) | (1u << CPU_INSN_HLT) | (1u << CPU_INSN_INT1)
           | (1u << CPU_INSN_MOV_DR);
}

/* VMX's register numbering in the instruction-information field: RAX 0 .. RDI 7, R8 8 .. R15 15. */
static int vmx_reg(x86_reg r)
{
    static const x86_reg n[16][4] = {
        {X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL}, {X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL},
        {X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL}, {X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL},
        {X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL}, {X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL},
        {X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL}, {X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL},
        {X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B}, {X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B},
        {X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B}, {X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B},
        {X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B}, {X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B},
        {X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B}, {X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B}};
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 4; j++)
            if (n[i][j] == r)
                return i;
    return -1;
}

/*
 * The VM-exit instruction-information field of exits 46 (LGDT/LIDT/SGDT/SIDT) and 47
 * (LLDT/LTR/SLDT/STR), as the SDM lays it out (Xen reads it in vmx.c
 * vmx_handle_descriptor_access through idt_or_gdt_instr_info_t / ldt_or_tr_instr_info_t),
 * and the exit qualification (the displacement).  Built from Capstone's decoding.
 */
static void desc_instr_info(const struct cpu *c, const cs_insn *d, enum cpu_insn_kind kind,
                            struct cpu_insn *in)
{
    const cs_x86 *x = &d->detail->x86;
    bool gdt_idt = kind == CPU_INSN_LGDT || kind == CPU_INSN_LIDT || kind == CPU_INSN_SGDT
                   || kind == CPU_INSN_SIDT;
    bool second = kind == CPU_INSN_SIDT || kind == CPU_INSN_LIDT || kind == CPU_INSN_STR
                  || kind == CPU_INSN_LTR;
    bool load = kind == CPU_INSN_LGDT || kind == CPU_INSN_LIDT || kind == CPU_INSN_LLDT
                || kind == CPU_INSN_LTR;
    uint32_t info = (uint32_t)second << 28 | (uint32_t)load << 29;
    in->displacement = 0;
    if (x->op_count >= 1 && x->operands[0].type == X86_OP_MEM) {
        const x86_op_mem *m = &x->operands[0].mem;
        unsigned scale = m->scale == 8 ? 3 : m->scale == 4 ? 2 : m->scale == 2 ? 1 : 0;
        unsigned asz = x->addr_size == 8 ? 2 : x->addr_size == 4 ? 1 : 0;
        int base = vmx_reg(m->base), index = vmx_reg(m->index);
        /* The segment used: the override, else SS for an RSP/RBP base, else DS (ES 0 .. GS 5). */
        unsigned seg = 3;
        switch (m->segment) {
        case X86_REG_ES: seg = 0; break;
        case X86_REG_CS: seg = 1; break;
        case X86_REG_SS: seg = 2; break;
        case X86_REG_DS: seg = 3; break;
        case X86_REG_FS: seg = 4; break;
        case X86_REG_GS: seg = 5; break;
        default: seg = (base == 4 || base == 5) ? 2 : 3; break;
        }
        info |= scale | asz << 7 | seg << 15;
        info |= index >= 0 ? (uint32_t)index << 18 : 1u << 22;
        /* RIP-relative: no base register, so "base invalid" (the SDM has no encoding for RIP). */
        info |= base >= 0 ? (uint32_t)base << 23 : 1u << 27;
        in->displacement = (uint64_t)m->disp;
        if (c->mode != CPU_MODE_LONG)
            in->displacement &= 0xffffffffull;
    } else if (!gdt_idt && x->op_count >= 1 && x->operands[0].type == X86_OP_REG) {
        int r = vmx_reg(x->operands[0].reg);
        info |= (uint32_t)(r < 0 ? 0 : r) << 3 | 1u << 10;
    }
    /* Operand size (GDT/IDT only): 0 with a 66 prefix (16-bit), else 1 (32-bit; undefined in 64-bit mode). */
    if (gdt_idt && x->prefix[2] != 0x66)
        info |= 1u << 11;
    in->instr_info = info;
}

int cpu_fill_insn(struct cpu *c, uint64_t rip, struct cpu_insn *in)
{
    cs_insn *d;
    int rc = cpu_decode_at(c, rip, &d);
    if (rc < 0)
        return rc;
    memset(in, 0, sizeof(*in));
    int k = kind_of(d, &in->cr);
    if (k < 0) {
        cs_free(d, 1);
        return -ENOENT;
    }
    in->kind = (enum cpu_insn_kind)k;
    in->rip = rip;
    in->len = (uint8_t)d->size;
    memcpy(in->bytes, d->bytes, d->size);
    size_t tl = strlen(d->mnemonic);
    memcpy(in->text, d->mnemonic, tl);
    if (d->op_str[0] && tl + 2 < sizeof(in->text)) {
        in->text[tl++] = ' ';
        size_t ol = strlen(d->op_str);
        if (ol > sizeof(in->text) - 1 - tl)
            ol = sizeof(in->text) - 1 - tl;
        memcpy(in->text + tl, d->op_str, ol);
        tl += ol;
    }
    in->text[tl] = 0;
    const cs_x86 *x = &d->detail->x86;
    uint64_t eax = reg_value(c, X86_REG_EAX), ecx = reg_value(c, X86_REG_ECX),
             edx = reg_value(c, X86_REG_EDX);
    in->valid = true;
    switch (in->kind) {
    case CPU_INSN_MOV_CR:
    case CPU_INSN_MOV_DR:
        in->value = reg_value(c, x->operands[1].reg);
        break;
    case CPU_INSN_WRMSR:
    case CPU_INSN_XSETBV:
        in->index = (uint32_t)ecx;
        in->value = edx << 32 | eax;
        break;
    case CPU_INSN_RDMSR:
        in->index = (uint32_t)ecx;
        break;
    case CPU_INSN_CPUID:
        in->index = (uint32_t)eax;
        in->sub = (uint32_t)ecx;
        break;
    case CPU_INSN_LGDT:
    case CPU_INSN_LIDT:
    case CPU_INSN_SGDT:
    case CPU_INSN_SIDT:
    case CPU_INSN_LLDT:
    case CPU_INSN_LTR:
    case CPU_INSN_SLDT:
    case CPU_INSN_STR:
        if (x->op_count >= 1 && x->operands[0].type == X86_OP_MEM) {
            in->has_mem = true;
            in->mem_gla = mem_address(c, d, &x->operands[0]);
        }
        if (in->kind == CPU_INSN_LGDT || in->kind == CPU_INSN_LIDT) {
            uint8_t b[10] = {0};
            unsigned word = c->mode == CPU_MODE_LONG ? 8 : 4;
            in->valid = cpu_read_gla(c, in->mem_gla, b, 2 + word) == 0;
            memcpy(&in->limit, b, 2);
            memcpy(&in->base, b + 2, word);
        } else if (in->kind == CPU_INSN_LLDT || in->kind == CPU_INSN_LTR) {
            uint16_t sel = 0;
            if (in->has_mem)
                in->valid = cpu_read_gla(c, in->mem_gla, &sel, 2) == 0;
            else if (x->op_count >= 1 && x->operands[0].type == X86_OP_REG)
                sel = (uint16_t)reg_value(c, x->operands[0].reg);
            in->value = sel;
        }
        desc_instr_info(c, d, in->kind, in);
        break;
    default:
        break;
    }
    cs_free(d, 1);
    return 0;
}

uint64_t cpu_fetch_boundary(struct cpu *c, uint64_t rip, uint64_t page)
{
    uint64_t mask = c->mode == CPU_MODE_LONG ? ~0ull : 0xffffffffull;
    rip &= mask;
    uint64_t rpage = rip & ~(uint64_t)(CPU_PAGE_SIZE - 1);
    /* A block spans at most its own page and the next one. */
    if (((rpage + CPU_PAGE_SIZE) & mask) != page || page == 0)
        return 0;
    uint8_t buf[CPU_PAGE_SIZE];
    size_t n = (size_t)(page - rip);
    if (cpu_read_gla(c, rip, buf, n) < 0)
        return 0;
    /* The instructions wholly before the page; the next one is the first to reach it. */
    cs_insn *in = scan_insn(c);
    if (!in)
        return 0;
    const uint8_t *code = buf;
    uint64_t a = rip, at = rip;
    while (n && cs_disasm_iter(c->cs, &code, &n, &at, in))
        a = at;
    return a == rip ? 0 : a;
}

uint32_t cpu_insn_index(struct cpu *c, uint64_t blk, uint32_t size, uint64_t addr)
{
    if (addr < blk || addr >= blk + size)
        return UINT32_MAX;
    /* The block's bytes up to addr and one more instruction's worth (the old way decoded each
     * instruction from its own copy: the same instructions, one allocation each). */
    uint8_t buf[2 * CPU_PAGE_SIZE + 16];
    size_t want = (size_t)(addr - blk) + 15;
    if (want > sizeof(buf))
        want = sizeof(buf);
    size_t len = read_code(c, blk, buf, want);
    cs_insn *in = scan_insn(c);
    uint32_t n = 0;
    const uint8_t *code = buf;
    uint64_t a = blk;
    while (in && a < addr && len && cs_disasm_iter(c->cs, &code, &len, &a, in))
        n++;
    return n;
}

/* Executing a watched instruction: what cpu/ does for it. Returns true if it skipped it. */
static bool execute_watched(struct cpu *c, const struct cpu_insn *in)
{
    if (in->kind == CPU_INSN_HLT) {
        /* Beyond the budget (Unicorn runs an HLT right after the count ran out): not ours. */
        if (c->blk_valid) {
            uint32_t i = cpu_insn_index(c, c->blk_addr, c->blk_size, in->rip);
            if (i != UINT32_MAX && c->iter_done + i >= c->budget)
                return false;
        }
        c->hlt = true;
        return false;
    }
    if (in->kind == CPU_INSN_INT1) {
        /* ICEBP: #DB as a trap after the instruction (return address RIP + 1); run_loop delivers it. */
        uint64_t rip = in->rip + in->len;
        uc_reg_write(c->uc, cpu_reg_id(c->mode, UC_X86_REG_RIP), &rip);
        c->vector = 1;
        c->db_trap = false;
        uc_emu_stop(c->uc);
        return true;
    }
    if (in->kind == CPU_INSN_MOV_DR) {
        /*
         * Unicorn 2.1.1 crashes the process when the guest's MOV to DR7 enables a breakpoint
         * (its breakpoint insertion: `mov dr7, rcx` with rcx = 0x10 is a SIGSEGV in bare Unicorn;
         * found by the `guest` fuzz target).  cpu/ does not model debug-register breakpoints
         * (cpu.h), so the value is stored as the register API stores it (no breakpoint is set up)
         * and the instruction skipped.  CPL > 0 (#GP) and DR4/DR5 with CR4.DE (#UD) stay
         * Unicorn's to raise, before any breakpoint.
         */
        uint64_t cr4 = 0;
        uint16_t cs = 0;
        uc_reg_read(c->uc, UC_X86_REG_CR4, &cr4);
        uc_reg_read(c->uc, UC_X86_REG_CS, &cs);
        unsigned n = in->cr;
        if ((cs & 3) || n > 7 || ((n == 4 || n == 5) && (cr4 & (1u << 3))))
            return false;
        if (n == 4 || n == 5)
            n += 2; /* DR4/DR5 are DR6/DR7 while CR4.DE is clear */
        uint64_t v = c->mode == CPU_MODE_LONG ? in->value : in->value & 0xffffffffu;
        uc_reg_write(c->uc, UC_X86_REG_DR0 + (int)n, &v);
        uint64_t rip = in->rip + in->len;
        uc_reg_write(c->uc, cpu_reg_id(c->mode, UC_X86_REG_RIP), &rip);
        return true;
    }
    if (in->kind == CPU_INSN_XSETBV) {
        uint64_t cr4 = 0;
        uc_reg_read(c->uc, UC_X86_REG_CR4, &cr4);
        if (!(cr4 & (1ull << 18)) || in->index != 0)
            return false; /* Unicorn raises #UD; #GP for ECX != 0 is not modelled */
        c->xcr0 = in->value;
        uint64_t rip = in->rip + in->len;
        uc_reg_write(c->uc, cpu_reg_id(c->mode, UC_X86_REG_RIP), &rip);
        return true;
    }
    return false;
}

static void count_skip(struct cpu *c, uint64_t addr)
{
    if (!c->blk_valid)
        return;
    uint32_t i = cpu_insn_index(c, c->blk_addr, c->blk_size, addr);
    if (i != UINT32_MAX)
        c->blk_icount = i + 1;
}

void cpu_icpt_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *opaque)
{
    (void)size;
    struct cpu *c = opaque;
    struct cpu_insn in;
    if (cpu_fill_insn(c, addr, &in) < 0)
        return; /* not (any more) an instruction we watch: let it run */
    if (c->resume_valid && c->resume_at == addr) {
        c->resume_valid = false;
        if (execute_watched(c, &in))
            count_skip(c, addr);
        return;
    }
    if (!(c->intercept & (1u << in.kind))) {
        if (execute_watched(c, &in))
            count_skip(c, addr);
        return;
    }
    memset(&c->ev, 0, sizeof(c->ev));
    c->ev.reason = CPU_EXIT_INSN;
    c->ev.insn = in;
    if (c->handler) {
        c->pending_skip = false;
        c->resume_valid = false;
        enum cpu_verdict v = c->handler(c->handler_opaque, c, &c->ev);
        if (v == CPU_RESUME) {
            if (c->pending_skip) {
                c->pending_skip = false;
                count_skip(c, addr);
                return;
            }
            if (c->resume_valid && c->resume_at == addr) {
                c->resume_valid = false;
                if (execute_watched(c, &in))
                    count_skip(c, addr);
                return;
            }
        }
    }
    c->pend = PEND_INSN;
    uc_emu_stop(uc);
}

/* ---- Lazy scan of blocks ----------------------------------------------------- */

static uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static struct cpu_blk *blk_slot(struct cpu *c, uint64_t addr, uint32_t size)
{
    size_t mask = c->blk_cap - 1;
    for (size_t i = hash64(addr ^ ((uint64_t)size << 48)) & mask;; i = (i + 1) & mask) {
        struct cpu_blk *b = &c->blks[i];
        if (b->gen != c->blk_gen || (b->addr == addr && b->size == size))
            return b;
    }
}

static int blk_grow(struct cpu *c)
{
    size_t ncap = c->blk_cap ? c->blk_cap * 2 : 4096;
    struct cpu_blk *old = c->blks;
    size_t ocap = c->blk_cap;
    c->blks = calloc(ncap, sizeof(*c->blks));
    if (!c->blks) {
        c->blks = old;
        return -ENOMEM;
    }
    c->blk_cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].gen == c->blk_gen)
            *blk_slot(c, old[i].addr, old[i].size) = old[i];
    free(old);
    return 0;
}

void cpu_blk_forget(struct cpu *c)
{
    /* A new generation: every entry of the old ones reads as an empty slot. */
    if (++c->blk_gen == 0) {
        if (c->blks)
            memset(c->blks, 0, c->blk_cap * sizeof(*c->blks));
        c->blk_gen = 1;
    }
    c->blk_n = 0;
    c->blk_valid = false;
    c->blk_last_icount = 0;
}

int cpu_blk_reset(struct cpu *c)
{
    cpu_blk_forget(c);
    c->dropping_hooks = true;
    for (size_t i = 0; i < c->nhooked; i++)
        uc_hook_del(c->uc, c->hooked_id[i]);
    c->dropping_hooks = false;
    c->nhooked = 0;
    return 0;
}

static bool is_hooked(const struct cpu *c, uint64_t addr)
{
    for (size_t i = 0; i < c->nhooked; i++)
        if (c->hooked_addr[i] == addr)
            return true;
    return false;
}

static int add_hook(struct cpu *c, uint64_t addr)
{
    if (c->nhooked == c->hooked_cap) {
        size_t ncap = c->hooked_cap ? c->hooked_cap * 2 : 16;
        uint64_t *a = realloc(c->hooked_addr, ncap * sizeof(*a));
        if (!a)
            return -ENOMEM;
        c->hooked_addr = a;
        uc_hook *h = realloc(c->hooked_id, ncap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        c->hooked_id = h;
        c->hooked_cap = ncap;
    }
    uc_hook h;
    if (uc_hook_add(c->uc, &h, UC_HOOK_CODE, CPU_CB(cpu_icpt_hook), c, addr, addr) != UC_ERR_OK)
        return -EIO;
    c->hooked_addr[c->nhooked] = addr;
    c->hooked_id[c->nhooked++] = h;
    return 0;
}

void cpu_block_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *opaque)
{
    struct cpu *c = opaque;
    if (c->blk_valid) {
        c->iter_done += c->blk_icount;
        if (addr == c->blk_addr && size == c->blk_size && c->blk_last_icount) {
            c->blk_icount = c->blk_last_icount; /* a loop: the same block again */
            return;
        }
    }
    c->blk_valid = false;
    if (c->blk_n * 2 >= c->blk_cap && blk_grow(c) < 0)
        return;
    struct cpu_blk *b = blk_slot(c, addr, size);
    if (b->gen != c->blk_gen) {
        uint8_t buf[4096];
        uint32_t n = size < sizeof(buf) ? size : (uint32_t)sizeof(buf);
        uint32_t icount = 0;
        bool added = false;
        cs_insn *in = scan_insn(c);
        if (n && in && cpu_read_gla(c, addr, buf, n) == 0) {
            const uint8_t *code = buf;
            size_t left = n;
            uint64_t at = addr;
            while (left && cs_disasm_iter(c->cs, &code, &left, &at, in)) {
                int k = kind_of(in, NULL);
                if (k >= 0 && (watched(c) & (1u << k)) && !is_hooked(c, in->address)) {
                    if (add_hook(c, in->address) == 0)
                        added = true;
                }
                icount++;
            }
        }
        if (added) {
            /* Retranslate with the new hooks: restart at the block, nothing of it ran. */
            uc_ctl_remove_cache(uc, addr, addr + size);
            c->pend = PEND_RESTART;
            uc_emu_stop(uc);
            return;
        }
        b->gen = c->blk_gen;
        b->addr = addr;
        b->size = size;
        b->icount = icount ? icount : 1;
        c->blk_n++;
    }
    c->blk_valid = true;
    c->blk_addr = addr;
    c->blk_size = size;
    c->blk_icount = b->icount;
    c->blk_last_icount = b->icount;
}
