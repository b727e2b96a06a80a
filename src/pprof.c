/*
 * pprof.c — heap profiles in pprof's format, written without malloc.
 *
 * Owns the encoding only: what to sample and when is prof.c's. A profile is
 * one protobuf message (profile.proto): its string table, value types,
 * samples, locations (one per distinct address) and mappings, then gzipped
 * with stored (uncompressed) deflate blocks: pprof requires gzip's framing,
 * not its compression, and stored blocks need no tables or state.
 *
 * Invariants: string index 0 is ""; location and mapping ids start at 1;
 * a sample's first location is its leaf. Every buffer comes from os_map
 * and goes back with os_unmap before the call returns; a mapping that
 * fails turns the whole write into -1, never into a partial file.
 *
 * Locking: none; the caller serialises dumps (prof.c's dump lock).
 */
#include "pprof.h"

#include <stdbool.h>
#include <string.h>

#include "os/os.h"
#include "report.h"

/* ---- a growable byte buffer on mapped memory ------------------------------------- */

struct pbuf {
	uint8_t *p;
	size_t len, cap;
	bool failed;
};

static size_t page_round(size_t n) { return (n + os_page_size() - 1) & ~(os_page_size() - 1); }

static bool pbuf_reserve(struct pbuf *b, size_t more)
{
	if (b->failed)
		return false;
	if (b->len + more <= b->cap)
		return true;
	size_t cap = page_round(NH_MAX(b->cap * 2, b->len + more + 4096));
	uint8_t *p = os_map(cap, 0);
	if (!p) {
		b->failed = true;
		return false;
	}
	if (b->p) {
		memcpy(p, b->p, b->len);
		os_unmap(b->p, b->cap);
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void pbuf_free(struct pbuf *b)
{
	if (b->p)
		os_unmap(b->p, b->cap);
	*b = (struct pbuf){0};
}

static void put_raw(struct pbuf *b, const void *p, size_t n)
{
	if (pbuf_reserve(b, n)) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
	}
}

/* ---- protobuf primitives ------------------------------------------------------------ */

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

static void put_varint(struct pbuf *b, uint64_t v)
{
	uint8_t tmp[10];
	unsigned n = 0;
	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	put_raw(b, tmp, n);
}

static void put_int(struct pbuf *b, unsigned field, uint64_t v)
{
	put_varint(b, (uint64_t)field << 3 | WIRE_VARINT);
	put_varint(b, v);
}

static void put_bytes(struct pbuf *b, unsigned field, const void *p, size_t n)
{
	put_varint(b, (uint64_t)field << 3 | WIRE_LEN);
	put_varint(b, n);
	put_raw(b, p, n);
}

/* A sub-message built in m, appended to b as field, m emptied for reuse. */
static void put_msg(struct pbuf *b, unsigned field, struct pbuf *m)
{
	put_bytes(b, field, m->p, m->len);
	if (m->failed)
		b->failed = true;
	m->len = 0;
}

/* ---- the string table ------------------------------------------------------------------ */

#define MAX_STRINGS 1024

struct strtab {
	const char *s[MAX_STRINGS];
	size_t n;
};

/* The index of s (added if new); 0 ("") when the table is full. */
static int64_t str_index(struct strtab *t, const char *s)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->s[i], s) == 0)
			return (int64_t)i;
	if (t->n == MAX_STRINGS)
		return 0;
	t->s[t->n] = s;
	return (int64_t)t->n++;
}

/* ---- mappings: the process's executable file mappings ------------------------------------- */

#define MAX_MAPPINGS 512

struct mapping {
	uintptr_t start, limit, offset;
	const char *path; /* points into the maps text */
};

struct maps {
	char *text; /* /proc/self/maps, NUL-terminated, cut into strings */
	size_t cap;
	struct mapping m[MAX_MAPPINGS];
	size_t n;
};

static uintptr_t parse_hex(const char **s)
{
	uintptr_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
		if (d == 16)
			return v;
		v = v << 4 | d;
	}
}

/* One line "start-end perms offset dev inode path"; cuts the path's end. */
static void parse_map_line(struct maps *mp, char *line)
{
	const char *s = line;
	uintptr_t start = parse_hex(&s);
	if (*s++ != '-')
		return;
	uintptr_t end = parse_hex(&s);
	if (*s++ != ' ' || s[2] != 'x')
		return; /* not executable */
	s += 5;
	uintptr_t off = parse_hex(&s);
	char *path = strchr(s, '/');
	if (!path || mp->n == MAX_MAPPINGS)
		return;
	mp->m[mp->n++] = (struct mapping){start, end, off, path};
}

