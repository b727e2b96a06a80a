/*
 * prof.c — `numaheap prof`: run a program with heap profiling and print its
 * top allocation sites, per NUMA node.
 *
 * The program runs with numaheap preloaded and NUMAHEAP_PROF=1, its
 * profiles going to a temporary directory (one per process: %p). Each is
 * read back here: numaheap writes gzip with stored blocks, which this reads
 * without zlib, and profile.proto, which this decodes by hand (a dozen
 * fields). Sites are the innermost frames of the samples, named by
 * addr2line (binutils) when it is there, else FILE+OFFSET.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "tool.h"

const char prof_help[] =
	"usage: numaheap prof [options] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Run PROGRAM with numaheap preloaded and heap profiling on\n"
	"(NUMAHEAP_PROF=1), then print the allocation sites holding the most\n"
	"memory when each of its processes exited, with the NUMA node of that\n"
	"memory. The figures are estimates from samples (one per\n"
	"NUMAHEAP_PROF_RATE bytes allocated, 512 KiB by default), scaled up.\n"
	"\n"
	"  --top N         sites to show per process (default 10)\n"
	"  --rate SIZE     NUMAHEAP_PROF_RATE (e.g. 64K for more samples)\n"
	"  --keep DIR      keep the profiles (pprof format) in DIR; read them with\n"
	"                  `go tool pprof -top PROGRAM DIR/numaheap.PID.pb.gz`\n"
	"  --lib PATH      preload this libnumaheap.so\n"
	"\n"
	"Example:\n"
	"  numaheap prof -- sqlite3 :memory: < load.sql\n";

/* ---- reading the profile --------------------------------------------------------------- */

struct rd {
	const uint8_t *p, *end;
};

static uint64_t varint(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; r->p < r->end && shift < 64; shift += 7) {
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	return v;
}

/* The next field: number and wire type; a length-delimited one's bytes in *sub. */
static bool field(struct rd *r, unsigned *num, uint64_t *v, struct rd *sub)
{
	if (r->p >= r->end)
		return false;
	uint64_t key = varint(r);
	*num = (unsigned)(key >> 3);
	switch (key & 7) {
	case 0:
		*v = varint(r);
		return true;
	case 2: {
		uint64_t n = varint(r);
		if (n > (uint64_t)(r->end - r->p))
			return false;
		*sub = (struct rd){r->p, r->p + n};
		r->p += n;
		return true;
	}
	case 1:
		r->p += 8;
		return r->p <= r->end;
	case 5:
		r->p += 4;
		return r->p <= r->end;
	default:
		return false;
	}
}

struct sample {
	uint64_t loc[3]; /* the innermost three frames' location ids */
	int64_t v[4];
	int64_t node;
};

struct profile {
	char **str;
	size_t nstr;
	struct sample *s;
	size_t ns;
	uint64_t *loc_addr, *loc_map; /* by location id */
	size_t nloc;
	uint64_t *map_start, *map_off, *map_file; /* by mapping id */
	size_t nmap;
};

#define GROW(arr, n, idx)                                                            \
	do {                                                                         \
		if ((idx) >= (n)) {                                                  \
			size_t nn_ = (idx) * 2 + 16;                                 \
			arr = xrealloc(arr, nn_ * sizeof *(arr));                    \
			memset(arr + (n), 0, (nn_ - (n)) * sizeof *(arr));           \
			n = nn_;                                                     \
		}                                                                    \
	} while (0)

