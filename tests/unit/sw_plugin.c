/*
 * sw_plugin.c — a plugin for stackwalk_test.cc's unloading test: one
 * function, sw_through(cb, arg), that calls cb(arg) from a frame of 0x110
 * bytes (SW_BIG) or 0x20. Written in assembly so that both builds have the
 * same length of code: the return address of the call is at the same
 * offset in both, and a plugin unloaded and replaced by the other at the
 * same address puts a different unwind rule at the same pc.
 */
#ifdef SW_BIG
#define SW_ENTER "subq $0x108, %rsp\n\t.cfi_def_cfa_offset 0x110\n\t" /* 7 bytes */
#define SW_LEAVE "addq $0x108, %rsp\n\t"
#else
/* 4 bytes, then a 3-byte nop: the call at the same offset */
#define SW_ENTER "subq $0x18, %rsp\n\t.cfi_def_cfa_offset 0x20\n\t.byte 0x0f, 0x1f, 0x00\n\t"
#define SW_LEAVE "addq $0x18, %rsp\n\t.byte 0x0f, 0x1f, 0x00\n\t"
#endif

__asm__(".text\n\t"
	".globl sw_through\n\t"
	".type sw_through, @function\n"
	"sw_through:\n\t"
	".cfi_startproc\n\t" SW_ENTER "movq %rdi, %rax\n\t"
	"movq %rsi, %rdi\n\t"
	"call *%rax\n\t" SW_LEAVE ".cfi_def_cfa_offset 8\n\t"
	"ret\n\t"
	".cfi_endproc\n\t"
	".size sw_through, .-sw_through\n\t");
