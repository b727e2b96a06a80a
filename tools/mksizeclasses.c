/*
 * mksizeclasses — generates src/sizeclasses.h, numaheap's small-object size
 * classes. The algorithm is Go's (runtime/mksizeclasses.go), adapted to C:
 *
 *   - an 8-byte class for tiny requests (Go's tiny allocator cannot work with
 *     explicit free), then every class is a multiple of 16 bytes, because C
 *     promises malloc'd memory is aligned for any fundamental type; the
 *     lookup table sends requests of 0-8 bytes to the 16-byte class all the
 *     same (max_align_t is 16 and compilers assume it of malloc: LLVM issue
 *     53540, gperftools issue 724), and the 8-byte class serves them only
 *     when NUMAHEAP_MIN_ALIGN=8 asks for it at run time;
 *   - the alignment step grows with the size (16 up to 128 B, size/8 up to
 *     2 KB, 256 B beyond), so a candidate class wastes at most 12.5% of a
 *     request on round-up (15 bytes below 128 B, where 16-byte alignment
 *     rules);
 *   - each class takes the fewest 8 KB pages for which the unusable tail of
 *     its span is at most 1/8 of the span (a second 12.5% bound);
 *   - neighbouring candidates that would use the same pages for the same
 *     number of objects are merged, and each class is then grown to the
 *     largest size that still fits that number of objects.
 *
 * The generator proves what the allocator relies on and exits non-zero if any
 * property fails: tail waste at most 12.5%, worst-case waste (round-up plus
 * tail, Go's "max waste" column) at most 1.125^2 - 1 = 26.6% from 128 B on, 16-byte alignment from 16 B up, strictly
 * increasing sizes, the lookup tables against a linear search for every
 * request size, and the division magic (offset * divmul) >> 32 against real
 * division for every byte offset of every span (and one object beyond).
 *
 * Usage: mksizeclasses [OUTPUT]   (stdout without OUTPUT)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	PAGE_SHIFT = 13,
	PAGE_SIZE = 1 << PAGE_SHIFT,
	MAX_SMALL_SIZE = 32768,
	SMALL_SIZE_DIV = 8,
	SMALL_SIZE_MAX = 1024,
	LARGE_SIZE_DIV = 128,
	MAX_CLASSES = 128,
};

struct sclass {
	unsigned size;
	unsigned npages;
	unsigned candidate; /* size before the final growth step */
};

static struct sclass classes[MAX_CLASSES];
static int nclasses;

static int is_pow2(unsigned x) { return x && (x & (x - 1)) == 0; }

static void fail(const char *what, unsigned a, unsigned b)
{
	fprintf(stderr, "mksizeclasses: %s (%u, %u)\n", what, a, b);
	exit(1);
}

static void make_classes(void)
{
	nclasses = 1; /* class 0: large objects, not a small class */
	classes[0].size = 0;
	classes[0].npages = 0;

	unsigned align = 8;
	for (unsigned size = align; size <= MAX_SMALL_SIZE; size += align) {
		if (is_pow2(size)) {
			if (size >= 2048)
				align = 256;
			else if (size >= 128)
				align = size / 8;
			else if (size >= 16)
				align = 16;
		}
		if (!is_pow2(align))
			fail("alignment is not a power of two", align, size);

		unsigned allocsize = PAGE_SIZE;
		while (allocsize % size > allocsize / 8)
			allocsize += PAGE_SIZE;
		unsigned npages = allocsize / PAGE_SIZE;

		struct sclass *prev = &classes[nclasses - 1];
		if (nclasses > 1 && npages == prev->npages &&
		    allocsize / size == allocsize / prev->size) {
			prev->size = size;
			continue;
		}
		if (nclasses == MAX_CLASSES)
			fail("too many classes", nclasses, size);
		classes[nclasses].size = size;
		classes[nclasses].npages = npages;
		nclasses++;
	}

	/*
	 * Grow each class to the largest size holding the same object count
	 * (memory that would otherwise be tail waste). Like Go, keep the grown
	 * size a multiple of LARGE_SIZE_DIV so the lookup tables stay exact.
	 */
	for (int i = 1; i < nclasses; i++) {
		struct sclass *c = &classes[i];
		unsigned psize = c->npages * PAGE_SIZE;
		c->candidate = c->size;
		unsigned nsize = (psize / (psize / c->size)) & ~(unsigned)(LARGE_SIZE_DIV - 1);
		if (nsize > c->size)
			c->size = nsize;
	}
}

