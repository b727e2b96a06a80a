/*
 * json.c — the JSON reader (json.h).
 */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

struct jparser {
	const char *p, *start, *end;
	const char *err;
	int depth;
};

void jfree(struct jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		jfree(v->items[i]);
	}
	free(v->keys);
	free(v->items);
	free(v->s);
	free(v);
}

static void jskip(struct jparser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
		jp->p++;
}

static struct jv *jnew(enum jtype t)
{
	struct jv *v = xmalloc(sizeof *v);
	memset(v, 0, sizeof *v);
	v->t = t;
	return v;
}

static void put_utf8(char **buf, size_t *len, size_t *cap, unsigned cp)
{
	if (*len + 5 > *cap) {
		*cap = *cap * 2 + 8;
		*buf = xrealloc(*buf, *cap);
	}
	char *o = *buf + *len;
	if (cp < 0x80) {
		o[0] = (char)cp;
		*len += 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		*len += 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		*len += 3;
	} else {
		o[0] = (char)(0xf0 | cp >> 18);
		o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[3] = (char)(0x80 | (cp & 0x3f));
		*len += 4;
	}
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static char *jstring(struct jparser *jp)
{
	/* at '"' */
	jp->p++;
	size_t len = 0, cap = 32;
	char *buf = xmalloc(cap);
	while (jp->p < jp->end && *jp->p != '"') {
		unsigned char c = (unsigned char)*jp->p;
		if (c < 0x20) {
			jp->err = "control character in a string";
			free(buf);
			return NULL;
		}
		if (c == '\\') {
			if (jp->p + 1 >= jp->end)
				break;
			char e = jp->p[1];
			jp->p += 2;
			unsigned cp;
			switch (e) {
			case '"': cp = '"'; break;
			case '\\': cp = '\\'; break;
			case '/': cp = '/'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u': {
				int h = jp->end - jp->p >= 4 ? hex4(jp->p) : -1;
				if (h < 0) {
					jp->err = "bad \\u escape";
					free(buf);
					return NULL;
				}
				jp->p += 4;
				cp = (unsigned)h;
				if (cp >= 0xd800 && cp < 0xdc00 && jp->end - jp->p >= 6 && jp->p[0] == '\\' &&
				    jp->p[1] == 'u') {
					int lo = hex4(jp->p + 2);
					if (lo >= 0xdc00 && lo < 0xe000) {
						cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
						jp->p += 6;
					}
				}
				break;
			}
			default:
				jp->err = "bad escape in a string";
				free(buf);
				return NULL;
			}
			put_utf8(&buf, &len, &cap, cp);
			continue;
		}
		if (len + 2 > cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		buf[len++] = (char)c;
		jp->p++;
	}
	if (jp->p >= jp->end) {
		jp->err = "unterminated string";
		free(buf);
		return NULL;
	}
	jp->p++;
	buf[len] = 0;
	return buf;
}

static struct jv *jvalue(struct jparser *jp);

static struct jv *jcontainer(struct jparser *jp, bool obj)
{
	struct jv *v = jnew(obj ? J_OBJ : J_ARR);
	size_t cap = 0;
	char close = obj ? '}' : ']';
	jp->p++;
	if (++jp->depth > 64) {
		jp->err = "nested too deeply";
		jfree(v);
		return NULL;
	}
	jskip(jp);
	if (jp->p < jp->end && *jp->p == close) {
		jp->p++;
		jp->depth--;
		return v;
	}
	for (;;) {
		char *key = NULL;
		jskip(jp);
		if (obj) {
			if (jp->p >= jp->end || *jp->p != '"') {
				jp->err = "expected a member name";
				goto fail;
			}
			if (!(key = jstring(jp)))
				goto fail;
			jskip(jp);
			if (jp->p >= jp->end || *jp->p != ':') {
				free(key);
				jp->err = "expected ':'";
				goto fail;
			}
			jp->p++;
		}
		struct jv *item = jvalue(jp);
		if (!item) {
			free(key);
			goto fail;
		}
		if (v->n == cap) {
			cap = cap ? cap * 2 : 8;
			v->items = xrealloc(v->items, cap * sizeof *v->items);
			if (obj)
				v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
		}
		if (obj)
			v->keys[v->n] = key;
		v->items[v->n++] = item;
		jskip(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == close) {
			jp->p++;
			jp->depth--;
			return v;
		}
		jp->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
		goto fail;
	}
fail:
	jfree(v);
	return NULL;
}

/* q at one or more digits: returns what follows them; else NULL, a bad number. */
static const char *jdigits(struct jparser *jp, const char *q)
{
	if (q >= jp->end || !isdigit((unsigned char)*q)) {
		jp->err = "bad number";
		return NULL;
	}
	while (q < jp->end && isdigit((unsigned char)*q))
		q++;
	return q;
}

static struct jv *jnumber(struct jparser *jp)
{
	const char *s = jp->p;
	const char *q = s;
	if (q < jp->end && *q == '-')
		q++;
	if (q >= jp->end || !isdigit((unsigned char)*q)) {
		jp->err = "unexpected character";
		return NULL;
	}
	if (*q == '0')
		q++;
	else
		while (q < jp->end && isdigit((unsigned char)*q))
			q++;
	bool integer = true;
	if (q < jp->end && *q == '.') {
		integer = false;
		if (!(q = jdigits(jp, q + 1)))
			return NULL;
	}
	if (q < jp->end && (*q == 'e' || *q == 'E')) {
		integer = false;
		q++;
		if (q < jp->end && (*q == '+' || *q == '-'))
			q++;
		if (!(q = jdigits(jp, q)))
			return NULL;
	}
	char tmp[64];
	size_t n = (size_t)(q - s);
	if (n >= sizeof tmp) {
		jp->err = "number too long";
		return NULL;
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	struct jv *v = jnew(J_NUM);
	v->num = strtod(tmp, NULL);
	if (integer && tmp[0] != '-') {
		errno = 0;
		v->u = strtoull(tmp, NULL, 10);
		v->exact = errno == 0;
	}
	jp->p = q;
	return v;
}

static bool jword(struct jparser *jp, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(jp->end - jp->p) >= n && !strncmp(jp->p, w, n)) {
		jp->p += n;
		return true;
	}
	return false;
}

static struct jv *jvalue(struct jparser *jp)
{
	jskip(jp);
	if (jp->p >= jp->end) {
		jp->err = "unexpected end";
		return NULL;
	}
	switch (*jp->p) {
	case '{': return jcontainer(jp, true);
	case '[': return jcontainer(jp, false);
	case '"': {
		char *s = jstring(jp);
		if (!s)
			return NULL;
		struct jv *v = jnew(J_STR);
		v->s = s;
		return v;
	}
	default:
		break;
	}
	if (jword(jp, "true") || jword(jp, "false")) {
		struct jv *v = jnew(J_BOOL);
		v->b = jp->p[-1] == 'e' && jp->p[-2] == 'u';
		return v;
	}
	if (jword(jp, "null"))
		return jnew(J_NULL);
	return jnumber(jp);
}

struct jv *jparse(const char *s, const char *end, const char **err, size_t *err_off)
{
	struct jparser jp = {s, s, end, NULL, 0};
	struct jv *v = jvalue(&jp);
	if (v) {
		jskip(&jp);
		if (jp.p != jp.end) {
			jp.err = "trailing characters";
			jfree(v);
			v = NULL;
		}
	}
	if (!v) {
		*err = jp.err ? jp.err : "parse error";
		*err_off = (size_t)(jp.p - s);
	}
	return v;
}

const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return o->items[i];
	return NULL;
}

unsigned long long jnum(const struct jv *v)
{
	if (!v || v->t != J_NUM)
		return 0;
	if (v->exact)
		return v->u;
	return v->num > 0 ? (unsigned long long)v->num : 0;
}
