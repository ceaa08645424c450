; icpt64: every intercepted instruction, in order, with known operand values.
%include "rt64.inc"
start:
    mov eax, 0x1234
    mov rdi, 0x5678
    vmcall                      ; 1
    mov rsi, 7
    vmmcall                     ; 2
    int3                        ; 3
    mov rax, cr4
    or rax, 0x80
    mov cr4, rax                ; 4: MOV CR4, value cr4|0x80
    mov rax, cr3
    mov cr3, rax                ; 5: MOV CR3
    mov rax, cr0
    mov cr0, rax                ; 6: MOV CR0
    xor ecx, ecx
    mov eax, 7
    xor edx, edx
    xsetbv                      ; 7: XCR0 = 7
    mov ecx, 0xc0000082
    mov eax, 0x89abcdef
    mov edx, 0x01234567
    wrmsr                       ; 8: LSTAR
    mov ecx, 0xc0000082
    rdmsr                       ; 9
    mov eax, 0x40000000
    mov ecx, 3
    cpuid                       ; 10
    mov eax, 0
    vmfunc                      ; 11
    sgdt [rel gdtr_save]        ; 12
    lgdt [rel gdtr_save]        ; 13
    sidt [rel idtr_save]        ; 14
    lidt [rel idtr_save]        ; 15
    sldt ax                     ; 16
    mov ax, 0
    lldt ax                     ; 17
    str ax                      ; 18
    mov ax, 0x28
    ltr ax                      ; 19
    hlt                         ; 20
gdtr_save: dq 0, 0
idtr_save: dq 0, 0