static uint32_t divmul(unsigned size) { return (uint32_t)(UINT32_MAX / size + 1); }

static uint8_t size_to_class8[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1];
static uint8_t size_to_class128[(MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1];

static int linear_class(unsigned req)
{
	for (int i = 1; i < nclasses; i++)
		if (classes[i].size >= req)
			return i;
	return -1;
}

static void make_tables(void)
{
	for (unsigned i = 0; i < sizeof size_to_class8; i++)
		size_to_class8[i] = (uint8_t)(i <= 1 ? 2 : linear_class(i * SMALL_SIZE_DIV));
	for (unsigned i = 0; i < sizeof size_to_class128; i++)
		size_to_class128[i] = (uint8_t)linear_class(SMALL_SIZE_MAX + i * LARGE_SIZE_DIV);
}

static int table_class(unsigned req)
{
	if (req <= SMALL_SIZE_MAX)
		return size_to_class8[(req + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
	return size_to_class128[(req - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) / LARGE_SIZE_DIV];
}

static void check(void)
{
	if (classes[1].size != 8)
		fail("first class must be 8 bytes", classes[1].size, 8);
	if (classes[nclasses - 1].size != MAX_SMALL_SIZE)
		fail("last class must be the largest small size", classes[nclasses - 1].size, MAX_SMALL_SIZE);
	for (int i = 1; i < nclasses; i++) {
		const struct sclass *c = &classes[i];
		unsigned span = c->npages * PAGE_SIZE;
		if (i > 1 && c->size <= classes[i - 1].size)
			fail("sizes not increasing", i, c->size);
		if (c->size >= 16 && c->size % 16 != 0)
			fail("class of 16 B or more not a multiple of 16", i, c->size);
		if (span % c->size > span / 8)
			fail("span tail waste above 12.5%", i, c->size);
		if (span / c->size > 1024)
			fail("more than 1024 objects in a span", i, span / c->size);
		/*
		 * Worst-case waste of the class, as Go's table reports it: the
		 * smallest request it serves rounded up, for every object, plus
		 * the span tail. Merging candidates and growing into the tail
		 * push single requests past 12.5% (as in Go: 769 B -> 896 B), but
		 * the two wastes together stay under Go's 1.125^2 - 1 bound from
		 * 128 B on; below that the 16-byte alignment C demands rules.
		 */
		if (i > 1) {
			unsigned lo = classes[i - 1].size + 1;
			double worst = (double)((c->size - lo + 1) * (span / c->size) + span % c->size) / span;
			if (lo >= 128 && worst > 1.125 * 1.125 - 1.0)
				fail("worst-case waste above 26.6%", i, lo);
			if (lo < 128 && c->size - lo >= 16)
				fail("round-up above 15 B below 128 B", i, lo);
		}
		/*
		 * Division magic for every byte offset inside the span, and up to
		 * one object beyond it: free checks (offset in page + the page's
		 * phase) with it, which can reach span + size - 1.
		 */
		uint32_t m = divmul(c->size);
		for (uint64_t off = 0; off <= (uint64_t)span + c->size; off++)
			if ((uint32_t)((off * m) >> 32) != off / c->size)
				fail("division magic wrong", i, (unsigned)off);
	}
	for (unsigned req = 1; req <= MAX_SMALL_SIZE; req++)
		if (table_class(req) != (req <= 8 ? 2 : linear_class(req)))
			fail("lookup table disagrees with linear search", req, (unsigned)table_class(req));
}

static void emit(FILE *f)
{
	fprintf(f, "/* Code generated by tools/mksizeclasses.c; DO NOT EDIT. */\n"
		   "/* Regenerate: build the mksizeclasses target and run it with this path. */\n\n"
		   "#ifndef NUMAHEAP_SIZECLASSES_H\n#define NUMAHEAP_SIZECLASSES_H\n\n"
		   "#include <stdint.h>\n\n");
	fprintf(f, "/* class  bytes/obj  bytes/span  objects  tail waste  max waste  min align\n");
	for (int i = 1; i < nclasses; i++) {
		const struct sclass *c = &classes[i];
		unsigned span = c->npages * PAGE_SIZE;
		unsigned objs = span / c->size;
		unsigned tail = span % c->size;
		unsigned prev = i > 1 ? classes[i - 1].size : 0;
		double maxwaste = (double)((c->size - prev - 1) * objs + tail) / (double)span * 100.0;
		unsigned minalign = c->size & -c->size;
		if (minalign > PAGE_SIZE)
			minalign = PAGE_SIZE;
		fprintf(f, " * %5d  %9u  %10u  %7u  %10u  %8.2f%%  %9u\n", i, c->size, span, objs, tail,
			maxwaste, minalign);
	}
	fprintf(f, " */\n\n");
	fprintf(f, "#define NH_PAGE_SHIFT %d\n#define NH_PAGE_SIZE %d\n", PAGE_SHIFT, PAGE_SIZE);
	fprintf(f, "#define NH_MAX_SMALL_SIZE %d\n#define NH_NUM_CLASSES %d\n", MAX_SMALL_SIZE, nclasses);
	fprintf(f, "#define NH_SMALL_SIZE_DIV %d\n#define NH_SMALL_SIZE_MAX %d\n#define NH_LARGE_SIZE_DIV %d\n\n",
		SMALL_SIZE_DIV, SMALL_SIZE_MAX, LARGE_SIZE_DIV);

	fprintf(f, "static const uint32_t nh_class_to_size[NH_NUM_CLASSES] = {");
	for (int i = 0; i < nclasses; i++)
		fprintf(f, "%s%u,", i % 10 ? " " : "\n\t", classes[i].size);
	fprintf(f, "\n};\n\n");
	fprintf(f, "static const uint8_t nh_class_to_npages[NH_NUM_CLASSES] = {");
	for (int i = 0; i < nclasses; i++)
		fprintf(f, "%s%u,", i % 16 ? " " : "\n\t", classes[i].npages);
	fprintf(f, "\n};\n\n");
	fprintf(f, "/* (offset * divmul) >> 32 == offset / size for every offset in a span. */\n");
	fprintf(f, "static const uint32_t nh_class_to_divmul[NH_NUM_CLASSES] = {");
	for (int i = 0; i < nclasses; i++)
		fprintf(f, "%s%" PRIu32 "u,", i % 6 ? " " : "\n\t", i ? divmul(classes[i].size) : 0);
	fprintf(f, "\n};\n\n");
	fprintf(f, "/* offset %% size == 0 iff offset * divisible < divisible (mod 2^64), for every\n"
		   " * 32-bit offset: Lemire, Kaser and Kurz, \"Faster remainder by direct\n"
		   " * computation\" (2019). free's interior-pointer check: one multiply. */\n");
	fprintf(f, "static const uint64_t nh_class_to_divisible[NH_NUM_CLASSES] = {");
	for (int i = 0; i < nclasses; i++)
		fprintf(f, "%s%" PRIu64 "ull,", i % 3 ? " " : "\n\t", i ? UINT64_MAX / classes[i].size + 1 : 0);
	fprintf(f, "\n};\n\n");
	fprintf(f, "/* The class of n <= NH_SMALL_SIZE_MAX bytes: entry (n + 7) / 8. Requests of\n"
		   " * 0 to 8 bytes take the 16-byte class, so every block is 16-byte aligned as\n"
		   " * glibc's are; NUMAHEAP_MIN_ALIGN=8 points them at the 8-byte class\n"
		   " * (sizeclass.c holds the table, writable for that). */\n");
	fprintf(f, "#define NH_SIZE_TO_CLASS8_LEN %zu\n", sizeof size_to_class8);
	fprintf(f, "#define NH_SIZE_TO_CLASS8_INIT {");
	for (unsigned i = 0; i < sizeof size_to_class8; i++)
		fprintf(f, "%s%u,", i % 16 ? " " : " \\\n\t", size_to_class8[i]);
	fprintf(f, " \\\n}\n");
	fprintf(f, "extern uint8_t nh_size_to_class8[NH_SIZE_TO_CLASS8_LEN];\n\n");
	fprintf(f, "static const uint8_t nh_size_to_class128[%zu] = {", sizeof size_to_class128);
	for (unsigned i = 0; i < sizeof size_to_class128; i++)
		fprintf(f, "%s%u,", i % 16 ? " " : "\n\t", size_to_class128[i]);
	fprintf(f, "\n};\n\n#endif /* NUMAHEAP_SIZECLASSES_H */\n");
}

int main(int argc, char **argv)
{
	make_classes();
	make_tables();
	check();
	FILE *f = stdout;
	if (argc > 1 && !(f = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}
	emit(f);
	if (f != stdout && fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
