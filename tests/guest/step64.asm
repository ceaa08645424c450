; step64: a 3-instruction loop run twice, then hlt: the single-step RIP sequence is known.
%include "rt64.inc"
start:
    mov ecx, 2                  ; 0x400900
again:
    inc rax                     ; 0x400905
    dec ecx                     ; 0x400908
    jnz again                   ; 0x40090a
    hlt                         ; 0x40090c
