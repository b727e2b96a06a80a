/*
 * stackwalk.c — a fast stack walk for heap profiles: DWARF call-frame rules
 * read once per code address, then kept (stackwalk.h).
 *
 * A frame's rule, for the address a walk is at: the CFA (the stack
 * pointer before the call that made the frame) is %rsp or %rbp plus an
 * offset; the return address is at CFA - 8; %rbp is either untouched or
 * saved at CFA + offset. Found the first time by running the CIE's and the
 * FDE's call-frame programs up to that address, as libgcc does every time,
 * then kept in a direct-mapped table (mapped at init, 8192 entries).
 *
 * Where the tables are: _dl_find_object (glibc 2.35 on; no lock, no
 * malloc) gives the object's PT_GNU_EH_FRAME, whose .eh_frame_hdr holds a
 * sorted table of (function start, FDE) to search. It is asked again for
 * each address the table does not know. A kept rule is used only while no
 * object has been unloaded since it was read (the count of unloads that
 * dl_iterate_phdr reports, read once per walk by the caller): objects do
 * not move, so until an unload the pc is still in the code the rule was
 * read from. Comparing the object's start and table instead (as this file
 * did, with _dl_find_object at every frame) is not enough: a plugin
 * unloaded and another (or a new build of it) loaded in its place can have
 * both at the same addresses, and other code at the same pc
 * (unit.Stackwalk's plugins).
 *
 * Anything else (expressions, other registers, signal frames, 64-bit
 * DWARF, an unexpected encoding) makes the walk decline, and prof.c walks
 * with libgcc's unwinder instead; so does a CFA that does not move up the
 * stack. A walk ends cleanly at a frame whose return address is undefined
 * (_start, the threads' clone) or at code no object's tables describe.
 */
#define _GNU_SOURCE 1
#include "stackwalk.h"

#include <link.h>
#include <string.h>

#include "internal.h"
#include "os/os.h"

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))

#include <dlfcn.h>

enum { R_RBP = 6, R_RSP = 7, R_RA = 16 };
enum { RULE_EMPTY = 0, RULE_OK, RULE_END, RULE_NO };

struct rule {
	uintptr_t pc;	 /* the address looked up (a return address - 1, or the first pc) */
	int32_t cfa_off; /* CFA = (cfa_rbp ? %rbp : %rsp) + cfa_off */
	int32_t rbp_off; /* %rbp saved at CFA + rbp_off; 0: not saved */
	/* objects unloaded (mod 2^32) when it was read: while none has been
	 * since, the object it was read from is still where it was */
	uint32_t unloads;
	uint8_t cfa_rbp;
	uint8_t kind; /* RULE_*: OK, END (no caller), NO (decline) */
};

#define RULES 8192
static struct rule *rules;

bool nh_unwind_init(void)
{
	rules = os_map(RULES * sizeof *rules, 0);
	return rules != NULL;
}

/* ---- reading DWARF ---------------------------------------------------------------------------- */