static bool maps_read(struct maps *mp)
{
	mp->cap = (size_t)4 << 20;
	mp->text = os_map(mp->cap, 0);
	if (!mp->text)
		return false;
	ssize_t n = os_read_file("/proc/self/maps", mp->text, mp->cap);
	if (n < 0)
		n = 0;
	for (char *line = mp->text; line < mp->text + n && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		parse_map_line(mp, line);
		if (!nl)
			break;
		line = nl + 1;
	}
	return true;
}

static size_t mapping_of(const struct maps *mp, uintptr_t pc)
{
	for (size_t i = 0; i < mp->n; i++)
		if (pc >= mp->m[i].start && pc < mp->m[i].limit)
			return i + 1;
	return 0;
}

/* ---- locations: one id per distinct address ------------------------------------------------ */

struct loctab {
	uintptr_t *pc; /* open addressing; 0 is empty */
	uint64_t *id;
	size_t cap, n;
	size_t bytes;
};

static bool loctab_init(struct loctab *t, size_t want)
{
	t->cap = 1024;
	while (t->cap < want * 2)
		t->cap <<= 1;
	t->bytes = page_round(t->cap * (sizeof(uintptr_t) + sizeof(uint64_t)));
	void *p = os_map(t->bytes, 0);
	if (!p)
		return false;
	t->pc = p;
	t->id = (uint64_t *)(t->pc + t->cap);
	t->n = 0;
	return true;
}

static uint64_t loc_id(struct loctab *t, uintptr_t pc)
{
	size_t i = (size_t)((pc * 0x9e3779b97f4a7c15ULL) >> 20) & (t->cap - 1);
	while (t->pc[i] && t->pc[i] != pc)
		i = (i + 1) & (t->cap - 1);
	if (!t->pc[i]) {
		t->pc[i] = pc;
		t->id[i] = ++t->n;
	}
	return t->id[i];
}

/* ---- the Profile message ---------------------------------------------------------------------- */

static const char *const kValueNames[4][2] = {
	{"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}};

static void put_value_type(struct pbuf *b, struct pbuf *m, unsigned field, struct strtab *st, const char *type,
			   const char *unit)
{
	put_int(m, 1, (uint64_t)str_index(st, type));
	put_int(m, 2, (uint64_t)str_index(st, unit));
	put_msg(b, field, m);
}

static const char *const kNodeNames[] = {"0", "1", "2",	"3",  "4",  "5",  "6",  "7",
					 "8", "9", "10", "11", "12", "13", "14", "15"};

/* The label's value is a string: pprof drops a numeric label whose value is
 * 0 and that has no unit, and node 0 is the common case. */
static void put_sample(struct pbuf *b, struct pbuf *m, struct pbuf *packed, const struct pprof_sample *s,
		       struct loctab *lt, int64_t node_key, struct strtab *st)
{
	for (unsigned k = 0; k < s->npc; k++)
		put_varint(packed, loc_id(lt, s->pcs[k]));
	put_msg(m, 1, packed);
	for (unsigned k = 0; k < 4; k++)
		put_varint(packed, (uint64_t)s->v[k]);
	put_msg(m, 2, packed);
	if (s->node >= 0 && s->node < (int)(sizeof kNodeNames / sizeof kNodeNames[0])) {
		put_int(packed, 1, (uint64_t)node_key);
		put_int(packed, 2, (uint64_t)str_index(st, kNodeNames[s->node]));
		put_msg(m, 3, packed);
	}
	put_msg(b, 2, m);
}

static void put_mappings(struct pbuf *b, struct pbuf *m, const struct maps *mp, struct strtab *st)
{
	for (size_t i = 0; i < mp->n; i++) {
		put_int(m, 1, i + 1);
		put_int(m, 2, mp->m[i].start);
		put_int(m, 3, mp->m[i].limit);
		put_int(m, 4, mp->m[i].offset);
		put_int(m, 5, (uint64_t)str_index(st, mp->m[i].path));
		put_msg(b, 3, m);
	}
}

static void put_locations(struct pbuf *b, struct pbuf *m, const struct loctab *lt, const struct maps *mp)
{
	for (size_t i = 0; i < lt->cap; i++) {
		if (!lt->pc[i])
			continue;
		put_int(m, 1, lt->id[i]);
		size_t map = mapping_of(mp, lt->pc[i]);
		if (map)
			put_int(m, 2, map);
		put_int(m, 3, lt->pc[i]);
		put_msg(b, 4, m);
	}
}

static void encode(struct pbuf *b, const struct pprof_sample *s, size_t n, uint64_t period, uint64_t time_ns,
		   uint64_t duration_ns, struct loctab *lt, struct maps *mp, struct strtab *st)
{
	struct pbuf m = {0}, packed = {0};
	/* Every string is indexed before the table is written: pprof rejects a
	 * profile whose messages name an index past its table. */
	str_index(st, "");
	for (unsigned k = 0; k < 4; k++)
		put_value_type(b, &m, 1, st, kValueNames[k][0], kValueNames[k][1]);
	int64_t node_key = str_index(st, "numa_node");
	int64_t space = str_index(st, "space"), bytes = str_index(st, "bytes");
	for (size_t i = 0; i < n; i++)
		put_sample(b, &m, &packed, &s[i], lt, node_key, st);
	put_mappings(b, &m, mp, st);
	put_locations(b, &m, lt, mp);
	for (size_t i = 0; i < st->n; i++)
		put_bytes(b, 6, st->s[i], strlen(st->s[i]));
	put_int(b, 9, time_ns);
	put_int(b, 10, duration_ns);
	put_int(&m, 1, (uint64_t)space);
	put_int(&m, 2, (uint64_t)bytes);
	put_msg(b, 11, &m);
	put_int(b, 12, period);
	put_int(b, 14, (uint64_t)str_index(st, "inuse_space"));
	if (m.failed || packed.failed)
		b->failed = true;
	pbuf_free(&m);
	pbuf_free(&packed);
}

/* ---- gzip with stored blocks ------------------------------------------------------------------- */

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	static bool ready;
	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = true;
	}
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void put_le32(struct pbuf *b, uint32_t v)
{
	uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put_raw(b, t, 4);
}

static void gzip_stored(struct pbuf *out, const struct pbuf *in)
{
	static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
	put_raw(out, header, sizeof header);
	size_t off = 0;
	do {
		size_t n = NH_MIN(in->len - off, (size_t)65535);
		bool last = off + n == in->len;
		uint8_t h[5] = {last ? 1 : 0, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)~n, (uint8_t)(~n >> 8)};
		put_raw(out, h, sizeof h);
		put_raw(out, in->p + off, n);
		off += n;
	} while (off < in->len);
	put_le32(out, crc32_update(0, in->p, in->len));
	put_le32(out, (uint32_t)in->len);
}