static void read_sample(struct profile *pf, struct rd r, int64_t node_key)
{
	struct sample s = {{0}, {0}, -1};
	unsigned num, nloc = 0, nv = 0;
	uint64_t v;
	struct rd sub;
	while (field(&r, &num, &v, &sub)) {
		if (num == 1 || num == 2) { /* packed ids, packed values */
			while (sub.p < sub.end) {
				uint64_t x = varint(&sub);
				if (num == 1 && nloc < 3)
					s.loc[nloc++] = x;
				else if (num == 2 && nv < 4)
					s.v[nv++] = (int64_t)x;
			}
		} else if (num == 3) {
			int64_t key = -1, str = -1;
			struct rd l = sub, ls;
			while (field(&l, &num, &v, &ls))
				if (num == 1)
					key = (int64_t)v;
				else if (num == 2)
					str = (int64_t)v;
			if (key == node_key && str >= 0)
				s.node = str; /* a string index: resolved in read_profile */
		}
	}
	size_t cap = pf->ns;
	pf->s = xrealloc(pf->s, (cap + 1) * sizeof *pf->s);
	pf->s[pf->ns++] = s;
}

static void read_id_fields(struct rd r, uint64_t *out, unsigned nfields)
{
	unsigned num;
	uint64_t v;
	struct rd sub;
	while (field(&r, &num, &v, &sub))
		if (num >= 1 && num <= nfields)
			out[num - 1] = v;
}

/* The Profile message; samples are read in a second pass, once "numa_node"'s index is known. */
static void read_profile(struct profile *pf, const uint8_t *p, size_t n)
{
	size_t cap_loc = 0, cap_map = 0;
	struct rd r = {p, p + n}, sub;
	unsigned num;
	uint64_t v;
	while (field(&r, &num, &v, &sub)) {
		uint64_t f[5] = {0};
		if (num == 6) {
			pf->str = xrealloc(pf->str, (pf->nstr + 1) * sizeof *pf->str);
			char *s = xmalloc((size_t)(sub.end - sub.p) + 1);
			memcpy(s, sub.p, (size_t)(sub.end - sub.p));
			s[sub.end - sub.p] = 0;
			pf->str[pf->nstr++] = s;
		} else if (num == 4) {
			read_id_fields(sub, f, 3);
			GROW(pf->loc_addr, cap_loc, f[0]);
			size_t c2 = pf->nloc;
			GROW(pf->loc_map, c2, f[0]);
			pf->nloc = cap_loc;
			pf->loc_addr[f[0]] = f[2];
			pf->loc_map[f[0]] = f[1];
		} else if (num == 3) {
			read_id_fields(sub, f, 5);
			size_t a = cap_map, b = cap_map;
			GROW(pf->map_start, cap_map, f[0]);
			GROW(pf->map_off, a, f[0]);
			GROW(pf->map_file, b, f[0]);
			pf->nmap = cap_map;
			pf->map_start[f[0]] = f[1];
			pf->map_off[f[0]] = f[3];
			pf->map_file[f[0]] = f[4];
		}
	}
	int64_t node_key = -1;
	for (size_t i = 0; i < pf->nstr; i++)
		if (!strcmp(pf->str[i], "numa_node"))
			node_key = (int64_t)i;
	r = (struct rd){p, p + n};
	while (field(&r, &num, &v, &sub))
		if (num == 2)
			read_sample(pf, sub, node_key);
	for (size_t i = 0; i < pf->ns; i++) /* the label's string: the node's number */
		if (pf->s[i].node >= 0 && (size_t)pf->s[i].node < pf->nstr)
			pf->s[i].node = atoi(pf->str[pf->s[i].node]);
}

/* numaheap's gzip: stored deflate blocks only. Returns the payload (malloc'd) or NULL. */
static uint8_t *gunzip_stored(const uint8_t *p, size_t n, size_t *out_n)
{
	if (n < 18 || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || p[3] != 0)
		return NULL;
	uint8_t *out = xmalloc(n);
	size_t o = 0, i = 10;
	for (;;) {
		if (i + 5 > n || ((p[i] >> 1) & 3) != 0)
			break; /* not a stored block: not numaheap's */
		bool last = p[i] & 1;
		size_t len = (size_t)p[i + 1] | (size_t)p[i + 2] << 8;
		i += 5;
		if (i + len > n)
			break;
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
		if (last) {
			*out_n = o;
			return out;
		}
	}
	free(out);
	return NULL;
}

