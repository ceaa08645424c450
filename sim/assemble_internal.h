/*
 * sim/assemble_internal.h — assembles a scenario's guest code with nasm.
 *
 * The source gets `bits 64` (or `bits 32`) and `org ENTRY` in front and is
 * assembled as a flat binary by the nasm program (a build dependency), in its
 * own process, bounded in CPU time (10 s) and output size (64 MiB) so that no
 * source can hang or flood vmisim.  nasm's messages come back with the
 * scenario file's own line numbers.
 */
#ifndef VMISIM_ASSEMBLE_INTERNAL_H
#define VMISIM_ASSEMBLE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

struct asm_source {
    const char *text;
    size_t len;
    unsigned bits;        /* 64 or 32 */
    uint64_t org;         /* where the code runs (its guest-linear address) */
    const char *file;     /* for messages: the scenario file */
    uint32_t first_line;  /* the file's line holding the source's first line */
};

/*
 * On success *out (malloc'd, free it) holds *out_len >= 0 bytes.  On failure
 * a negative errno and one message in err: nasm's first error as
 * "FILE:LINE: nasm: ...", or why nasm could not run.
 */
int asm_nasm(const struct asm_source *src, uint8_t **out, size_t *out_len, char *err, size_t errlen);

#endif