static int write_all(int fd, const struct pbuf *b)
{
	if (b->failed)
		return -1;
	os_write_all(fd, (const char *)b->p, b->len);
	return 0;
}

int pprof_write(int fd, const struct pprof_sample *s, size_t n, uint64_t period, uint64_t time_ns,
		uint64_t duration_ns)
{
	size_t frames = 0;
	for (size_t i = 0; i < n; i++)
		frames += s[i].npc;
	struct maps *mp = os_map(page_round(sizeof *mp), 0);
	struct strtab *st = os_map(page_round(sizeof *st), 0);
	struct loctab lt = {0};
	struct pbuf proto = {0}, gz = {0};
	int r = -1;
	if (mp && st && maps_read(mp) && loctab_init(&lt, frames)) {
		encode(&proto, s, n, period, time_ns, duration_ns, &lt, mp, st);
		if (!proto.failed) {
			gzip_stored(&gz, &proto);
			r = write_all(fd, &gz);
		}
	}
	pbuf_free(&proto);
	pbuf_free(&gz);
	if (lt.pc)
		os_unmap(lt.pc, lt.bytes);
	if (mp && mp->text)
		os_unmap(mp->text, mp->cap);
	if (mp)
		os_unmap(mp, page_round(sizeof *mp));
	if (st)
		os_unmap(st, page_round(sizeof *st));
	return r;
}

/* ---- gperftools' text format ------------------------------------------------------------------- */

int pprof_write_text(int fd, const struct pprof_sample *s, size_t n, uint64_t period)
{
	(void)period; /* values are scaled already: the "heapprofile" variant, no unsampling */
	char out[4096];
	struct nh_buf b = {out, 0, sizeof out, fd, 0};
	int64_t tot[4] = {0};
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			tot[k] += s[i].v[k];
	buf_printf(&b, "heap profile: %6lld: %8lld [%6lld: %8lld] @ heapprofile\n", (long long)tot[2],
		   (long long)tot[3], (long long)tot[0], (long long)tot[1]);
	for (size_t i = 0; i < n; i++) {
		buf_printf(&b, "%6lld: %8lld [%6lld: %8lld] @", (long long)s[i].v[2], (long long)s[i].v[3],
			   (long long)s[i].v[0], (long long)s[i].v[1]);
		/* google-pprof takes return addresses and looks up addr - 1. */
		for (unsigned k = 0; k < s[i].npc; k++)
			buf_printf(&b, " 0x%llx", (unsigned long long)s[i].pcs[k] + (k ? 1 : 0));
		buf_putc(&b, '\n');
	}
	buf_puts(&b, "\nMAPPED_LIBRARIES:\n");
	buf_flush(&b);
	char *maps = os_map((size_t)4 << 20, 0);
	if (!maps)
		return -1;
	ssize_t m = os_read_file("/proc/self/maps", maps, (size_t)4 << 20);
	if (m > 0)
		os_write_all(fd, maps, (size_t)m);
	os_unmap(maps, (size_t)4 << 20);
	return 0;
}
