/*
 * plt_prog.c — with heap profiling on, are this program's calls of malloc
 * sent straight to numaheap's profiling entry (src/os/plt.c), and is
 * nothing else changed?
 *
 *   plt_prog on|off [PLUGIN [deepbind]]
 *                       (numaheap preloaded; NUMAHEAP_PROF=1 for on)
 *
 * Reads its own PLT slot for malloc (R_X86_64_JUMP_SLOT) after allocating
 * enough to be sampled many times:
 *   on   the slot names another address than malloc's own (dlsym), inside
 *        the same object (libnumaheap.so); when the slot is in the RELRO
 *        segment (built with -z now), its page is read-only again
 *   off  the slot names malloc
 * With PLUGIN (tests/api's deepbind_plugin.so), opened after the first
 * samples and used, its slot is checked the same way (a slot bound after
 * the first walk); opened with RTLD_DEEPBIND under NUMAHEAP_DEEPBIND=keep,
 * its slot is bound to the C library's malloc and must stay so.
 * Either way blocks still work. (The program must not take malloc's
 * address: the linker then sends its calls through the GLOB_DAT slot of
 * that address, which is left alone, so that the function stays one.)
 * Exit 0 and "ok", or 1 and what was wrong.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uintptr_t *slot;
static uintptr_t relro_lo, relro_hi;

/* The malloc slot of the object named like arg ("": the program). */
static int find_slot(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	const char *want = arg;
	if (want[0] ? !strstr(info->dlpi_name, want) : info->dlpi_name[0] != 0)
		return 0;
	const ElfW(Dyn) *dyn = NULL;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
		if (ph->p_type == PT_GNU_RELRO) {
			relro_lo = info->dlpi_addr + ph->p_vaddr;
			relro_hi = relro_lo + ph->p_memsz;
		}
	}
	const ElfW(Rela) *rel = NULL;
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	size_t relsz = 0;
	for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_JMPREL)
			rel = (const ElfW(Rela) *)dyn->d_un.d_ptr;
		else if (dyn->d_tag == DT_PLTRELSZ)
			relsz = dyn->d_un.d_val;
		else if (dyn->d_tag == DT_SYMTAB)
			sym = (const ElfW(Sym) *)dyn->d_un.d_ptr;
		else if (dyn->d_tag == DT_STRTAB)
			str = (const char *)dyn->d_un.d_ptr;
	}
	for (size_t i = 0; rel && sym && str && i < relsz / sizeof *rel; i++)
		if (ELF64_R_TYPE(rel[i].r_info) == R_X86_64_JUMP_SLOT &&
		    !strcmp(str + sym[ELF64_R_SYM(rel[i].r_info)].st_name, "malloc"))
			slot = (uintptr_t *)(info->dlpi_addr + rel[i].r_offset);
	return 1;
}

/* The permissions of the mapping holding a, from /proc/self/maps ("r--p"). */
static void perms_of(uintptr_t a, char out[5])
{
	strcpy(out, "?");
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return;
	unsigned long lo, hi;
	char p[5];
	while (fscanf(f, "%lx-%lx %4s%*[^\n]", &lo, &hi, p) == 3)
		if (a >= lo && a < hi) {
			strcpy(out, p);
			break;
		}
	fclose(f);
}

/* 256 MiB in blocks of 16 B-1 KiB, through alloc and release: thousands
 * of samples at 4 KiB. */
static int churn(void *(*alloc)(size_t), void (*release)(void *))
{
	for (int i = 0; i < 1 << 19; i++) {
		volatile char *p = alloc(16 + (size_t)(i % 64) * 16);
		if (!p) {
			puts("malloc failed");
			return 1;
		}
		p[0] = 1;
		release((void *)p);
	}
	return 0;
}

static void *prog_malloc(size_t n) { return malloc(n); }
static void prog_free(void *p) { free(p); }

int main(int argc, char **argv)
{
	int on = argc > 1 && !strcmp(argv[1], "on");
	const char *plugin = argc > 2 ? argv[2] : NULL;
	int deep = argc > 3 && !strcmp(argv[3], "deepbind");
	if (churn(prog_malloc, prog_free))
		return 1;
	const char *who = "";
	if (plugin) {
		void *h = dlopen(plugin, RTLD_NOW | (deep ? RTLD_DEEPBIND : 0));
		void *(*pm)(size_t) = h ? (void *(*)(size_t))dlsym(h, "plugin_malloc") : NULL;
		void (*pf)(void *) = h ? (void (*)(void *))dlsym(h, "plugin_free") : NULL;
		if (!pm || !pf) {
			printf("cannot open %s: %s\n", plugin, dlerror());
			return 1;
		}
		/* The plugin's own calls, then the program's: more samples. */
		if (churn(pm, pf) || churn(prog_malloc, prog_free))
			return 1;
		who = strrchr(plugin, '/') ? strrchr(plugin, '/') + 1 : plugin;
	}
	dl_iterate_phdr(find_slot, (void *)who);
	if (!slot) {
		printf("no PLT slot for malloc in %s\n", who[0] ? who : "this program");
		return 1;
	}
	void *exported = dlsym(RTLD_DEFAULT, "malloc");
	uintptr_t v = *slot;
	Dl_info a, b;
	if (!dladdr(exported, &a) || !strstr(a.dli_fname, "numaheap")) {
		puts("malloc is not numaheap's (preload it)");
		return 1;
	}
	if (deep) {
		if (!dladdr((void *)v, &b) || !strstr(b.dli_fname, "libc.so")) {
			printf("the RTLD_DEEPBIND plugin's slot names %p, not the C library's malloc\n", (void *)v);
			return 1;
		}
	} else if (on) {
		if (v == (uintptr_t)exported) {
			puts("profiling on, the slot still names malloc");
			return 1;
		}
		if (!dladdr((void *)v, &b) || b.dli_fbase != a.dli_fbase) {
			printf("the slot names %p, outside numaheap\n", (void *)v);
			return 1;
		}
		if ((uintptr_t)slot >= relro_lo && (uintptr_t)slot < relro_hi) {
			char p[5];
			perms_of((uintptr_t)slot, p);
			if (strcmp(p, "r--p")) {
				printf("the slot's RELRO page is %s after the change, not r--p\n", p);
				return 1;
			}
			puts("(slot in RELRO)");
		}
	} else if (v != (uintptr_t)exported) {
		printf("profiling off, the slot names %p, not malloc (%p)\n", (void *)v, exported);
		return 1;
	}
	char *s = malloc(100);
	if (!s)
		return 1;
	strcpy(s, "ok");
	puts(s);
	free(s);
	return 0;
}