static bool load_profile(const char *path, struct profile *pf)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	size_t cap = 1 << 20, n = 0;
	uint8_t *buf = xmalloc(cap);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	fclose(f);
	size_t pn;
	uint8_t *proto = gunzip_stored(buf, n, &pn);
	free(buf);
	if (!proto)
		return false;
	read_profile(pf, proto, pn);
	free(proto);
	return true;
}

/* ---- naming the sites ------------------------------------------------------------------------ */

/* "function (file:line)" of location id, by addr2line; FILE+0xOFF without it. */
static char *site_name(const struct profile *pf, uint64_t loc)
{
	if (!loc || loc >= pf->nloc)
		return xstrdup("?");
	uint64_t a = pf->loc_addr[loc], m = pf->loc_map[loc];
	if (!m || m >= pf->nmap || pf->map_file[m] >= pf->nstr)
		return xasprintf("0x%llx", (unsigned long long)a);
	const char *file = pf->str[pf->map_file[m]];
	uint64_t off = a - pf->map_start[m] + pf->map_off[m];
	char *cmd = xasprintf("addr2line -f -C -s -e '%s' 0x%llx 2>/dev/null", file, (unsigned long long)off);
	FILE *p = popen(cmd, "r");
	free(cmd);
	char fn[512] = "", line[512] = "";
	if (p) {
		if (fgets(fn, sizeof fn, p))
			(void)!fgets(line, sizeof line, p);
		pclose(p);
	}
	fn[strcspn(fn, "\n")] = 0;
	line[strcspn(line, "\n")] = 0;
	if (!fn[0] || !strcmp(fn, "??")) {
		const char *base = strrchr(file, '/');
		return xasprintf("%s+0x%llx", base ? base + 1 : file, (unsigned long long)off);
	}
	return line[0] && strncmp(line, "??", 2) ? xasprintf("%s (%s)", fn, line) : xstrdup(fn);
}

/* ---- the report ---------------------------------------------------------------------------- */

struct site {
	uint64_t loc[3];
	int64_t inuse, alloc;
	int64_t node[16];
};

static int by_inuse(const void *a, const void *b)
{
	int64_t x = ((const struct site *)a)->inuse, y = ((const struct site *)b)->inuse;
	return x < y ? 1 : x > y ? -1 : 0;
}

static void mib(char *out, size_t cap, int64_t b) { snprintf(out, cap, "%.1f MiB", (double)b / 1048576.0); }

static void report(const char *path, const struct profile *pf, int top)
{
	struct site *st = xmalloc((pf->ns + 1) * sizeof *st);
	size_t n = 0;
	int64_t tot_in = 0, tot_alloc = 0;
	int maxnode = 0;
	for (size_t i = 0; i < pf->ns; i++) {
		const struct sample *s = &pf->s[i];
		size_t k = 0;
		while (k < n && memcmp(st[k].loc, s->loc, sizeof s->loc))
			k++;
		if (k == n)
			memset(&st[n++], 0, sizeof *st), memcpy(st[k].loc, s->loc, sizeof s->loc);
		st[k].inuse += s->v[3];
		st[k].alloc += s->v[1];
		if (s->node >= 0 && s->node < 16) {
			st[k].node[s->node] += s->v[3];
			maxnode = s->node > maxnode ? (int)s->node : maxnode;
		}
		tot_in += s->v[3];
		tot_alloc += s->v[1];
	}
	qsort(st, n, sizeof *st, by_inuse);
	char a[32], b[32];
	mib(a, sizeof a, tot_in);
	mib(b, sizeof b, tot_alloc);
	printf("%s: %s in use at exit, %s allocated (estimates from samples)\n", path, a, b);
	printf("  %10s %6s %11s", "in use", "%", "allocated");
	for (int d = 0; d <= maxnode; d++)
		printf("  %9s%-2d", "node ", d);
	printf("  site (<- callers)\n");
	for (size_t k = 0; k < n && (int)k < top; k++) {
		mib(a, sizeof a, st[k].inuse);
		mib(b, sizeof b, st[k].alloc);
		printf("  %10s %5.1f%% %11s", a, tot_in ? 100.0 * (double)st[k].inuse / (double)tot_in : 0.0, b);
		for (int d = 0; d <= maxnode; d++) {
			mib(a, sizeof a, st[k].node[d]);
			printf("  %11s", a);
		}
		for (int f = 0; f < 3 && st[k].loc[f]; f++) {
			char *name = site_name(pf, st[k].loc[f]);
			printf("%s%s", f ? " <- " : "  ", name);
			free(name);
		}
		printf("\n");
	}
	free(st);
}