struct cur {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t uleb(struct cur *c)
{
	uint64_t v = 0;
	for (unsigned s = 0; c->p < c->end && s < 64; s += 7) {
		uint8_t b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static int64_t sleb(struct cur *c)
{
	int64_t v = 0;
	unsigned s = 0;
	uint8_t b = 0x80;
	while (c->p < c->end && (b & 0x80) && s < 64) {
		b = *c->p++;
		v |= (int64_t)(b & 0x7f) << s;
		s += 7;
	}
	if (b & 0x80) {
		c->bad = true;
		return 0;
	}
	if (s < 64 && (b & 0x40))
		v |= -((int64_t)1 << s);
	return v;
}

static uint64_t fixed(struct cur *c, unsigned n)
{
	if ((size_t)(c->end - c->p) < n) {
		c->bad = true;
		return 0;
	}
	uint64_t v = 0;
	memcpy(&v, c->p, n); /* little-endian */
	c->p += n;
	return v;
}

/* A pointer in encoding enc (DW_EH_PE_*): absolute or pc-relative, the
 * formats gcc and clang emit. data: the base of datarel (.eh_frame_hdr). */
static uintptr_t encoded(struct cur *c, uint8_t enc, uintptr_t data)
{
	if (enc == 0xff) { /* omit */
		c->bad = true;
		return 0;
	}
	uintptr_t at = (uintptr_t)c->p, v;
	switch (enc & 0x0f) {
	case 0x00: v = (uintptr_t)fixed(c, 8); break;
	case 0x01: v = (uintptr_t)uleb(c); break;
	case 0x02: v = (uintptr_t)fixed(c, 2); break;
	case 0x03: v = (uintptr_t)fixed(c, 4); break;
	case 0x04: v = (uintptr_t)fixed(c, 8); break;
	case 0x09: v = (uintptr_t)sleb(c); break;
	case 0x0a: v = (uintptr_t)(int64_t)(int16_t)fixed(c, 2); break;
	case 0x0b: v = (uintptr_t)(int64_t)(int32_t)fixed(c, 4); break;
	case 0x0c: v = (uintptr_t)fixed(c, 8); break;
	default: c->bad = true; return 0;
	}
	switch (enc & 0x70) {
	case 0x00: break;
	case 0x10: v += at; break;
	case 0x30: v += data; break;
	default: c->bad = true; return 0;
	}
	if (enc & 0x80) /* indirect: only personalities, which are skipped */
		c->bad = true;
	return v;
}

/* ---- the call-frame program ------------------------------------------------------------------- */

struct state {
	int64_t cfa_off;
	int64_t rbp_off; /* valid if rbp_saved */
	int64_t ra_off;
	uint8_t cfa_reg;
	bool rbp_saved, ra_undefined;
};

struct cie {
	uint64_t code_align;
	int64_t data_align;
	uint8_t fde_enc;
	bool has_z;
	struct cur insns;
	struct state init;
};

/* Run insns from loc while loc <= pc. false: an instruction this walker
 * does not follow. */
static bool run(struct cur *c, const struct cie *ci, struct state *st, uintptr_t loc, uintptr_t pc)
{
	struct state saved[4];
	unsigned nsaved = 0;
	while (c->p < c->end && !c->bad) {
		uint8_t op = *c->p++;
		uint64_t reg;
		int64_t off;
		switch (op >> 6) {
		case 1: /* advance_loc */
			loc += (op & 0x3f) * ci->code_align;
			if (loc > pc)
				return true;
			continue;
		case 2: /* offset */
			off = (int64_t)uleb(c) * ci->data_align;
			reg = op & 0x3f;
			goto set_offset;
		case 3: /* restore */
			reg = op & 0x3f;
			goto restore;
		}
		switch (op) {
		case 0x00: /* nop */
			break;
		case 0x02: /* advance_loc1 */
		case 0x03: /* advance_loc2 */
		case 0x04: /* advance_loc4 */
			loc += fixed(c, op == 0x02 ? 1 : op == 0x03 ? 2 : 4) * ci->code_align;
			if (loc > pc)
				return true;
			break;
		case 0x05: /* offset_extended */
			reg = uleb(c);
			off = (int64_t)uleb(c) * ci->data_align;
			goto set_offset;
		case 0x11: /* offset_extended_sf */
			reg = uleb(c);
			off = sleb(c) * ci->data_align;
			goto set_offset;
		case 0x06: /* restore_extended */
			reg = uleb(c);
			goto restore;
		case 0x07: /* undefined */
		case 0x08: /* same_value */
			reg = uleb(c);
			if (reg == R_RBP)
				st->rbp_saved = false;
			else if (reg == R_RA && op == 0x07)
				st->ra_undefined = true;
			else if (reg == R_RA || reg == R_RSP)
				return false;
			break;
		case 0x0a: /* remember_state */
			if (nsaved == 4)
				return false;
			saved[nsaved++] = *st;
			break;
		case 0x0b: /* restore_state */
			if (nsaved == 0)
				return false;
			*st = saved[--nsaved];
			break;
		case 0x0c: /* def_cfa */
			st->cfa_reg = (uint8_t)uleb(c);
			st->cfa_off = (int64_t)uleb(c);
			break;
		case 0x12: /* def_cfa_sf */
			st->cfa_reg = (uint8_t)uleb(c);
			st->cfa_off = sleb(c) * ci->data_align;
			break;
		case 0x0d: /* def_cfa_register */
			st->cfa_reg = (uint8_t)uleb(c);
			break;
		case 0x0e: /* def_cfa_offset */
			st->cfa_off = (int64_t)uleb(c);
			break;
		case 0x13: /* def_cfa_offset_sf */
			st->cfa_off = sleb(c) * ci->data_align;
			break;
		case 0x2e: /* GNU_args_size */
			(void)uleb(c);
			break;
		case 0x09: /* register */
		case 0x14: /* val_offset */
		case 0x15: /* val_offset_sf */
			reg = uleb(c);
			(void)uleb(c);
			if (reg == R_RBP || reg == R_RA || reg == R_RSP)
				return false;
			break;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = uleb(c);
			if (reg == R_RBP || reg == R_RA || reg == R_RSP)
				return false;
			off = (int64_t)uleb(c);
			if (off < 0 || off > c->end - c->p)
				return false;
			c->p += off;
			break;
		default: /* def_cfa_expression, set_loc, vendor ops: decline */
			return false;
		}
		continue;
	set_offset:
		if (reg == R_RBP) {
			st->rbp_saved = true;
			st->rbp_off = off;
		} else if (reg == R_RA) {
			st->ra_off = off;
			st->ra_undefined = false;
		}
		continue;
	restore:
		if (reg == R_RBP) {
			st->rbp_saved = ci->init.rbp_saved;
			st->rbp_off = ci->init.rbp_off;
		} else if (reg == R_RA) {
			st->ra_off = ci->init.ra_off;
			st->ra_undefined = ci->init.ra_undefined;
		}
	}
	return !c->bad;
}

static bool parse_cie(const uint8_t *p, struct cie *ci)
{
	uint32_t len;
	memcpy(&len, p, 4);
	if (len == 0 || len == 0xffffffffu)
		return false;
	struct cur c = {p + 4, p + 4 + len, false};
	if (fixed(&c, 4) != 0) /* CIE id */
		return false;
	uint8_t version = (uint8_t)fixed(&c, 1);
	const char *aug = (const char *)c.p;
	size_t alen = strnlen(aug, (size_t)(c.end - c.p));
	if (alen == (size_t)(c.end - c.p))
		return false;
	c.p += alen + 1;
	ci->code_align = uleb(&c);
	ci->data_align = sleb(&c);
	uint64_t ra = version == 1 ? fixed(&c, 1) : uleb(&c);
	if (ra != R_RA)
		return false;
	ci->fde_enc = 0;
	ci->has_z = aug[0] == 'z';
	if (ci->has_z) {
		uint64_t n = uleb(&c);
		if (c.bad || n > (uint64_t)(c.end - c.p))
			return false;
		struct cur a = {c.p, c.p + n, false};
		for (const char *s = aug + 1; *s; s++) {
			if (*s == 'R') {
				ci->fde_enc = (uint8_t)fixed(&a, 1);
			} else if (*s == 'L') {
				(void)fixed(&a, 1);
			} else if (*s == 'P') {
				uint8_t enc = (uint8_t)fixed(&a, 1);
				struct cur tmp = a;
				(void)encoded(&tmp, enc & 0x7f, 0); /* skip it (indirection not followed) */
				if (tmp.bad)
					return false;
				a.p = tmp.p;
			} else {
				return false; /* 'S' (signal frame), 'B'... */
			}
		}
		if (a.bad)
			return false;
		c.p += n;
	} else if (aug[0]) {
		return false;
	}
	if (c.bad)
		return false;
	ci->insns = c;
	ci->init = (struct state){.cfa_reg = R_RSP, .cfa_off = 8, .ra_off = -8};
	return true;
}

/* The FDE of pc in the .eh_frame_hdr at hdr: its start, end and program. */
static const uint8_t *find_fde(const uint8_t *hdr, uintptr_t pc)
{
	if (!hdr || hdr[0] != 1 || hdr[3] != 0x3b) /* version 1, table datarel|sdata4 */
		return NULL;
	struct cur c = {hdr + 4, hdr + 4 + 16, false};
	(void)encoded(&c, hdr[1], (uintptr_t)hdr);
	uint64_t n = encoded(&c, hdr[2], (uintptr_t)hdr);
	if (c.bad || n == 0)
		return NULL;
	const int32_t *t = (const int32_t *)c.p; /* pairs: start, fde (from hdr) */
	size_t lo = 0, hi = (size_t)n;
	intptr_t rel = (intptr_t)(pc - (uintptr_t)hdr);
	if (rel < t[0])
		return NULL;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (t[2 * mid] <= rel)
			lo = mid;
		else
			hi = mid;
	}
	return hdr + t[2 * lo + 1];
}

/* Work out the rule for pc (a return address - 1, or the exact first pc)
 * in the object fo describes. */
static void make_rule(uintptr_t pc, const struct dl_find_object *fo, struct rule *r)
{
	r->kind = RULE_NO;
	const uint8_t *fde = find_fde(fo->dlfo_eh_frame, pc);
	if (!fde) {
		r->kind = RULE_END;
		return;
	}
	uint32_t len, cie_off;
	memcpy(&len, fde, 4);
	if (len == 0 || len == 0xffffffffu)
		return;
	memcpy(&cie_off, fde + 4, 4);
	if (cie_off == 0) /* a CIE, not an FDE */
		return;
	struct cie ci;
	if (!parse_cie(fde + 4 - cie_off, &ci))
		return;
	struct cur c = {fde + 8, fde + 4 + len, false};
	uintptr_t start = encoded(&c, ci.fde_enc, 0);
	uintptr_t range = encoded(&c, ci.fde_enc & 0x0f, 0);
	if (c.bad)
		return;
	if (pc < start || pc >= start + range) {
		r->kind = RULE_END;
		return;
	}
	if (ci.has_z) {
		uint64_t n = uleb(&c);
		if (c.bad || n > (uint64_t)(c.end - c.p))
			return;
		c.p += n;
	}
	struct state st = ci.init;
	struct cur ic = ci.insns;
	if (!run(&ic, &ci, &st, start, pc))
		return;
	ci.init = st; /* DW_CFA_restore in the FDE goes back to the CIE's rules */
	if (!run(&c, &ci, &st, start, pc))
		return;
	if (st.ra_undefined) {
		r->kind = RULE_END;
		return;
	}
	if ((st.cfa_reg != R_RSP && st.cfa_reg != R_RBP) || st.ra_off != -8 || st.cfa_off < 8 ||
	    st.cfa_off > INT32_MAX || (st.rbp_saved && (st.rbp_off == 0 || st.rbp_off < INT32_MIN || st.rbp_off > 0)))
		return;
	r->cfa_rbp = st.cfa_reg == R_RBP;
	r->cfa_off = (int32_t)st.cfa_off;
	r->rbp_off = st.rbp_saved ? (int32_t)st.rbp_off : 0;
	r->kind = RULE_OK;
}

static const struct rule *rule_of(uintptr_t pc, uint32_t unloads)
{
	static const struct rule end = {.kind = RULE_END};
	struct rule *r = &rules[(pc * 0x9e3779b97f4a7c15ULL) >> (64 - 13)];
	if (r->kind != RULE_EMPTY && r->pc == pc && r->unloads == unloads)
		return r; /* no object unloaded since: pc is still in the code the rule was read from */
	struct dl_find_object fo;
	if (_dl_find_object((void *)pc, &fo) != 0)
		return &end; /* no object's code: the stack ends here */
	r->pc = pc;
	r->unloads = unloads;
	make_rule(pc, &fo, r);
	return r;
}

static int first_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
		*(uint64_t *)arg = info->dlpi_subs;
	return 1; /* the count is the process's: one object is enough */
}

uint64_t nh_unwind_unloads(void)
{
	uint64_t subs = 0;
	dl_iterate_phdr(first_object, &subs);
	return subs;
}

NH_NOINLINE int nh_unwind(uintptr_t *pcs, unsigned max, uint64_t unloads)
{
	if (!rules)
		return -1;
	uintptr_t pc, sp, rbp;
	__asm__ volatile("leaq 0(%%rip), %0\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(rbp));
	unsigned n = 0;
	uintptr_t look = pc;
	while (n < max) {
		pcs[n++] = pc;
		const struct rule *r = rule_of(look, (uint32_t)unloads);
		if (r->kind == RULE_END)
			break;
		if (r->kind != RULE_OK)
			return -1;
		uintptr_t cfa = (r->cfa_rbp ? rbp : sp) + (uintptr_t)(intptr_t)r->cfa_off;
		if (cfa <= sp || (cfa & 7) || cfa - sp > ((uintptr_t)1 << 24))
			return -1; /* not moving up the stack: not ours to follow */
		uintptr_t ra = *(const uintptr_t *)(cfa - 8);
		if (r->rbp_off)
			rbp = *(const uintptr_t *)(cfa + (uintptr_t)(intptr_t)r->rbp_off);
		sp = cfa;
		if (ra == 0)
			break;
		pc = ra;
		look = ra - 1; /* inside the call: a noreturn call may end its function */
	}
	return (int)n;
}

#else /* not x86-64 with glibc 2.35 */

bool nh_unwind_init(void) { return false; }
uint64_t nh_unwind_unloads(void) { return 0; }
int nh_unwind(uintptr_t *pcs, unsigned max, uint64_t unloads)
{
	(void)pcs;
	(void)max;
	(void)unloads;
	return -1;
}

#endif
