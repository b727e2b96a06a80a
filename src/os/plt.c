/*
 * plt.c — other objects' calls of a function, sent to another entry of it.
 *
 * Heap profiling's malloc entry (api.c, malloc_other) is the whole of
 * malloc when profiling is on; the exported malloc reaches it through a
 * compare and a jump that it pays on every call (docs/performance.md).
 * A program calls malloc through its PLT: a jump through its own GOT slot,
 * which the dynamic linker fills with the address malloc is bound to. Such
 * a slot can name the profiling entry directly instead.
 *
 * os_plt_redirect(name, from, to) visits every loaded object but the one
 * holding this code, and in each the jump slots (R_X86_64_JUMP_SLOT) of
 * symbol name whose value is from: calls bound to from already (at load
 * time under BIND_NOW, or by a first call under lazy binding). Those are
 * set to to. A slot not bound yet, or bound to another definition (an
 * object in another link-map namespace, one opened with RTLD_DEEPBIND, a
 * wrapper preloaded in front of numaheap), is left alone: it keeps
 * reaching whatever the dynamic linker binds it to, so the caller runs the
 * walk again later (prof.c) for slots bound since. Addresses taken with &
 * or dlsym (GLOB_DAT slots) keep from: the function's address stays one.
 * A slot inside its object's RELRO segment (read-only after relocation)
 * is made writable for the store and read-only again.
 *
 * from and to must behave the same for every argument: a thread calling
 * through a slot while it changes reaches one or the other (the store is
 * one aligned 8-byte write).
 *
 * An object that dlopen is still relocating in another thread is in
 * dl_iterate_phdr's list already, and its RELRO pages are not read-only
 * yet: made read-only here, they would fault the relocation still to come.
 * So an object is visited only once _dl_find_object knows it, which dlopen
 * arranges after the object's relocation and RELRO (glibc 2.35 on; before
 * that, nothing is redirected).
 *
 * Locking: one walk at a time (a flag: a second caller returns at once,
 * as two walks could each make a page writable and the first make it
 * read-only under the second's store). dl_iterate_phdr holds the dynamic
 * linker's list lock during the walk, so no object is unloaded under it.
 * Nothing is allocated: the ELF tables are read where the linker mapped
 * them.
 */
#define _GNU_SOURCE 1
#include "os.h"

#include <link.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))

#include <dlfcn.h>

struct redirect {
	const char *name;
	uintptr_t from, to, own;
};

/* The object's dynamic section entry tag, or 0. */
static uintptr_t dyn_value(const ElfW(Dyn) *d, ElfW(Sxword) tag)
{
	for (; d->d_tag != DT_NULL; d++)
		if (d->d_tag == tag)
			return d->d_un.d_val;
	return 0;
}

/* A table's address from its dynamic entry: glibc relocates the entries in
 * place where the section is writable, not where it is read-only. */
static uintptr_t dyn_ptr(const ElfW(Dyn) *d, ElfW(Sxword) tag, uintptr_t base)
{
	uintptr_t v = dyn_value(d, tag);
	return v && v < base ? v + base : v;
}

/* Store v in *slot, through a writable mapping of its page for a slot in
 * [relro_lo, relro_hi); a slot whose page cannot be made writable (a
 * policy that refuses it) stays as it is. */
static void store_slot(uintptr_t *slot, uintptr_t v, uintptr_t relro_lo, uintptr_t relro_hi)
{
	uintptr_t a = (uintptr_t)slot;
	if (a < relro_lo || a >= relro_hi) {
		__atomic_store_n(slot, v, __ATOMIC_RELAXED);
		return;
	}
	uintptr_t ps = os_page_size(), page = a & ~(ps - 1);
	NH_KSTAT_INC(mprotect);
	if (mprotect((void *)page, ps, PROT_READ | PROT_WRITE) != 0)
		return;
	__atomic_store_n(slot, v, __ATOMIC_RELAXED);
	NH_KSTAT_INC(mprotect);
	mprotect((void *)page, ps, PROT_READ);
}

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct redirect *r = arg;
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t relro_lo = 0, relro_hi = 0, base = info->dlpi_addr;
	bool own = false;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
		else if (ph->p_type == PT_GNU_RELRO) {
			/* The pages glibc made read-only: whole ones (the last
			 * partial page stays writable, _dl_protect_relro). */
			uintptr_t mask = os_page_size() - 1;
			relro_lo = (base + ph->p_vaddr) & ~mask;
			relro_hi = (base + ph->p_vaddr + ph->p_memsz) & ~mask;
		} else if (ph->p_type == PT_LOAD && r->own - (base + ph->p_vaddr) < ph->p_memsz)
			own = true;
	}
	struct dl_find_object fo;
	if (!dyn || own || _dl_find_object((void *)dyn, &fo) != 0)
		return 0; /* no PLT, numaheap's own, or still being loaded */
	const ElfW(Rela) *rel = (const ElfW(Rela) *)dyn_ptr(dyn, DT_JMPREL, base);
	size_t nrel = dyn_value(dyn, DT_PLTRELSZ) / sizeof *rel;
	const ElfW(Sym) *sym = (const ElfW(Sym) *)dyn_ptr(dyn, DT_SYMTAB, base);
	const char *str = (const char *)dyn_ptr(dyn, DT_STRTAB, base);
	if (!rel || !sym || !str || dyn_value(dyn, DT_PLTREL) != DT_RELA)
		return 0;
	for (size_t i = 0; i < nrel; i++) {
		if (ELF64_R_TYPE(rel[i].r_info) != R_X86_64_JUMP_SLOT)
			continue;
		uintptr_t *slot = (uintptr_t *)(base + rel[i].r_offset);
		if (__atomic_load_n(slot, __ATOMIC_RELAXED) != r->from ||
		    strcmp(str + sym[ELF64_R_SYM(rel[i].r_info)].st_name, r->name) != 0)
			continue;
		store_slot(slot, r->to, relro_lo, relro_hi);
	}
	return 0;
}

void os_plt_redirect(const char *name, void *from, void *to)
{
	static _Atomic bool walking;
	if (atomic_exchange_explicit(&walking, true, memory_order_acquire))
		return;
	struct redirect r = {name, (uintptr_t)from, (uintptr_t)to, (uintptr_t)os_plt_redirect};
	dl_iterate_phdr(visit, &r);
	atomic_store_explicit(&walking, false, memory_order_release);
}

#else

void os_plt_redirect(const char *name, void *from, void *to) { (void)name, (void)from, (void)to; }

#endif
