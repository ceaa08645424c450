; pae32: 32-bit protected mode with PAE paging: writes, reads, vmcall with the 32-bit ABI (ebx, ecx).
%include "rt32.inc"
start:
    mov ebx, 0x10000000
    mov dword [ebx], 0xabcd
    mov eax, [ebx]
    mov ebx, 24
    mov ecx, 0
    vmcall
    hlt