/* ---- the command ---------------------------------------------------------------------------- */

static int run_program(char **argv, const char *dir, const char *rate, const char *lib)
{
	pid_t pid = fork();
	if (pid < 0)
		die_usage("prof", "fork: %s", strerror(errno));
	if (pid == 0) {
		char *file = xasprintf("%s/numaheap.%%p.pb.gz", dir);
		const char *old = getenv("LD_PRELOAD");
		char *preload = old && *old ? xasprintf("%s:%s", lib, old) : xstrdup(lib);
		setenv("LD_PRELOAD", preload, 1);
		setenv("NUMAHEAP_PROF", "1", 1);
		setenv("NUMAHEAP_PROF_FILE", file, 1);
		if (rate)
			setenv("NUMAHEAP_PROF_RATE", rate, 1);
		unsetenv("NUMAHEAP_LIB");
		execvp(argv[0], argv);
		fprintf(stderr, "%s prof: cannot run %s: %s\n", prog_name, argv[0], strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int cmd_prof(int argc, char **argv)
{
	int top = 10, i = 1;
	const char *rate = NULL, *keep = NULL, *lib = NULL, *v;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(prof_help, stdout);
			return 0;
		} else if ((v = option_value("prof", argc, argv, &i, NULL, "--top", "a number"))) {
			top = atoi(v);
		} else if ((v = option_value("prof", argc, argv, &i, NULL, "--rate", "a size"))) {
			rate = v;
		} else if ((v = option_value("prof", argc, argv, &i, NULL, "--keep", "a directory"))) {
			keep = v;
		} else if ((v = option_value("prof", argc, argv, &i, NULL, "--lib", "a path"))) {
			lib = v;
		} else {
			die_usage("prof", "unknown option '%s' (put the program after --)", argv[i]);
		}
	}
	if (i >= argc)
		die_usage("prof", "no program to run");
	char tmpl[] = "/tmp/numaheap-prof.XXXXXX";
	const char *dir = keep ? keep : mkdtemp(tmpl);
	if (!dir)
		die_usage("prof", "mkdtemp: %s", strerror(errno));
	char *path = find_numaheap_lib(lib, false);
	int status = run_program(argv + i, dir, rate, path);
	DIR *d = opendir(dir);
	int found = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (strncmp(e->d_name, "numaheap.", 9) || !ends_with(e->d_name, ".pb.gz"))
			continue;
		char *f = xasprintf("%s/%s", dir, e->d_name);
		struct profile pf = {0};
		if (load_profile(f, &pf)) {
			report(keep ? f : e->d_name, &pf, top);
			found++;
		} else {
			fprintf(stderr, "%s prof: %s: not a numaheap profile\n", prog_name, f);
		}
		if (!keep)
			unlink(f);
		free(f);
	}
	if (d)
		closedir(d);
	if (!keep)
		rmdir(dir);
	if (!found)
		fprintf(stderr, "%s prof: no profile was written (the program did not run under numaheap?)\n",
			prog_name);
	return status;
}
