; access64: the accesses the checked-access tests restrict, one label each.
; Started with RIP at the label by the test.
%include "rt64.inc"
start:
    hlt
    align 8, db 0
    dq write_one, read_one, straddle, fetch_far, rep_copy, loop_n  ; label table at 0x400908
write_one:                      ; 8-byte write at [rbx]
    mov qword [rbx], 0x5a5a5a5a
    hlt
read_one:                       ; 8-byte read of [rbx]
    mov rax, [rbx]
    hlt
straddle:                       ; 8-byte write at rbx = page end - 4
    mov qword [rbx], rcx
    hlt
fetch_far:                      ; jump to rbx
    jmp rbx
rep_copy:                       ; rcx bytes from [rsi] to [rdi]
    rep movsb
    hlt
loop_n:                         ; rcx iterations of 3 instructions
    inc rax
    dec rcx
    jnz loop_n
    hlt
