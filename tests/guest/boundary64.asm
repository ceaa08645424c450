; boundary64: straight-line code that runs off the end of one code page into the next
; (tests of fetch faults at a page boundary).  Started with RIP at a label by the test.
%include "rt64.inc"
start:
    hlt
    align 8, db 0
    dq straight, inpage, straddle            ; label table at 0x400908
inpage:                         ; a block that stays in its page, then jumps over
    mov ecx, 0x66
    jmp straight
times 0xff0-($-$$) db 0
straight:                       ; 0x400ff0
    mov ecx, 0x55               ; 0x400ff0
    mov [rbx], ecx              ; 0x400ff5: a write to [rbx]
    times 9 nop                 ; 0x400ff7-0x400fff
    mov eax, 0x11223344         ; 0x401000: first instruction of the next page
    hlt                         ; 0x401005
times 0x1ff0-($-$$) db 0
straddle:                       ; 0x401ff0
    mov ecx, 0x77               ; 0x401ff0
    mov [rbx], ecx              ; 0x401ff5
    times 7 nop                 ; 0x401ff7-0x401ffd
    mov eax, 0x11223344         ; 0x401ffe: straddles into 0x402000
    hlt
