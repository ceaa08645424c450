; bench64: two loops for the benchmark.
;  mem_loop: touches one qword in each of rcx pages from rbx, forever (8 instructions per page)
;  reg_loop: a register-only loop, forever
%include "rt64.inc"
start:
    hlt
    align 8, db 0
    dq mem_loop, reg_loop, cpuid_loop, store_one ; label table at 0x400908
mem_loop:
    mov rsi, rbx
    mov rdx, rcx
.next:
    add [rsi], rax
    mov r8, [rsi + 8]
    add rsi, 4096
    dec rdx
    jnz .next
    jmp mem_loop
reg_loop:
    add rax, rbx
    xor rbx, rax
    inc rcx
    jmp reg_loop
cpuid_loop:
    cpuid
    jmp cpuid_loop
store_one:                      ; one write to [rbx], then hlt
    mov [rbx], rax
    hlt
