; basic64: writes a pattern into the data area, reads it back, then halts.
; rbx = data base; out: rax = sum of what it read.
%include "rt64.inc"
start:
    mov rbx, 0x10000000
    mov qword [rbx], 0x1111
    mov qword [rbx + 0x1000], 0x2222
    mov rax, [rbx]
    add rax, [rbx + 0x1000]
    hlt
